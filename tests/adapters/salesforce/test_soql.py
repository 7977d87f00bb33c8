"""SOQL text: literals that cannot break out of their quotes, truncated datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from adapters.salesforce.soql import datetime_literal, id_list, select, string_literal


def test_string_literals_escape_quotes_and_backslashes() -> None:
    assert string_literal("O'Brien \\ Co\n") == "'O\\'Brien \\\\ Co\\n'"
    assert id_list(["001A", "001B"]) == "('001A', '001B')"


def test_datetime_literals_are_utc_and_truncated_to_the_second() -> None:
    moment = datetime(2026, 1, 1, 10, 30, 5, 999_000, tzinfo=timezone(timedelta(hours=1)))
    assert datetime_literal(moment) == "2026-01-01T09:30:05Z"
    assert datetime_literal(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"


def test_select_drops_duplicates_case_insensitively() -> None:
    assert select(["Id", "Name", "id", "NAME"], subqueries=["SELECT Id FROM X"]) == (
        "Id, Name, (SELECT Id FROM X)"
    )
