"""The simulated NetSuite account: records, validation and business rules.

Every mutation is synchronous (no ``await`` inside), so under trio each request's write
is atomic. Errors are raised as :class:`~.errors.NetSuiteError` and rendered by the app.

Rules worth knowing (the sandbox's choices, documented where NetSuite's are unsure):

- ``externalId`` is unique per record type; a second record with the same one is refused
  with 400 ``DUP_RCRD`` (NetSuite refuses duplicates; the exact REST code is from memory).
- References must be objects, ``{"id": "12"}`` or ``{"externalId": "X"}``; a bare value
  or an unknown record is 400 ``INVALID_CONTENT`` with ``o:errorPath`` naming the field.
- Missing required fields are 400 ``INVALID_CONTENT`` (NetSuite itself answers
  "Please enter value(s) for: …", often as ``USER_ERROR``).
- PATCH merges body fields; a sublist in a PATCH or upsert replaces the whole sublist
  (as NetSuite's ``replace=<sublist>`` query parameter would).
- Deleting a record that other records reference is 400 ``RCRD_HAS_DEPENDENCIES``
  (NetSuite's wording differs; the rule is the same).

Source keys for :meth:`NetSuiteState.duplicates`: the first non-empty value among the
``source_key_fields`` (default ``custentity_pssync_source``, ``custbody_pssync_source``,
``custrecord_pssync_source``), else a ``[pssync:<key>]`` token in ``memo``.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from ..clock import SandboxClock
from .errors import NetSuiteError, invalid_content
from .records import EXTERNAL_ID, ID_SPACE_START, SPECS, RecordSpec, SublistSpec, seed_records

DEFAULT_SOURCE_KEY_FIELDS = (
    "custentity_pssync_source",
    "custbody_pssync_source",
    "custrecord_pssync_source",
)
_MEMO_KEY = re.compile(r"\[pssync:([^\]\s]+)\]")
_HOURS = re.compile(r"^(\d+):([0-5]\d)$")
_CENT = Decimal("0.01")
_REF_DEFAULTS = {
    "subsidiary": "subsidiary",
    "currency": "currency",
    "department": "department",
    "class": "classification",
    "location": "location",
    "incomeAccount": "account",
}


def not_found() -> NetSuiteError:
    return NetSuiteError(
        404,
        "NONEXISTENT_ID",
        "The record instance does not exist. Provide a valid record instance ID.",
    )


def money(value: Decimal) -> float:
    return float(value.quantize(_CENT))


def to_decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def iso_timestamp(epoch_s: float) -> str:
    moment = dt.datetime.fromtimestamp(int(epoch_s), tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class NetSuiteState:
    """All records of one simulated account (implements ``VendorState``)."""

    def __init__(
        self,
        *,
        clock: SandboxClock,
        seed: int = 0,
        consultants: list[dict[str, Any]] | None = None,
        source_key_fields: tuple[str, ...] = DEFAULT_SOURCE_KEY_FIELDS,
    ) -> None:
        self._clock = clock
        self.seed = seed
        self._consultants = consultants
        self.source_key_fields = source_key_fields
        self.reset()

    # ----------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        self.records: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in SPECS}
        self._by_eid: dict[str, dict[str, int]] = {name: {} for name in SPECS}
        self._next_id: dict[str, int] = {}
        self._applied: dict[int, Decimal] = defaultdict(Decimal)
        stamp = iso_timestamp(self._clock.now())
        for type_name, rows in seed_records(self.seed, self._consultants).items():
            for row in rows:
                record = {**row, "dateCreated": stamp, "lastModifiedDate": stamp}
                self.records[type_name][row["id"]] = record
                if record.get("externalId"):
                    self._by_eid[type_name][record["externalId"]] = row["id"]
                space = SPECS[type_name].id_space
                self._next_id[space] = max(self._next_id.get(space, 1), row["id"] + 1)

    def _allocate(self, spec: RecordSpec) -> int:
        space = spec.id_space
        record_id = max(self._next_id.get(space, 1), ID_SPACE_START.get(space, 1))
        self._next_id[space] = record_id + 1
        return record_id

    # ----------------------------------------------------------------- VendorState

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.records.items()}

    def source_key(self, record: dict[str, Any]) -> str | None:
        for name in self.source_key_fields:
            value = record.get(name)
            if value not in (None, ""):
                return str(value)
        match = _MEMO_KEY.search(str(record.get("memo") or ""))
        return match.group(1) if match else None

    def duplicates(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for type_name, rows in self.records.items():
            by_eid: dict[str, list[str]] = defaultdict(list)
            by_source: dict[str, list[str]] = defaultdict(list)
            for record_id, record in sorted(rows.items()):
                if record.get("externalId"):
                    by_eid[record["externalId"]].append(str(record_id))
                key = self.source_key(record)
                if key is not None:
                    by_source[key].append(str(record_id))
            for prefix, groups in (("eid:", by_eid), ("", by_source)):
                for key, ids in sorted(groups.items()):
                    if len(ids) > 1:
                        found.append({"type": type_name, "source_key": prefix + key, "ids": ids})
        return found

    def snapshot(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "next_id": dict(self._next_id),
            "records": {
                name: [copy.deepcopy(row) for _, row in sorted(rows.items())]
                for name, rows in self.records.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.seed = int(data.get("seed", self.seed))
        self.records = {name: {} for name in SPECS}
        self._by_eid = {name: {} for name in SPECS}
        self._applied = defaultdict(Decimal)
        for name, rows in data["records"].items():
            for row in rows:
                record = copy.deepcopy(row)
                self.records[name][int(record["id"])] = record
                record["id"] = int(record["id"])
                if record.get("externalId"):
                    self._by_eid[name][record["externalId"]] = record["id"]
        self._next_id = {space: int(value) for space, value in data["next_id"].items()}
        for payment in self.records["customerpayment"].values():
            self._apply_payment(payment, sign=1)

    # ----------------------------------------------------------------- lookups

    def spec(self, type_name: str) -> RecordSpec:
        spec = SPECS.get(type_name.lower())
        if spec is None:
            raise NetSuiteError(
                404,
                "INVALID_RCRD_TYPE",
                f"Record type '{type_name}' does not exist.",
            )
        return spec

    def get(self, type_name: str, record_id: int) -> dict[str, Any] | None:
        return self.records[type_name].get(record_id)

    def id_for_eid(self, type_name: str, external_id: str) -> int | None:
        return self._by_eid[type_name].get(external_id)

    def resolve(self, type_name: str, ref: str) -> int:
        """A path segment (``647`` or ``eid:CID001``) → internal id, or 404/400."""
        if ref.startswith("eid:"):
            external_id = ref[4:]
            check_external_id(external_id)
            record_id = self.id_for_eid(type_name, external_id)
        elif ref.isdigit():
            record_id = int(ref)
            if record_id not in self.records[type_name]:
                record_id = None
        else:
            raise NetSuiteError(
                400,
                "INVALID_ID",
                f"Invalid record instance identifier '{ref}'. Provide a valid record instance ID.",
            )
        if record_id is None:
            raise not_found()
        return record_id

    def find_ref(self, targets: tuple[str, ...], record_id: int) -> str | None:
        for target in targets:
            if record_id in self.records[target]:
                return target
        return None

    def ref_name(self, type_name: str, record_id: int) -> str | None:
        record = self.records.get(type_name, {}).get(record_id)
        if record is None:
            return None
        value = record.get(SPECS[type_name].name_field)
        return None if value is None else str(value)

    def list_ids(self, type_name: str) -> list[int]:
        return sorted(self.records[type_name])

    def applied_to(self, invoice_id: int) -> Decimal:
        return self._applied.get(invoice_id, Decimal(0))

    # ----------------------------------------------------------------- writes

    def create(self, type_name: str, body: Any, *, external_id: str | None = None) -> int:
        spec = self._writable(type_name)
        fields = self._parse_body(spec, body)
        if external_id is not None:
            fields["externalId"] = external_id
        eid = fields.get("externalId")
        if eid is not None and eid in self._by_eid[spec.name]:
            raise NetSuiteError(
                400,
                "DUP_RCRD",
                f"A {spec.name} record with external ID '{eid}' already exists.",
                path="externalId",
            )
        record_id = self._allocate(spec)
        stamp = iso_timestamp(self._clock.now())
        record = {"id": record_id, **fields, "dateCreated": stamp, "lastModifiedDate": stamp}
        # A refused insert still consumes its id, as NetSuite's sequences do.
        self._finish(spec, record, previous=None)
        self._store(spec, record)
        return record_id

    def update(self, type_name: str, record_id: int, body: Any) -> None:
        spec = self._writable(type_name)
        previous = self.records[spec.name].get(record_id)
        if previous is None:
            raise not_found()
        fields = self._parse_body(spec, body)
        eid = fields.get("externalId")
        if eid is not None and self._by_eid[spec.name].get(eid, record_id) != record_id:
            raise NetSuiteError(
                400,
                "DUP_RCRD",
                f"A {spec.name} record with external ID '{eid}' already exists.",
                path="externalId",
            )
        record = {**copy.deepcopy(previous), **fields}
        record["lastModifiedDate"] = iso_timestamp(self._clock.now())
        self._finish(spec, record, previous=previous)
        self._store(spec, record, previous=previous)

    def upsert(self, type_name: str, external_id: str, body: Any) -> tuple[int, bool]:
        """``PUT …/eid:X``: (id, created)."""
        spec = self._writable(type_name)
        check_external_id(external_id)
        if isinstance(body, dict) and body.get("externalId") not in (None, external_id):
            raise invalid_content(
                "The external ID in the request body does not match the one in the URL.",
                "externalId",
            )
        record_id = self._by_eid[spec.name].get(external_id)
        if record_id is None:
            return self.create(spec.name, body, external_id=external_id), True
        self.update(spec.name, record_id, body)
        return record_id, False

    def delete(self, type_name: str, record_id: int) -> None:
        spec = self._writable(type_name)
        record = self.records[spec.name].get(record_id)
        if record is None:
            raise not_found()
        for other_type, rows in self.records.items():
            for other in rows.values():
                if other is not record and _references(other, spec.name, record_id, other_type):
                    raise NetSuiteError(
                        400,
                        "RCRD_HAS_DEPENDENCIES",
                        "This record cannot be deleted because it has dependent records.",
                    )
        if spec.name == "customerpayment":
            self._apply_payment(record, sign=-1)
        del self.records[spec.name][record_id]
        if record.get("externalId"):
            self._by_eid[spec.name].pop(record["externalId"], None)

    def _writable(self, type_name: str) -> RecordSpec:
        spec = self.spec(type_name)
        if not spec.writable:
            raise NetSuiteError(
                405,
                "INVALID_METHOD",
                f"Records of type '{spec.name}' are read-only in the sandbox.",
            )
        return spec

    def _store(
        self, spec: RecordSpec, record: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        if previous is not None and previous.get("externalId"):
            self._by_eid[spec.name].pop(previous["externalId"], None)
        if previous is not None and spec.name == "customerpayment":
            self._apply_payment(previous, sign=-1)
        self.records[spec.name][record["id"]] = record
        if record.get("externalId"):
            self._by_eid[spec.name][record["externalId"]] = record["id"]
        if spec.name == "customerpayment":
            self._apply_payment(record, sign=1)

    def _apply_payment(self, payment: dict[str, Any], *, sign: int) -> None:
        for line in payment.get("apply", []):
            if line.get("apply", True):
                invoice_id = int(line["doc"]["id"])
                self._applied[invoice_id] += sign * to_decimal(line["amount"])
                invoice = self.records["invoice"].get(invoice_id)
                if invoice is not None:
                    self.refresh_invoice_status(invoice)

    # ----------------------------------------------------------------- validation

    def _parse_body(self, spec: RecordSpec, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid_content("The request body must be a JSON object.")
        fields: dict[str, Any] = {}
        for name, value in body.items():
            if name in ("id", "links") or name in spec.read_only:
                continue
            if name == "externalId":
                if value is not None:
                    if not isinstance(value, str):
                        raise invalid_content("Invalid value for field externalId.", "externalId")
                    check_external_id(value, path="externalId")
                fields[name] = value
            elif name in spec.sublists:
                fields[name] = self._parse_sublist(name, spec.sublists[name], value)
            elif name in spec.refs:
                fields[name] = None if value is None else self._ref(value, spec.refs[name], name)
            elif name in spec.numeric:
                fields[name] = None if value is None else _number(value, name)
            elif name in spec.dates:
                fields[name] = None if value is None else _date(value, name)
            else:
                fields[name] = copy.deepcopy(value)
        return fields

    def _parse_sublist(self, name: str, sublist: SublistSpec, value: Any) -> list[dict]:
        if not isinstance(value, dict) or not isinstance(value.get("items"), list):
            raise invalid_content(
                f"Invalid value for sublist {name}: expected an object with 'items'.", name
            )
        lines = []
        for index, raw in enumerate(value["items"]):
            path = f"{name}.items[{index}]"
            if not isinstance(raw, dict):
                raise invalid_content(f"Invalid sublist line {path}.", path)
            line: dict[str, Any] = {}
            for field_name, field_value in raw.items():
                field_path = f"{path}.{field_name}"
                if field_name == "links":
                    continue
                if field_name in sublist.refs:
                    line[field_name] = (
                        None
                        if field_value is None
                        else self._ref(field_value, sublist.refs[field_name], field_path)
                    )
                elif field_name in sublist.numeric:
                    line[field_name] = (
                        None if field_value is None else _number(field_value, field_path)
                    )
                else:
                    line[field_name] = copy.deepcopy(field_value)
            for required in sublist.required:
                if line.get(required) is None:
                    raise invalid_content(
                        f"Please enter value(s) for: {required}.", f"{path}.{required}"
                    )
            lines.append(line)
        return lines

    def _ref(self, value: Any, targets: tuple[str, ...], path: str) -> dict[str, str]:
        if not isinstance(value, dict) or not ({"id", "externalId"} & value.keys()):
            raise invalid_content(
                f"Invalid value for field {path}: a reference must be an object "
                'such as {"id": "12"}.',
                path,
            )
        if value.get("id") is not None:
            raw = str(value["id"])
            record_id = int(raw) if raw.isdigit() else None
            target = None if record_id is None else self.find_ref(targets, record_id)
        else:
            external_id = str(value["externalId"])
            target, record_id = None, None
            for candidate in targets:
                found = self._by_eid[candidate].get(external_id)
                if found is not None:
                    target, record_id = candidate, found
                    break
        if target is None or record_id is None:
            raise invalid_content(f"Invalid value for field {path}.", path)
        return {"id": str(record_id), "_type": target}

    def _finish(
        self, spec: RecordSpec, record: dict[str, Any], previous: dict[str, Any] | None
    ) -> None:
        """Required fields, defaults and the business rules of each type (mutates)."""
        for name in spec.required:
            if record.get(name) in (None, "", []):
                raise invalid_content(f"Please enter value(s) for: {name}.", name)
        finisher = getattr(self, f"_finish_{spec.name}", None)
        if finisher is not None:
            finisher(record, previous)

    def _record_of(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.records[ref["_type"]][int(ref["id"])]

    def _inherit(self, record: dict[str, Any], source: dict[str, Any], *names: str) -> None:
        for name in names:
            if record.get(name) is None and source.get(name) is not None:
                record[name] = copy.deepcopy(source[name])

    def _currency_from_subsidiary(self, record: dict[str, Any]) -> None:
        if record.get("currency") is None and record.get("subsidiary") is not None:
            subsidiary = self._record_of(record["subsidiary"])
            record["currency"] = {"id": subsidiary["currency"]["id"], "_type": "currency"}

    def _finish_customer(self, record: dict[str, Any], previous: dict | None) -> None:
        self._currency_from_subsidiary(record)
        record.setdefault("entityId", f"CUST{record['id']}")

    def _finish_job(self, record: dict[str, Any], previous: dict | None) -> None:
        self._inherit(record, self._record_of(record["parent"]), "subsidiary", "currency")
        record.setdefault("entityId", f"PRJ{record['id']}")

    def _finish_timebill(self, record: dict[str, Any], previous: dict | None) -> None:
        hours = to_decimal(record["hours"])
        if not Decimal(0) < hours <= Decimal(24):
            raise invalid_content("Hours must be greater than 0 and at most 24.", "hours")
        self._inherit(record, self._record_of(record["employee"]), "subsidiary")

    def _finish_journalentry(self, record: dict[str, Any], previous: dict | None) -> None:
        self._currency_from_subsidiary(record)
        debits = credits = Decimal(0)
        lines = record["line"]
        if len(lines) < 2:
            raise invalid_content("A journal entry needs at least two lines.", "line")
        for index, line in enumerate(lines):
            debit = to_decimal(line.get("debit") or 0)
            credit = to_decimal(line.get("credit") or 0)
            if (debit > 0) == (credit > 0) or debit < 0 or credit < 0:
                raise invalid_content(
                    "Each line needs either a positive debit or a positive credit.",
                    f"line.items[{index}]",
                )
            debits += debit
            credits += credit
        if debits.quantize(_CENT) != credits.quantize(_CENT):
            raise invalid_content(
                "The transaction is out of balance: total debits must equal total credits.",
                "line",
            )
        record["total"] = money(debits)
        record.setdefault("tranId", f"JE{record['id']}")
        record.setdefault("tranDate", self._today())

    def _finish_invoice(self, record: dict[str, Any], previous: dict | None) -> None:
        entity = self._record_of(record["entity"])
        self._inherit(record, entity, "subsidiary", "currency")
        if record.get("subsidiary") is None:
            raise invalid_content("Please enter value(s) for: subsidiary.", "subsidiary")
        self._currency_from_subsidiary(record)
        total = Decimal(0)
        for index, line in enumerate(record["item"]):
            quantity = to_decimal(line.get("quantity") if line.get("quantity") is not None else 1)
            line["quantity"] = float(quantity)
            if line.get("amount") is None:
                if line.get("rate") is None:
                    raise invalid_content(
                        "Please enter value(s) for: rate or amount.", f"item.items[{index}].rate"
                    )
                line["amount"] = money(quantity * to_decimal(line["rate"]))
            total += to_decimal(line["amount"])
        applied = self.applied_to(record["id"])
        if total < applied:
            raise invalid_content(
                "The invoice total cannot be less than the payments applied to it.", "item"
            )
        record["total"] = money(total)
        record.setdefault("tranId", f"INV{record['id']}")
        record.setdefault("tranDate", self._today())
        self.refresh_invoice_status(record)

    def refresh_invoice_status(self, invoice: dict[str, Any]) -> None:
        remaining = to_decimal(invoice["total"]) - self.applied_to(invoice["id"])
        invoice["amountRemaining"] = money(remaining)
        if remaining <= 0 and to_decimal(invoice["total"]) > 0:
            invoice["status"] = {"id": "B", "refName": "Paid In Full"}
        else:
            invoice["status"] = {"id": "A", "refName": "Open"}

    def _finish_customerpayment(self, record: dict[str, Any], previous: dict | None) -> None:
        customer = self._record_of(record["customer"])
        self._inherit(record, customer, "subsidiary", "currency")
        payment = to_decimal(record["payment"])
        if payment <= 0:
            raise invalid_content("The payment amount must be greater than 0.", "payment")
        previously = defaultdict(Decimal)
        for line in (previous or {}).get("apply", []):
            if line.get("apply", True):
                previously[int(line["doc"]["id"])] += to_decimal(line["amount"])
        customer_ids = {int(record["customer"]["id"])}
        if record["customer"]["_type"] == "job":
            customer_ids.add(int(customer["parent"]["id"]))
        applied = Decimal(0)
        for index, line in enumerate(record.get("apply", [])):
            path = f"apply.items[{index}]"
            line.setdefault("apply", True)
            if not line["apply"]:
                continue
            invoice_id = int(line["doc"]["id"])
            invoice = self.records["invoice"][invoice_id]
            entity_id = int(invoice["entity"]["id"])
            if entity_id not in customer_ids and not self._is_job_of(entity_id, customer_ids):
                raise invalid_content(
                    f"Invoice {invoice_id} does not belong to this customer.", f"{path}.doc"
                )
            remaining = (
                to_decimal(invoice["total"]) - self.applied_to(invoice_id) + previously[invoice_id]
            )
            amount = to_decimal(line["amount"]) if line.get("amount") is not None else None
            if amount is None:
                amount = min(remaining, payment - applied)
            if amount <= 0 or amount > remaining:
                raise invalid_content(
                    f"Invalid amount applied to invoice {invoice_id}: {remaining} is open.",
                    f"{path}.amount",
                )
            line["amount"] = money(amount)
            previously[invoice_id] -= amount
            applied += amount
        if applied > payment:
            raise invalid_content("The total applied is more than the payment amount.", "apply")
        record["applied"] = money(applied)
        record["unapplied"] = money(payment - applied)
        record.setdefault("tranId", f"PYMT{record['id']}")
        record.setdefault("tranDate", self._today())

    def _is_job_of(self, entity_id: int, customer_ids: set[int]) -> bool:
        job = self.records["job"].get(entity_id)
        return job is not None and int(job["parent"]["id"]) in customer_ids

    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self._clock.now(), tz=dt.UTC).date().isoformat()


def check_external_id(value: str, path: str | None = None) -> None:
    if not EXTERNAL_ID.match(value):
        raise NetSuiteError(
            400,
            "INVALID_ID" if path is None else "INVALID_CONTENT",
            f"Invalid external ID '{value}': use only letters, digits, '_' and '-'.",
            path=path,
        )


def _references(record: dict[str, Any], type_name: str, record_id: int, own_type: str) -> bool:
    target = str(record_id)

    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            if value.get("_type") == type_name and value.get("id") == target:
                return True
            return any(walk(item) for item in value.values())
        if isinstance(value, list):
            return any(walk(item) for item in value)
        return False

    return any(walk(value) for name, value in record.items() if name != "id")


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise invalid_content(f"Invalid value for field {path}: expected a number.", path)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _HOURS.match(value)
        if match:
            return int(match.group(1)) + int(match.group(2)) / 60
        try:
            return float(Decimal(value))
        except InvalidOperation:
            pass
    raise invalid_content(f"Invalid value for field {path}: expected a number.", path)


def _date(value: Any, path: str) -> str:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise invalid_content(f"Invalid value for field {path}: expected a date (YYYY-MM-DD).", path)
