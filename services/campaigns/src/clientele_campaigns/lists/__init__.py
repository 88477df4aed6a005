"""Directory static lists as kept here, resolved into an event's participants."""
