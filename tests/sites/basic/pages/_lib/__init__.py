# PAGE-SOURCE-MARKER-8f3b: helper package, not a route.
