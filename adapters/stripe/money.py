"""Canonical money to Stripe's integer minor units, refusing precision loss."""

from __future__ import annotations

from decimal import Decimal

from actors.errors import PermanentError
from actors.messages import Money

__all__ = ["minor_units", "stripe_currency", "whole_quantity"]


def minor_units(money: Money, *, system: str, what: str) -> int:
    """``money`` in minor units (10.50 USD → 1050); PermanentError if that would round.

    Stripe follows ISO 4217 exponents except for a few currencies it treats specially
    (HUF, TWD, ISK, UGX); invoicing in those needs an explicit exponent table first.
    """
    try:
        return money.to_minor_units()
    except ValueError as exc:
        raise PermanentError(f"{what}: {exc}", system=system, code="precision") from exc


def stripe_currency(code: str) -> str:
    """Stripe's lower-case currency code."""
    return code.lower()


def whole_quantity(quantity: Decimal, *, system: str, what: str) -> int:
    """A quantity Stripe can take (a positive integer); PermanentError otherwise."""
    if quantity != quantity.to_integral_value() or quantity < 1:
        raise PermanentError(
            f"{what}: Stripe quantities are whole numbers >= 1, not {quantity}",
            system=system,
            code="quantity",
        )
    return int(quantity)
