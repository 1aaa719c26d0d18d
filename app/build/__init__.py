"""`pricer build RECIPE`: priced data in, a served ensemble bundle out (a DVC pipeline)."""
