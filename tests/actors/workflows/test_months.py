from __future__ import annotations

from datetime import date

import pytest

from actors.workflows.months import month_bounds, month_of, next_month


def test_months_turn_into_their_days_and_follow_each_other() -> None:
    assert month_of(date(2026, 2, 17)) == "2026-02"
    assert month_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert month_bounds("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert next_month("2026-12") == "2027-01"
    assert next_month("2026-01") == "2026-02"


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-1", "26-01", "2026-01\n", "0000-01"])
def test_a_malformed_month_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="expected a month, YYYY-MM"):
        month_bounds(bad)
