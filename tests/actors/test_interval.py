from __future__ import annotations

import math

import pytest

from actors import Interval


def test_due_in_counts_from_the_last_run_with_the_current_period() -> None:
    interval = Interval(60.0)
    assert interval.due_in(100.0, 130.0) == 30.0
    assert interval.set(10.0) == 60.0  # the old period comes back
    assert interval.due_in(100.0, 130.0) == -20.0  # shortened: due already
    interval.set(3_600.0)
    assert interval.due_in(100.0, 130.0) == 3_570.0  # lengthened: pushed out


def test_none_means_never_due() -> None:
    interval = Interval(None)
    assert interval.seconds is None
    assert interval.due_in(0.0, 1e9) == math.inf
    interval.set(5.0)
    assert interval.due_in(0.0, 1.0) == 4.0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_a_period_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        Interval(bad)
    interval = Interval(1.0)
    with pytest.raises(ValueError, match="positive number of seconds"):
        interval.set(bad)
    assert interval.seconds == 1.0  # a refused period changes nothing
