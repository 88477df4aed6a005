"""Tasks of employees and their calendar feed."""
