"""Public registration to a marketing event and check-in with a ticket code at the entrance."""
