"""Pricer: estimate a product's price from its text description."""

__version__ = "0.1.0"
