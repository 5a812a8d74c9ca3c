"""About page: static, with no data function, so it is rendered once per build and never stale."""

# A page module with neither get_static_props nor get_server_side_props is a static
# page: its template (the sibling about.html) is rendered with only `params` and `path`.
