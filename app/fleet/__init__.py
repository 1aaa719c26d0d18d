"""One truth across replicas: the desired state in the model store (which adapter and ensemble
version every replica serves, with a generation that only grows), each replica's reconciling to it,
and the heartbeats that make the fleet view (GET /v1/fleet)."""
