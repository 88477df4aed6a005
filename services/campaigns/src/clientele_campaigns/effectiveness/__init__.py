"""Effectiveness of marketing events: participants, costs per participant and attendee."""
