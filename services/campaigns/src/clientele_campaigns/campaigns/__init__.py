"""Marketing events (the API calls them campaigns): their fields, status and stages."""
