"""Canonical codes → NetSuite reference fields (``{"id": …}`` or ``{"externalId": …}``).

Subsidiary comes from ``FinancialDimensions.subsidiary``, else ``legal_entity`` (both looked
up in ``options.subsidiaries``), else ``options.default_subsidiary_id``. Department, class
(``cost_centre``) and location come from their own tables. A code with no entry is a
PermanentError naming the option to fix.
"""

from __future__ import annotations

from typing import Any

from actors.errors import PermanentError
from actors.messages import ExpenseEntry, FinancialDimensions, TimeEntry

from .ids import external_id
from .options import NetSuiteOptions

__all__ = ["References"]

Ref = dict[str, str]


class References:
    """Builds reference fields for one account from its options."""

    def __init__(self, options: NetSuiteOptions, *, system: str) -> None:
        self.options = options
        self.system = system

    def _missing(self, what: str, value: str, option: str) -> PermanentError:
        return PermanentError(
            f"netsuite: no {what} for {value!r} (add it to options.{option})",
            system=self.system,
            code="UNMAPPED",
        )

    def _lookup(self, table: dict[str, str], value: str, what: str, option: str) -> Ref:
        try:
            return {"id": table[value]}
        except KeyError:
            raise self._missing(what, value, option) from None

    def subsidiary(
        self, dimensions: FinancialDimensions | None, *, legal_entity: str | None = None
    ) -> Ref | None:
        """The subsidiary reference, or None when nothing names one and there is no default."""
        dims = dimensions or FinancialDimensions()
        code = dims.subsidiary or dims.legal_entity or legal_entity
        if code is not None:
            return self._lookup(self.options.subsidiaries, code, "subsidiary", "subsidiaries")
        if self.options.default_subsidiary_id:
            return {"id": self.options.default_subsidiary_id}
        return None

    def required_subsidiary(
        self, dimensions: FinancialDimensions | None, *, legal_entity: str | None = None
    ) -> Ref:
        """As :meth:`subsidiary`, but a PermanentError when none can be found."""
        ref = self.subsidiary(dimensions, legal_entity=legal_entity)
        if ref is None:
            raise PermanentError(
                "netsuite: the posting names no subsidiary or legal entity and "
                "options.default_subsidiary_id is unset",
                system=self.system,
                code="UNMAPPED",
            )
        return ref

    def currency(self, code: str) -> Ref:
        """The currency reference of an ISO 4217 code."""
        return self._lookup(self.options.currencies, code, "currency", "currencies")

    def segments(self, dimensions: FinancialDimensions | None) -> dict[str, Ref]:
        """``department``, ``class`` and ``location`` fields for the dimensions that are set."""
        if dimensions is None:
            return {}
        fields: dict[str, Ref] = {}
        if dimensions.department is not None:
            fields["department"] = self._lookup(
                self.options.departments, dimensions.department, "department", "departments"
            )
        if dimensions.cost_centre is not None:
            fields["class"] = self._lookup(
                self.options.classes, dimensions.cost_centre, "class", "classes"
            )
        if dimensions.location is not None:
            fields["location"] = self._lookup(
                self.options.locations, dimensions.location, "location", "locations"
            )
        return fields

    def employee(self, entry: TimeEntry | ExpenseEntry) -> Ref:
        """The consultant's employee record.

        In order: the entry's own ERP reference (an ``ExternalRef`` for this system with
        object type ``employee``), ``options.employees``, else the employee's external id
        ``<prefix>-emp-<consultant id>`` (an employee sync that sets external ids).
        """
        for ref in entry.external_refs:
            if ref.system == self.system and ref.object_type == "employee":
                return {"id": ref.id}
        mapped = self.options.employees.get(entry.consultant_id)
        if mapped is not None:
            return {"id": mapped}
        return {"externalId": self.external_id("emp", entry.consultant_id)}

    def job(self, project_id: str) -> Ref:
        """The project's job, by the external id :class:`UpsertJob` gave it."""
        return {"externalId": self.external_id("job", project_id)}

    def external_id(self, kind: str, canonical_id: str) -> str:
        """This account's external id of ``canonical_id`` as a ``kind`` record."""
        return external_id(self.options.external_id_prefix, kind, canonical_id)


def present(values: dict[str, Any]) -> dict[str, Any]:
    """Values worth writing: ``None`` and empty strings would blank NetSuite fields."""
    return {key: value for key, value in values.items() if value is not None and value != ""}
