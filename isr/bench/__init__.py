"""`isr bench`: load a site and report how its cache behaves (SPEC §8)."""
