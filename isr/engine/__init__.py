"""The ISR engine: what to serve for a path, and when to (re)generate it."""
