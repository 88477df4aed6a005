"""Participants of a marketing event: who, at which stage, status and outcome."""
