"""hwgen graph package."""
