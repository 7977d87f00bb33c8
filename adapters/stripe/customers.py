"""``UpsertCustomer``: one Stripe customer per canonical account.

The customer carries the account id in metadata (``id_key``) and is found by it before
anything is created; a found customer is updated only where the mapped fields differ, so
executing the command again writes nothing.

A command restricted to some fields (``UpsertCustomer.fields``) updates a found customer
with only the parameters those fields map to (``name``; ``email`` for ``invoice_email``;
``email`` and ``phone`` for ``billing_contact``; ``address`` for ``billing_address``) and
pssync's metadata keys. Stripe leaves every parameter a customer update does not name
unchanged, and merges metadata by key, so what people set in Stripe survives. A customer
not found is created from the whole account.
"""

from __future__ import annotations

from typing import Any

from actors.messages import Account, UpsertCustomer

from ..base import CommandResult
from ..governor import Lane
from ..mapping import EntityMapping
from .api import StripeApi
from .wire import Customer, to_record

__all__ = ["customer_values", "upsert_customer"]


_FIELDS_OF = {
    "name": "name",
    "email": "invoice_email",
    "phone": "billing_contact",
    "address_line1": "billing_address",
    "address_line2": "billing_address",
    "city": "billing_address",
    "region": "billing_address",
    "postal_code": "billing_address",
    "country": "billing_address",
}
"""Value of :func:`customer_values` → the canonical customer field it comes from."""


def customer_values(account: Account) -> dict[str, Any]:
    """Canonical values of the ``customer`` mapping, from an account (blank → unset)."""
    contact = account.billing_contact
    address = account.billing_address
    lines = address.lines if address is not None else ()
    values: dict[str, Any] = {
        "name": account.name,
        "email": contact.email if contact is not None else "",
        "phone": contact.phone if contact is not None else "",
        "address_line1": lines[0] if lines else "",
        "address_line2": ", ".join(lines[1:]),
        "city": address.city if address is not None else "",
        "region": address.region if address is not None else "",
        "postal_code": address.postal_code if address is not None else "",
        "country": address.country if address is not None else "",
    }
    # An empty canonical field means "not known here", never "erase it in Stripe".
    return {name: value for name, value in values.items() if value}


async def upsert_customer(
    api: StripeApi, mapping: EntityMapping, command: UpsertCustomer
) -> CommandResult:
    """Create the customer, or update the one whose metadata carries the account id."""
    options = api.options
    account = command.account
    wanted = customer_values(account)
    metadata = {
        options.id_key: account.id,
        options.source_key: f"account:{account.id}",
    }
    body = {**mapping.to_vendor(wanted), "metadata": metadata}
    # What an existing customer gets: the named fields only (all when none are named).
    update = {name: value for name, value in wanted.items() if command.writes(_FIELDS_OF[name])}
    correlation = command.correlation_id
    found = await api.find_by_metadata(
        "customers", Customer, account.id, lane=Lane.MASTER_DATA, correlation_id=correlation
    )
    if not found:
        customer = await api.post(
            "/v1/customers",
            Customer,
            body,
            lane=Lane.MASTER_DATA,
            idempotency_key=f"{command.idempotency_key}:customer",
            correlation_id=correlation,
        )
        return _result(api, account.id, customer, created=True)
    customer = found[0]  # the oldest: a duplicate made outside pssync never wins
    current = mapping.to_canonical(to_record(customer), record_id=customer.id)
    changed = {name: value for name, value in update.items() if current.get(name) != value}
    if changed or any(customer.metadata.get(key) != value for key, value in metadata.items()):
        customer = await api.post(
            f"/v1/customers/{customer.id}",
            Customer,
            {**mapping.to_vendor(update), "metadata": metadata},
            lane=Lane.MASTER_DATA,
            idempotency_key=f"{command.idempotency_key}:customer-update",
            correlation_id=correlation,
        )
    details = {"duplicates": ",".join(other.id for other in found[1:])} if found[1:] else {}
    return _result(api, account.id, customer, created=False, details=details)


def _result(
    api: StripeApi,
    account_id: str,
    customer: Customer,
    *,
    created: bool,
    details: dict[str, str] | None = None,
) -> CommandResult:
    return CommandResult(
        system=api.system,
        ids={"customer": customer.id, account_id: customer.id},
        created=created,
        details=details or {},
    )
