"""The directory's organizations, persons and employees as the pipeline keeps them (read models)."""
