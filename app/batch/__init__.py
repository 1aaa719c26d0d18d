"""`pricer price`: catalog pricing on Ray Data with the service's own answer (app.pricing.core),
resumable, every input id exactly once in the output or the errors file (docs/batch.md)."""
