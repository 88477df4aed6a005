"""Leads: inbound requests taken in, repeated, assigned by turns, converted or rejected."""
