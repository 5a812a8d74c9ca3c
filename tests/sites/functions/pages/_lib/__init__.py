"""Helpers of the functions e2e site; a `_` folder is never a route."""
