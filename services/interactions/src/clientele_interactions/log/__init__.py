"""The contact log: log or plan a contact, read, list, change, complete, cancel; overdue."""
