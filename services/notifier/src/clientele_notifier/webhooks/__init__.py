"""Webhook endpoints the notifier calls (admins register them)."""
