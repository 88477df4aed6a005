"""Stages of a marketing event (preparation, invitations, the event, follow-up by default)."""
