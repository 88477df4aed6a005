"""E-mail capture: an uploaded .eml or .msg, or mail in a mailbox, becomes an interaction."""
