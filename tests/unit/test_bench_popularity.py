"""The Zipf sampler behind `--zipf S`: rank k is drawn with weight 1 / k**S (S = 0: uniform),
the first path given being rank 1. Fixed seeds, so every figure here is reproducible."""

from __future__ import annotations

from collections import Counter

import pytest

from isr.bench.popularity import Zipf, shares

PATHS = [f"/p{rank}" for rank in range(1, 101)]
DRAWS = 200_000


def drawn_shares(s: float, seed: int = 42) -> list[float]:
    counts = Counter(Zipf(PATHS, s, seed).sample(DRAWS))
    return [counts[path] / DRAWS for path in PATHS]


def test_theory_of_s_1_over_100_paths() -> None:
    expected = shares(100, 1.0)
    harmonic = sum(1 / k for k in range(1, 101))  # H_100 = 5.187...
    assert sum(expected) == pytest.approx(1.0)
    assert expected[0] == pytest.approx(1 / harmonic) == pytest.approx(0.19277, abs=1e-5)
    assert expected[1] == pytest.approx(expected[0] / 2) and expected[9] == pytest.approx(expected[0] / 10)


@pytest.mark.parametrize("s", [0.8, 1.0, 1.2])
def test_drawn_shares_follow_the_curve(s: float) -> None:
    got, want = drawn_shares(s), shares(100, s)
    # rank 1 within half a point of theory (its standard error here is about 0.1 point)
    assert got[0] == pytest.approx(want[0], abs=0.005), (got[0], want[0])
    for rank in (2, 5, 10):
        assert got[rank - 1] == pytest.approx(want[rank - 1], abs=0.004), rank
    top10 = sum(got[:10])
    assert top10 == pytest.approx(sum(want[:10]), abs=0.01)
    assert got[0] > got[1] > got[4] > got[49]  # popularity falls with rank


def test_a_steeper_curve_concentrates_more_on_rank_1() -> None:
    assert drawn_shares(0.5)[0] < drawn_shares(1.0)[0] < drawn_shares(1.5)[0]


def test_s_0_is_uniform() -> None:
    got = drawn_shares(0.0)
    assert shares(100, 0.0) == [pytest.approx(0.01)] * 100
    assert max(got) - min(got) < 0.003  # every path near 1 %: ±0.07 points is 1 standard error
    chi2 = sum((share * DRAWS - DRAWS / 100) ** 2 / (DRAWS / 100) for share in got)
    assert chi2 < 150  # 99 degrees of freedom: far below what any skew gives (s=0.1 gives ~2,000)


def test_the_same_seed_draws_the_same_paths_and_another_seed_others() -> None:
    assert Zipf(PATHS, 1.0, 7).sample(1000) == Zipf(PATHS, 1.0, 7).sample(1000)
    assert Zipf(PATHS, 1.0, 7).sample(1000) != Zipf(PATHS, 1.0, 8).sample(1000)


def test_one_path_is_always_drawn() -> None:
    assert set(Zipf(["/only"], 1.0).sample(100)) == {"/only"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="no paths"):
        Zipf([], 1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        Zipf(PATHS, -0.5)
