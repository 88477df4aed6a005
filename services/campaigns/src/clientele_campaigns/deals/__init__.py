"""The pipeline's deals as a read model, for attributing deals to marketing events."""
