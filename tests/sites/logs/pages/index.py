"""A static page: no data function."""
