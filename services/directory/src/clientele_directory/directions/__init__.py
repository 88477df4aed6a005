"""Directions: the company's business lines, which records and employees belong to."""
