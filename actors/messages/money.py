"""Money: an exact Decimal amount in one ISO 4217 currency, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from msgspec import Meta, Struct

from .currencies import is_currency, minor_unit_exponent

__all__ = ["CurrencyCode", "Money", "check_currency", "sum_money"]

CurrencyCode = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
"""Three upper-case letters; structs holding one also check it against the ISO table."""


def check_currency(code: object) -> None:
    """Raise ``ValueError`` unless ``code`` is a known ISO 4217 code.

    Used by ``__post_init__`` hooks: msgspec turns the error into a validation error that
    names the struct's path, which the codec reports as a ``PayloadError``.
    """
    if not is_currency(code):
        raise ValueError(f"unknown ISO 4217 currency code {code!r}")


class Money(Struct, frozen=True, kw_only=True):
    """An exact amount in one currency.

    ``amount`` must be a finite ``Decimal``: floats cannot represent most decimal fractions
    (0.1 + 0.2 != 0.3), so they are refused at construction, not rounded. Build from
    strings or integers with :meth:`of`, or from vendor minor units with
    :meth:`from_minor_units`. Arithmetic and ordering work only between the same currency.
    """

    amount: Decimal
    currency: CurrencyCode

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(
                f"Money amount must be a Decimal, not {type(self.amount).__name__} "
                f"({self.amount!r}); floats are never money, use Money.of('12.34', ...)"
            )
        if not self.amount.is_finite():
            raise ValueError(f"Money amount must be finite, not {self.amount}")
        check_currency(self.currency)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def of(cls, amount: Decimal | str | int, currency: str) -> Money:
        """Money from a Decimal, a decimal string (``"12.50"``) or an int; floats refused."""
        if isinstance(amount, bool) or not isinstance(amount, Decimal | str | int):
            raise TypeError(
                f"Money.of needs a Decimal, str or int amount, not {type(amount).__name__} "
                f"({amount!r}); floats are never money"
            )
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {amount!r}") from None
        return cls(amount=value, currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``, the start value for sums."""
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def from_minor_units(cls, units: int, currency: str, *, exponent: int | None = None) -> Money:
        """Money from an integer count of minor units (Stripe ``unit_amount``: 1050 USD → 10.50).

        ``exponent`` overrides the ISO exponent for vendors that deviate from it (Stripe
        treats a few currencies as zero-decimal); by default the ISO table decides.
        """
        if isinstance(units, bool) or not isinstance(units, int):
            raise TypeError(f"minor units must be an int, not {type(units).__name__} ({units!r})")
        check_currency(currency)
        exp = minor_unit_exponent(currency) if exponent is None else exponent
        return cls(amount=Decimal(units).scaleb(-exp), currency=currency)

    # -- conversion --------------------------------------------------------------------

    def to_minor_units(self, *, exponent: int | None = None) -> int:
        """The amount as an integer count of minor units (10.50 USD → 1050).

        Raises ``ValueError`` if that would lose precision (10.505 USD): round first with
        :meth:`rounded` if rounding is what the business wants.
        """
        exp = minor_unit_exponent(self.currency) if exponent is None else exponent
        scaled = self.amount.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise ValueError(
                f"{self} has more than {exp} decimal places; converting to minor units "
                "would lose precision (round it explicitly first)"
            )
        return int(scaled)

    def rounded(self, *, rounding: str = ROUND_HALF_UP) -> Money:
        """This amount quantized to the currency's minor unit (half-up unless told)."""
        quantum = Decimal(1).scaleb(-minor_unit_exponent(self.currency))
        return Money(
            amount=self.amount.quantize(quantum, rounding=rounding), currency=self.currency
        )

    # -- arithmetic --------------------------------------------------------------------

    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(
                f"cannot {op} {self.currency} and {other.currency}: "
                "amounts in different currencies must be converted explicitly first"
            )
        return other

    def __add__(self, other: Money) -> Money:
        other = self._same(other, "add")
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        other = self._same(other, "subtract")
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __abs__(self) -> Money:
        return Money(amount=abs(self.amount), currency=self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        # Scaling (hours x rate, quantity x unit price) takes an exact factor only.
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            raise TypeError(
                f"Money can be multiplied by a Decimal or int only, not {type(factor).__name__}"
            )
        return Money(amount=self.amount * factor, currency=self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other, "compare").amount

    def is_zero(self) -> bool:
        """Whether the amount is zero (in any scale: 0, 0.00)."""
        return self.amount.is_zero()

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def sum_money(items: list[Money] | tuple[Money, ...], currency: str) -> Money:
    """The sum of ``items``, all in ``currency``; zero in ``currency`` when empty."""
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total
