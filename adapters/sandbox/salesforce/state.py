"""The simulated org's records, with Salesforce's write rules.

Every write goes through :meth:`SalesforceState.insert` / :meth:`update` /
:meth:`delete`, which validate against :mod:`.schema`, stamp ``SystemModstamp`` and
``LastModifiedDate`` from the :class:`~adapters.sandbox.clock.SandboxClock`, and keep the
derived fields true:

- Opportunity ``IsClosed``/``IsWon``/``ForecastCategoryName`` from ``StageName`` (and
  ``Probability`` when the stage changes and no probability is given);
- OpportunityLineItem ``TotalPrice = Quantity * UnitPrice`` (or ``UnitPrice`` from a
  given ``TotalPrice``); the parent's ``Amount`` becomes the sum of its lines and
  ``HasOpportunityLineItem`` is kept, touching the parent's ``SystemModstamp``;
- Contact ``Name`` from first and last name.

``validate=False`` lets the scenario driver write data a real org would also hold
(e.g. a currency the ERP does not know) without tripping the REST validation.
:meth:`transaction` undoes every write inside it on failure (``allOrNone``).

Assumption: ``PricebookEntryId`` is not required on line items (the sandbox models no
price books, systems.md marks the requirement [mem]).
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..clock import SandboxClock
from .errors import SalesforceError
from .ids import is_id, make_id, to_18
from .schema import PREFIXES, SOBJECTS, STAGES, SObject, sobject

INTEGRATION_USER_ID = "005Rs0000000001AAA"
ORG_ID = "00DRs0000000001AAA"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_CURSORS = 100


def format_datetime(epoch_s: float) -> str:
    """Salesforce's REST datetime form: ``2026-01-01T09:30:00.000+0000``."""
    moment = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_datetime(value: str) -> float:
    """Epoch seconds from an ISO 8601 datetime (``Z``, ``+0000`` or ``+00:00`` offsets)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def normalize_datetime(value: str) -> str:
    return format_datetime(parse_datetime(value))


class SalesforceState:
    """Records by type and id, the deletion log, OAuth sessions and query cursors."""

    def __init__(self, clock: SandboxClock, *, seed: int = 0) -> None:
        self.clock = clock
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SOBJECTS}
        self.deleted: list[dict[str, str]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.cursors: OrderedDict[str, tuple[list[dict[str, Any]], int]] = OrderedDict()
        self._counters: dict[str, int] = {}
        self._random = random.Random(seed)
        self._undo: list[tuple[str, str, dict[str, Any] | None]] | None = None
        # Opportunity id → its line ids; rebuilt after a rollback or a restore.
        self._lines: dict[str, set[str]] | None = None

    # -- ids and lookups ---------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return make_id(prefix, self._counters[prefix])

    def new_cursor(self, rows: list[dict[str, Any]], batch_size: int) -> str:
        """Keep a query's rows for ``nextRecordsUrl`` paging (the oldest cursors expire)."""
        cursor = self._new_id("01g")
        self.cursors[cursor] = (rows, batch_size)
        while len(self.cursors) > _MAX_CURSORS:
            self.cursors.popitem(last=False)
        return cursor

    def new_token(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
        body = "".join(self._random.choice(alphabet) for _ in range(96))
        return f"{ORG_ID[:15]}!{body}"

    def get(self, type_name: str, record_id: str) -> dict[str, Any] | None:
        return self.records[type_name].get(to_18(record_id)) if is_id(record_id) else None

    def type_of(self, record_id: str) -> str | None:
        return PREFIXES.get(record_id[:3])

    def lines_of(self, opportunity_id: str) -> list[str]:
        """Ids of the line items of one opportunity (indexed: rollups stay cheap)."""
        if self._lines is None:
            self._lines = {}
            for line_id, line in self.records["OpportunityLineItem"].items():
                self._lines.setdefault(line["OpportunityId"], set()).add(line_id)
        return sorted(self._lines.get(opportunity_id, ()))

    def find(self, type_name: str, field_name: str, value: Any) -> list[str]:
        """Ids of ``type_name`` records whose ``field_name`` equals ``value``."""
        return [
            record_id
            for record_id, record in self.records[type_name].items()
            if record.get(field_name) == value
        ]

    # -- writes ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Undo every write made inside the block if it raises (allOrNone)."""
        if self._undo is not None:
            yield
            return
        self._undo = []
        deleted_mark = len(self.deleted)
        try:
            yield
        except Exception:
            for type_name, record_id, before in reversed(self._undo):
                if before is None:
                    self.records[type_name].pop(record_id, None)
                else:
                    self.records[type_name][record_id] = before
            del self.deleted[deleted_mark:]
            self._lines = None
            raise
        finally:
            self._undo = None

    def _remember(self, type_name: str, record_id: str) -> None:
        if self._undo is not None:
            before = self.records[type_name].get(record_id)
            self._undo.append((type_name, record_id, copy.deepcopy(before)))

    def insert(self, type_name: str, values: dict[str, Any], *, validate: bool = True) -> str:
        obj = SOBJECTS[type_name]
        values = self._clean(obj, values, creating=True, validate=validate)
        record_id = self._new_id(obj.key_prefix)
        stamp = format_datetime(self.clock.now())
        record: dict[str, Any] = {name: None for name in obj.fields}
        record.update(
            Id=record_id,
            IsDeleted=False,
            CreatedDate=stamp,
            CreatedById=INTEGRATION_USER_ID,
            LastModifiedDate=stamp,
            LastModifiedById=INTEGRATION_USER_ID,
            SystemModstamp=stamp,
            CurrencyIsoCode="USD",
        )
        record.update(values)
        self._remember(type_name, record_id)
        self.records[type_name][record_id] = record
        if type_name == "OpportunityLineItem" and self._lines is not None:
            self._lines.setdefault(record["OpportunityId"], set()).add(record_id)
        self._derive(obj, record, values)
        return record_id

    def update(
        self, type_name: str, record_id: str, values: dict[str, Any], *, validate: bool = True
    ) -> None:
        obj = SOBJECTS[type_name]
        record_id = to_18(record_id)
        if record_id not in self.records[type_name]:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        values = self._clean(obj, values, creating=False, validate=validate)
        self._remember(type_name, record_id)
        record = self.records[type_name][record_id]
        if type_name == "OpportunityLineItem" and "OpportunityId" in values:
            self._lines = None
        record.update(values)
        self._touch(record)
        self._derive(obj, record, values)

    def delete(self, type_name: str, record_id: str) -> None:
        record_id = to_18(record_id)
        record = self.records[type_name].get(record_id)
        if record is None:
            if self._was_deleted(record_id):
                raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        if type_name == "Opportunity":
            for line_id in self.lines_of(record_id):
                self.delete("OpportunityLineItem", line_id)
        self._remember(type_name, record_id)
        del self.records[type_name][record_id]
        if type_name == "OpportunityLineItem" and self._lines is not None:
            self._lines.get(record["OpportunityId"], set()).discard(record_id)
        stamp = format_datetime(self.clock.now())
        self.deleted.append({"type": type_name, "id": record_id, "deletedDate": stamp})
        if type_name == "OpportunityLineItem":
            self._rollup(record["OpportunityId"])

    def _was_deleted(self, record_id: str) -> bool:
        return any(entry["id"] == record_id for entry in self.deleted)

    def _touch(self, record: dict[str, Any]) -> None:
        stamp = format_datetime(self.clock.now())
        record["LastModifiedDate"] = stamp
        record["SystemModstamp"] = stamp
        record["LastModifiedById"] = INTEGRATION_USER_ID

    def _derive(self, obj: SObject, record: dict[str, Any], values: dict[str, Any]) -> None:
        if obj.name == "Opportunity":
            closed, won, probability, forecast = STAGES.get(
                record.get("StageName") or "", (False, False, 0.0, "Pipeline")
            )
            record["IsClosed"], record["IsWon"] = closed, won
            record["ForecastCategoryName"] = forecast
            if "StageName" in values and "Probability" not in values:
                record["Probability"] = probability
            record["HasOpportunityLineItem"] = bool(self.lines_of(record["Id"]))
        elif obj.name == "Contact":
            names = (record.get("FirstName"), record.get("LastName"))
            record["Name"] = " ".join(part for part in names if part)
        elif obj.name == "OpportunityLineItem":
            quantity = record.get("Quantity") or 0
            if "TotalPrice" in values and "UnitPrice" not in values and quantity:
                record["UnitPrice"] = round(record["TotalPrice"] / quantity, 2)
            record["TotalPrice"] = round(quantity * (record.get("UnitPrice") or 0), 2)
            if record.get("ListPrice") is None:
                record["ListPrice"] = record.get("UnitPrice")
            self._rollup(record["OpportunityId"])

    def _rollup(self, opportunity_id: str | None) -> None:
        opportunity = self.records["Opportunity"].get(opportunity_id or "")
        if opportunity is None:
            return
        self._remember("Opportunity", opportunity["Id"])
        lines = [
            self.records["OpportunityLineItem"][line_id]
            for line_id in self.lines_of(opportunity["Id"])
        ]
        opportunity["HasOpportunityLineItem"] = bool(lines)
        if lines:
            opportunity["Amount"] = round(sum(line["TotalPrice"] or 0 for line in lines), 2)
        self._touch(opportunity)

    # -- validation --------------------------------------------------------------------

    def _clean(
        self, obj: SObject, values: dict[str, Any], *, creating: bool, validate: bool
    ) -> dict[str, Any]:
        """Canonical field names and checked values; raises :class:`SalesforceError`."""
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            spec = obj.field(name)
            if spec is None:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {obj.name}",
                    [name],
                )
            if validate and not spec.writable:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {spec.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [spec.name],
                )
            clean[spec.name] = self._check_value(obj, spec.name, value) if validate else value
        if not validate:
            return clean
        # On insert every required field must be set; on update only those being changed.
        required = [
            spec.name
            for spec in obj.fields.values()
            if spec.required and (creating or spec.name in clean) and clean.get(spec.name) is None
        ]
        if obj.name == "OpportunityLineItem" and creating:
            if clean.get("UnitPrice") is not None and clean.get("TotalPrice") is not None:
                raise SalesforceError(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: TotalPrice (only one of unit price or total "
                    "price may be specified)",
                    ["TotalPrice"],
                )
            if clean.get("UnitPrice") is None and clean.get("TotalPrice") is None:
                required.append("UnitPrice")
        if required:
            raise SalesforceError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(required)}]",
                required,
            )
        return clean

    def _check_value(self, obj: SObject, name: str, value: Any) -> Any:
        spec = obj.fields[name]
        if value is None:
            return None

        def wrong(expected: str) -> SalesforceError:
            return SalesforceError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {expected} from value {value!r} for field {name}",
                [name],
            )

        match spec.type:
            case "double" | "currency" | "percent" | "int":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise wrong("double")
                return int(value) if spec.type == "int" else float(value)
            case "boolean":
                if not isinstance(value, bool):
                    raise wrong("boolean")
                return value
            case "date":
                if not isinstance(value, str) or not _DATE.match(value):
                    raise wrong("date")
                return value
            case "datetime":
                try:
                    return normalize_datetime(value)
                except (TypeError, ValueError):
                    raise wrong("datetime") from None
            case "picklist":
                if not isinstance(value, str):
                    raise wrong("string")
                if spec.picklist and value not in spec.picklist:
                    label = (
                        "invalid currency code"
                        if name == "CurrencyIsoCode"
                        else "bad value for restricted picklist field"
                    )
                    raise SalesforceError(
                        400,
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{name}: {label}: {value}",
                        [name],
                    )
                return value
            case "reference" | "id":
                if not isinstance(value, str) or not is_id(value):
                    raise SalesforceError(
                        400, "MALFORMED_ID", f"{name}: id value of incorrect type: {value}", [name]
                    )
                value = to_18(value)
                if spec.reference_to and value not in self.records[spec.reference_to]:
                    raise SalesforceError(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        f"invalid cross reference id: {name}",
                        [name],
                    )
                return value
            case _:
                if not isinstance(value, str):
                    raise wrong("string")
                return value

    # -- VendorState -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {type_name: len(records) for type_name, records in self.records.items()}

    def duplicates(self) -> list[dict[str, Any]]:
        """Records of one type sharing a value in any external-id field."""
        found: list[dict[str, Any]] = []
        for type_name, records in self.records.items():
            for field_name in SOBJECTS[type_name].external_ids:
                by_value: dict[Any, list[str]] = {}
                for record_id, record in records.items():
                    value = record.get(field_name)
                    if value not in (None, ""):
                        by_value.setdefault(value, []).append(record_id)
                found.extend(
                    {"type": type_name, "source_key": f"{field_name}={value}", "ids": ids}
                    for value, ids in by_value.items()
                    if len(ids) > 1
                )
        return found

    def snapshot(self) -> dict[str, Any]:
        return {
            "records": copy.deepcopy(self.records),
            "deleted": list(self.deleted),
            "sessions": copy.deepcopy(self.sessions),
            "counters": dict(self._counters),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.records = {name: {} for name in SOBJECTS}
        for type_name, records in data.get("records", {}).items():
            if sobject(type_name) is not None:
                self.records[type_name] = copy.deepcopy(records)
        self.deleted = list(data.get("deleted", []))
        self.sessions = copy.deepcopy(data.get("sessions", {}))
        self._counters = dict(data.get("counters", {}))
        self.cursors.clear()
        self._lines = None
