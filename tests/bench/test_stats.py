"""The benchmark's arithmetic: percentiles, the alternating schedule, ratios and growth exponents."""

import math
from collections import Counter

import pytest

from bench.stats import exponent, percentile, ratio, rotations, summarize


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(samples, 50) == 3.0
    assert percentile(samples, 0) == 1.0 and percentile(samples, 100) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)


def test_a_percentile_of_nothing_or_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_a_summary_holds_the_order_statistics_of_its_samples() -> None:
    summary = summarize([float(x) for x in range(1, 11)])
    assert (summary.n, summary.min, summary.max, summary.mean) == (10, 1.0, 10.0, 5.5)
    assert summary.p50 == 5.5 and summary.p95 == pytest.approx(9.55)
    assert summary.as_dict()["p95"] == 9.55


def test_every_server_takes_every_place_in_the_order_equally_often() -> None:
    names = ["planner", "bare", "durable"]
    orders = rotations(names, 9)
    assert all(sorted(order) == sorted(names) for order in orders)
    for place in range(3):
        assert Counter(order[place] for order in orders) == dict.fromkeys(names, 3)
    assert orders[0] != orders[1]


def test_ratios_compare_against_the_baseline_and_refuse_a_zero_one() -> None:
    assert ratio(1.1, 1.0) == 1.1
    assert ratio(3.0, 4.0) == 0.75
    with pytest.raises(ValueError):
        ratio(1.0, 0.0)


def test_the_growth_exponent_is_one_for_linear_zero_for_flat_and_two_for_quadratic() -> None:
    sizes = [1_000.0, 100_000.0, 1_000_000.0]
    assert exponent(sizes, [2 * s for s in sizes]) == 1.0
    assert exponent(sizes, [5.0, 5.0, 5.0]) == 0.0
    assert exponent(sizes, [s * s for s in sizes]) == 2.0
    # Between the two largest sizes: the fixed cost that dominates small inputs does not hide a steep end.
    assert exponent(sizes, [3.0, 3.0, 30.0]) == pytest.approx(1.0)
    assert math.isclose(exponent([1.0, 10.0], [1.0, math.sqrt(10)]), 0.5)
