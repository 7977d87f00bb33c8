"""Billing months as the workflows name them: ``YYYY-MM`` (UTC calendar months).

time_expense_to_erp groups postings and T&M drafts by month, tm_close and the close
scheduler close months, operators name them on the control socket: one place turns the
text into dates and back.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

__all__ = ["month_bounds", "month_of", "next_month"]

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])", re.ASCII)


def month_of(day: date) -> str:
    """The month ``day`` falls in."""
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of ``month``; ValueError naming it if it is not ``YYYY-MM``."""
    found = _MONTH.fullmatch(month)
    try:
        if found is None:
            raise ValueError
        first = date(int(found[1]), int(found[2]), 1)
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    except (ValueError, OverflowError):
        raise ValueError(f"period {month!r}: expected a month, YYYY-MM") from None
    return first, following - timedelta(days=1)


def next_month(month: str) -> str:
    """The month after ``month``."""
    return month_of(month_bounds(month)[1] + timedelta(days=1))
