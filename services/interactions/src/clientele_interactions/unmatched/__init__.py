"""Unmatched addresses of captured mail: list, link one to a person, or dismiss it."""
