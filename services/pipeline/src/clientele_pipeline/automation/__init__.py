"""Automation rules: triggers on deal events, CEL conditions, actions (ADR 25)."""
