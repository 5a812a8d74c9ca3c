"""Which path a generated request asks for: Zipf popularity over the requested paths."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence


class Zipf:
    """Path number k (1-based, in the order given) is drawn with weight 1 / k**s.

    s = 0 is uniform; s = 1 (the default) is the classic web popularity curve. The order
    of the paths is their rank, so the first path given is the most popular.
    """

    def __init__(self, paths: Sequence[str], s: float, seed: int = 1) -> None:
        if not paths:
            raise ValueError("no paths to choose from")
        if s < 0:
            raise ValueError(f"zipf exponent must be >= 0, not {s}")
        self.paths = list(paths)
        self.cumulative = list(itertools.accumulate(weights(len(paths), s)))
        self.rng = random.Random(seed)

    def sample(self, k: int) -> list[str]:
        """k paths drawn independently (one call per batch: random.choices is C-speed)."""
        return self.rng.choices(self.paths, cum_weights=self.cumulative, k=k)


def weights(n: int, s: float) -> list[float]:
    return [1.0 / rank**s for rank in range(1, n + 1)]


def shares(n: int, s: float) -> list[float]:
    """The expected share of requests of each rank (they sum to 1)."""
    w = weights(n, s)
    total = sum(w)
    return [x / total for x in w]
