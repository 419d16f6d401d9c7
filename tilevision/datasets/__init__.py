"""Sample data: synthetic phantoms and slides, and loaders for the bundled real data."""

__all__: list[str] = []
