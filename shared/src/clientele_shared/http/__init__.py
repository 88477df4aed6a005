"""HTTP conventions shared by every service: problem details, limits, correlation, health."""
