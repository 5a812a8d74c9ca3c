"""Site loading: the site folder, its isr.json, its routes and its build id."""
