"""A static page: no data function, rendered once per build. PAGE-SOURCE-MARKER-8f3b"""
