"""HTTP routes: estimate.py and health.py (the service), adapters.py (adapter administration)."""
