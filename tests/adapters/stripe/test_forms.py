"""The form encoder against Stripe's bracket rules (and the sandbox's parser)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sandbox.stripe import parse_form
from adapters.stripe import encode_form


def test_nested_dicts_and_lists_become_bracketed_keys() -> None:
    form = encode_form(
        {
            "customer": "cus_1",
            "metadata": {"pssync_id": "A-1", "pssync_source": "account:A-1"},
            "items": [{"price": "price_1", "quantity": 2}, {"price": "price_2"}],
            "recurring": {"interval": "month", "interval_count": 3},
            "auto_advance": False,
            "description": None,
        }
    )

    assert form == {
        "customer": "cus_1",
        "metadata[pssync_id]": "A-1",
        "metadata[pssync_source]": "account:A-1",
        "items[0][price]": "price_1",
        "items[0][quantity]": "2",
        "items[1][price]": "price_2",
        "recurring[interval]": "month",
        "recurring[interval_count]": "3",
        "auto_advance": "false",
    }


def test_encoding_round_trips_through_stripes_parser() -> None:
    values = {
        "a": "1",
        "types": ["invoice.paid", "invoice.voided"],
        "created": {"gte": 5},
        "deep": {"list": [{"x": "y"}]},
    }

    parsed = parse_form(list(encode_form(values).items()))

    assert parsed == {
        "a": "1",
        "types": ["invoice.paid", "invoice.voided"],
        "created": {"gte": "5"},
        "deep": {"list": [{"x": "y"}]},
    }


@pytest.mark.parametrize("value", [1.5, Decimal("10.50"), object()])
def test_floats_decimals_and_objects_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="cannot form-encode amount"):
        encode_form({"amount": value})


def test_empty_string_is_sent_so_stripe_can_unset() -> None:
    assert encode_form({"metadata": {"old": ""}}) == {"metadata[old]": ""}


def test_encoding_matches_the_official_library() -> None:
    encode = pytest.importorskip("stripe._encode")._api_encode
    values = {
        "customer": "cus_1",
        "metadata": {"pssync_id": "A-1"},
        "items": [{"price": "price_1", "quantity": 2}],
        "recurring": {"interval": "month"},
        "auto_advance": False,
        "types": ["invoice.paid", "invoice.voided"],
        "skipped": None,
    }

    official = {key: str(value) for key, value in encode(values)}

    assert encode_form(values) == official
