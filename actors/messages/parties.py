"""Parties: accounts (customers, with hierarchy), their contacts and addresses."""

from __future__ import annotations

from msgspec import Struct

from .common import AwareDatetime, ExternalRef, NonEmptyStr
from .money import CurrencyCode, check_currency

__all__ = ["Account", "Address", "Contact"]


class Address(Struct, frozen=True, kw_only=True):
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code."""

    lines: tuple[str, ...] = ()
    city: str = ""
    region: str = ""
    """State, province or county."""
    postal_code: str = ""
    country: str = ""


class Contact(Struct, frozen=True, kw_only=True):
    """A person at a customer account."""

    id: NonEmptyStr
    account_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    title: str = ""
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None


class Account(Struct, frozen=True, kw_only=True):
    """A customer account; ``parent_id`` links it into a hierarchy (ultimate parent first).

    ``legal_entity`` is the firm's contracting entity for this customer, which decides the
    ERP it is booked in; ``currency`` is the billing currency.
    """

    id: NonEmptyStr
    name: NonEmptyStr
    parent_id: str | None = None
    legal_entity: str | None = None
    currency: CurrencyCode | None = None
    billing_contact: Contact | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    tax_id: str = ""
    payment_terms_days: int | None = None
    industry: str = ""
    website: str = ""
    owner: str = ""
    """The account owner (sales or client partner) as named in the CRM."""
    active: bool = True
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        if self.currency is not None:
            check_currency(self.currency)
        if self.parent_id is not None and self.parent_id == self.id:
            raise ValueError(f"account {self.id!r} cannot be its own parent")
