"""Reminders other services schedule; the notifier fires them when due."""
