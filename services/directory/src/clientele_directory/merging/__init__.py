"""Merging two organizations or two persons, and finding the candidates."""
