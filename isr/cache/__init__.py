"""The cache: generation records, their storage backends and the in-process LRU."""
