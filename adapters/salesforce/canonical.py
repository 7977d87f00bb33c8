"""Salesforce records → canonical entities, through the versioned field mapping.

The mapping file (``config/mappings/salesforce.toml``) names the vendor fields of each
canonical field; this module adds what a flat mapping cannot say: nested structs (the
billing address and billing contact inside an Account, the lines inside an Opportunity)
and the ids other systems hold, read from the custom fields named in the options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from actors.errors import PayloadError
from actors.messages import Account, Address, Contact, ExternalRef, Opportunity, OpportunityLine

from ..mapping import EntityMapping, LiveMappings
from .options import SalesforceOptions
from .soql import fields_of

__all__ = ["RecordDecoder"]

T = TypeVar("T")

# Fields the adapter itself reads, whatever the mapping says.
_ACCOUNT_KEYS = ("Id", "ParentId", "SystemModstamp")
_OPPORTUNITY_KEYS = ("Id", "AccountId", "SystemModstamp", "IsWon")
_LINE_KEYS = ("Id",)


class AccountEntities:
    """The account-side mapping entities, looked up at each use: a reload swaps the
    mapping under a running feed or writer (``_mappings`` is the adapter's)."""

    _mappings: LiveMappings

    @property
    def account(self) -> EntityMapping:
        return self._mappings.entity("account")

    @property
    def address(self) -> EntityMapping:
        return self._mappings.entity("account_billing_address")

    @property
    def contact(self) -> EntityMapping:
        return self._mappings.entity("contact")


class RecordDecoder(AccountEntities):
    """Turns decoded query records into Accounts, Contacts and Opportunities."""

    def __init__(self, mappings: LiveMappings, options: SalesforceOptions) -> None:
        self.options = options
        self._mappings = mappings

    @property
    def opportunity(self) -> EntityMapping:
        return self._mappings.entity("opportunity")

    @property
    def line(self) -> EntityMapping:
        return self._mappings.entity("opportunity_line")

    # -- what to select ------------------------------------------------------------------

    def account_fields(self) -> list[str]:
        relationship = self.options.fields.billing_contact_relationship
        return [
            *_ACCOUNT_KEYS,
            *fields_of(self.account),
            *fields_of(self.address),
            *self.options.fields.account_refs.values(),
            *fields_of(self.contact, prefix=f"{relationship}."),
        ]

    def opportunity_fields(self) -> list[str]:
        return [
            *_OPPORTUNITY_KEYS,
            *fields_of(self.opportunity),
            *self.options.fields.opportunity_refs.values(),
        ]

    def line_fields(self) -> list[str]:
        return [*_LINE_KEYS, *fields_of(self.line)]

    # -- records → entities --------------------------------------------------------------

    def to_contact(self, record: Mapping[str, Any]) -> Contact:
        record_id = _id(record)
        values = self.contact.to_canonical(record, record_id=record_id)
        return _convert(values, Contact, f"Contact {record_id}")

    def to_account(self, record: Mapping[str, Any]) -> Account:
        """An Account with its billing address, billing contact and other systems' ids."""
        record_id = _id(record)
        values = self.account.to_canonical(record, record_id=record_id)
        address = self.address.to_canonical(record, record_id=record_id)
        street = address.pop("street", None)
        if street:
            address["lines"] = tuple(line for line in str(street).splitlines() if line)
        if any(address.values()):
            values["billing_address"] = _convert(address, Address, f"Account {record_id}")
        contact = record.get(self.options.fields.billing_contact_relationship)
        if isinstance(contact, Mapping):
            values["billing_contact"] = self.to_contact(contact)
        elif contact is not None:
            raise PayloadError(
                f"expected a related Contact, got {type(contact).__name__}",
                where=f"salesforce Account {record_id} "
                f"({self.options.fields.billing_contact_relationship})",
            )
        values["external_refs"] = _refs(record, self.options.fields.account_refs, "customer")
        return _convert(values, Account, f"Account {record_id}")

    def to_opportunity(
        self, record: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]
    ) -> Opportunity:
        """An Opportunity with its lines; a line without its own service line gets the deal's."""
        record_id = _id(record)
        values = self.opportunity.to_canonical(record, record_id=record_id)
        service_line = values.get("service_line", "")
        converted = []
        for line in lines:
            line_id = _id(line)
            line_values = self.line.to_canonical(line, record_id=line_id)
            line_values.setdefault("service_line", service_line)
            converted.append(
                _convert(line_values, OpportunityLine, f"OpportunityLineItem {line_id}")
            )
        values["lines"] = tuple(converted)
        values["external_refs"] = _refs(record, self.options.fields.opportunity_refs, "")
        return _convert(values, Opportunity, f"Opportunity {record_id}")


def _id(record: Mapping[str, Any]) -> str:
    value = record.get("Id")
    if not isinstance(value, str) or not value:
        kind = (record.get("attributes") or {}).get("type", "record")
        raise PayloadError("record has no Id", where=f"salesforce {kind}")
    return value


def _refs(
    record: Mapping[str, Any], fields: Mapping[str, str], object_type: str
) -> tuple[ExternalRef, ...]:
    refs = []
    for system, field in fields.items():
        value = record.get(field)
        if value not in (None, ""):
            refs.append(ExternalRef(system=system, id=str(value), object_type=object_type))
    return tuple(refs)


def _convert(values: dict[str, Any], kind: type[T], where: str) -> T:
    # strict=False lets the mapping's text values meet numeric fields (the payment-terms
    # enum yields "30" for an int); anything that still does not fit is a PayloadError.
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise PayloadError(str(exc), where=f"salesforce {where}") from exc
