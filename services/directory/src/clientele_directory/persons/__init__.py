"""Persons and their employments at organizations."""
