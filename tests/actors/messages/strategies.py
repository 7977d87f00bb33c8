"""Hypothesis strategies for money, time entries and envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

from actors.messages import ISO_4217, Envelope, Money, TimeApproved, TimeEntry

currencies = st.sampled_from(sorted(ISO_4217))

# Exact decimals of any scale the vendors use, well beyond cents, never NaN or infinity.
amounts = st.decimals(
    min_value=Decimal("-1e15"), max_value=Decimal("1e15"), allow_nan=False, allow_infinity=False
)


@st.composite
def money(draw, currency=currencies) -> Money:
    return Money(amount=draw(amounts), currency=draw(currency))


@st.composite
def minor_unit_money(draw) -> Money:
    """Money that fits its currency's minor unit exactly (what a vendor can carry)."""
    code = draw(currencies)
    units = draw(st.integers(min_value=-(10**15), max_value=10**15))
    return Money.from_minor_units(units, code)


ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20
)
# Years 1900-2200: msgpack stores instants in UTC, and the extremes of datetime's range
# overflow once their offset is applied (tested separately in test_codec).
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), UTC]),
)
hours = st.decimals(min_value=Decimal("-24"), max_value=Decimal("24"), places=4, allow_nan=False)


@st.composite
def time_entries(draw) -> TimeEntry:
    code = draw(currencies)
    rate = st.none() | money(currency=st.just(code))
    return TimeEntry(
        id=draw(ids),
        project_id=draw(ids),
        consultant_id=draw(ids),
        date_performed=draw(st.dates()),
        hours=draw(hours),
        billable=draw(st.booleans()),
        approved=draw(st.booleans()),
        bill_rate=draw(rate),
        cost_rate=draw(rate),
        notes=draw(st.text(max_size=50)),
        updated_at=draw(st.none() | aware_datetimes),
    )


@st.composite
def envelopes(draw) -> Envelope:
    return Envelope.new(
        TimeApproved(entry=draw(time_entries())),
        source=draw(ids),
        object_id=draw(ids),
        version=draw(ids | st.integers(min_value=0)),
        occurred_at=draw(aware_datetimes),
        recorded_at=draw(aware_datetimes),
    )
