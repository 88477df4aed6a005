"""Lists of organizations: static (members by hand, by a filter, by a file) and dynamic."""
