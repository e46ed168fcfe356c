"""hwgen boards package."""
