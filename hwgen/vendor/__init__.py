"""Vendor primitives, chosen in ``elaborate()`` from the platform."""
