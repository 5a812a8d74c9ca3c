"""A static page: no data function, rendered once per build. FUNC-SOURCE-MARKER-3d7e"""
