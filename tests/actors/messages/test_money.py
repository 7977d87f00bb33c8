"""Money: Decimal + ISO 4217 code, minor units without precision loss, same-currency math."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.messages import ISO_4217, Money, minor_unit_exponent

from .strategies import amounts, currencies, minor_unit_money, money


def test_a_float_amount_is_refused_with_a_clear_error():
    with pytest.raises(TypeError, match=r"must be a Decimal, not float .*floats are never money"):
        Money(amount=12.5, currency="USD")


def test_money_of_refuses_a_float():
    with pytest.raises(TypeError, match="floats are never money"):
        Money.of(0.1, "USD")


@pytest.mark.parametrize("value", [True, None, [1]])
def test_money_of_refuses_non_numbers(value):
    with pytest.raises(TypeError):
        Money.of(value, "USD")


def test_money_of_accepts_decimal_string_and_int():
    assert Money.of("12.50", "USD").amount == Decimal("12.50")
    assert Money.of(7, "JPY").amount == Decimal(7)
    assert Money.of(Decimal("1.1"), "EUR") == Money(amount=Decimal("1.1"), currency="EUR")


def test_money_of_refuses_garbage_strings():
    with pytest.raises(ValueError, match="not a decimal amount"):
        Money.of("12,50", "EUR")


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_amounts_are_refused(amount):
    with pytest.raises(ValueError, match="finite"):
        Money(amount=Decimal(amount), currency="USD")


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "XYZ", "XAU", "", 840])
def test_currency_must_be_a_known_iso_code(code):
    with pytest.raises(ValueError, match="unknown ISO 4217 currency code"):
        Money(amount=Decimal(1), currency=code)


def test_lower_case_currency_is_refused_when_decoding():
    with pytest.raises(msgspec.ValidationError, match="regex"):
        msgspec.json.decode(b'{"amount": "1", "currency": "usd"}', type=Money)


@pytest.mark.parametrize(
    ("units", "code", "expected"),
    [
        (1050, "USD", "10.50"),  # Stripe unit_amount / Kantata *_in_cents
        (1050, "JPY", "1050"),
        (1050, "KWD", "1.050"),
        (12345, "CLF", "1.2345"),
        (-1, "EUR", "-0.01"),
        (0, "GBP", "0.00"),
    ],
)
def test_from_minor_units_uses_the_iso_exponent(units, code, expected):
    money = Money.from_minor_units(units, code)

    assert str(money.amount) == expected
    assert money.to_minor_units() == units


def test_to_minor_units_refuses_precision_loss():
    with pytest.raises(ValueError, match="lose precision"):
        Money.of("10.505", "USD").to_minor_units()
    with pytest.raises(ValueError, match="lose precision"):
        Money.of("1.5", "JPY").to_minor_units()


def test_trailing_zeros_beyond_the_minor_unit_are_not_a_loss():
    assert Money.of("10.5000", "USD").to_minor_units() == 1050


def test_exponent_override_for_vendor_quirks():
    # Stripe, for example, counts some ISO two-decimal currencies in whole units.
    money = Money.of("1500", "HUF")

    assert money.to_minor_units(exponent=0) == 1500
    assert Money.from_minor_units(1500, "HUF", exponent=0) == money


def test_from_minor_units_refuses_floats_and_bools():
    with pytest.raises(TypeError):
        Money.from_minor_units(10.0, "USD")
    with pytest.raises(TypeError):
        Money.from_minor_units(True, "USD")


def test_rounded_quantizes_to_the_minor_unit_half_up():
    assert Money.of("10.005", "USD").rounded() == Money.of("10.01", "USD")
    assert str(Money.of("2.5", "JPY").rounded().amount) == "3"
    assert str(Money.of("1", "KWD").rounded().amount) == "1.000"


def test_same_currency_arithmetic():
    a, b = Money.of("10.50", "EUR"), Money.of("0.25", "EUR")

    assert a + b == Money.of("10.75", "EUR")
    assert a - b == Money.of("10.25", "EUR")
    assert -a == Money.of("-10.50", "EUR")
    assert abs(-a) == a
    assert a * Decimal("7.25") == Money.of("76.125", "EUR")
    assert 2 * a == Money.of("21.00", "EUR")
    assert b < a
    assert a >= b
    assert Money.zero("EUR").is_zero()


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
    ],
)
def test_mixed_currency_arithmetic_is_refused(operation):
    usd, eur = Money.of("1", "USD"), Money.of("1", "EUR")

    with pytest.raises(ValueError, match=r"cannot .* USD and EUR: .* converted explicitly"):
        operation(usd, eur)


def test_multiplying_money_by_a_float_is_refused():
    with pytest.raises(TypeError, match="Decimal or int only"):
        Money.of("1", "USD") * 1.1


def test_adding_a_number_to_money_is_refused():
    with pytest.raises(TypeError):
        Money.of("1", "USD") + Decimal(1)


def test_equal_money_hashes_equal():
    assert hash(Money.of("1.0", "USD")) == hash(Money.of("1.00", "USD"))
    assert Money.of("1", "USD") != Money.of("1", "EUR")


def test_str_is_amount_and_code():
    assert str(Money.of("12.30", "CHF")) == "12.30 CHF"


def test_iso_table_codes_and_exponents_are_sane():
    assert len(ISO_4217) > 150
    for code, exponent in ISO_4217.items():
        assert len(code) == 3
        assert code.isascii()
        assert code.isupper()
        assert exponent in {0, 2, 3, 4}
    assert (minor_unit_exponent("USD"), minor_unit_exponent("JPY")) == (2, 0)
    assert (minor_unit_exponent("BHD"), minor_unit_exponent("UYW")) == (3, 4)
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        minor_unit_exponent("XXX")


@given(minor_unit_money())
def test_minor_units_round_trip(money):
    assert Money.from_minor_units(money.to_minor_units(), money.currency) == money


@given(money())
def test_money_round_trips_exactly_through_msgpack_and_json(money):
    for module in (msgspec.msgpack, msgspec.json):
        decoded = module.decode(module.encode(money), type=Money)
        assert decoded == money
        assert decoded.amount.as_tuple() == money.amount.as_tuple()


@given(currencies, st.lists(amounts, max_size=10))
def test_addition_is_exact(code, values):
    total = Money.zero(code)
    for value in values:
        total = total + Money(amount=value, currency=code)
    assert total.amount == sum(values, Decimal(0))
