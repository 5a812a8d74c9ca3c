"""The HTTP layer: aiohttp's low-level server, the hot path, and response encoding."""
