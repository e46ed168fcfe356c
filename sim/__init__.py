"""hwgen sim package."""
