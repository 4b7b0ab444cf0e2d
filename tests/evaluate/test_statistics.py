"""Summary statistics: hand-computed mean, median and Student's t interval; units; empty and single inputs."""

import math

import pytest

from bisep.evaluate.statistics import describe


def test_mean_median_and_t_interval():
    stats = describe([1.0, 2.0, 3.0, 10.0])
    half_width = 3.182446305284263 * math.sqrt(((1 - 4) ** 2 + (2 - 4) ** 2 + (3 - 4) ** 2 + (10 - 4) ** 2) / 3) / 2
    assert stats["mean"] == 4.0 and stats["median"] == 2.5 and stats["count"] == 4
    assert stats["ci95"] == pytest.approx([4.0 - half_width, 4.0 + half_width])


def test_units_make_the_interval_over_unit_means():
    by_units = describe([1.0, 3.0, 5.0, 7.0], units=["a", "a", "b", "b"])
    assert by_units["mean"] == 4.0 and by_units["count"] == 4
    half_width = 12.706204736174707 * math.sqrt(((2 - 4) ** 2 + (6 - 4) ** 2) / 1) / math.sqrt(2)
    assert by_units["ci95"] == pytest.approx([4.0 - half_width, 4.0 + half_width])


def test_empty_and_single_values():
    assert describe([]) == {"mean": None, "median": None, "ci95": None, "count": 0}
    assert describe([2.5]) == {"mean": 2.5, "median": 2.5, "ci95": None, "count": 1}
