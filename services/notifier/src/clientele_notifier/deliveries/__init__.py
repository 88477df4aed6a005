"""Deliveries of e-mail, in-app notifications and webhook calls, their log and the worker."""
