"""Delivery channels: e-mail over SMTP, webhooks over HTTP, and the per-domain rate limit."""
