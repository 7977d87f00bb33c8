"""Record types the simulated NetSuite knows, and the seed data of a fresh account.

Record JSON follows the REST record service: camelCase body fields, references as
``{"id": "12"}`` (or ``{"externalId": "X"}`` on input; on output with ``links`` and
``refName``), sublists as ``{"items": [...]}`` on input. Field names and the choices below
are from the REST API Browser as remembered, not checked against a live account:

- ``timebill.hours`` is decimal hours (a number, or ``"H:MM"`` on input); the
  ``customer`` field holds the customer *or* the project (job), as in the UI.
- Expenses are posted as ``journalentry`` records (the "journal lines with dimensions" of
  DESIGN §6): ``subsidiary``, ``tranDate``, ``currency``, ``memo`` and a ``line`` sublist
  whose lines carry ``account``, ``debit`` or ``credit``, ``memo``, ``entity``,
  ``department``, ``class``, ``location``. Unbalanced entries are refused.
- ``invoice``: ``entity`` (customer or job), ``subsidiary`` (defaults to the entity's),
  ``item`` sublist lines (``item``, ``quantity``, ``rate``, ``amount``, ``description``,
  dimensions); read-only ``total``, ``amountRemaining``, ``status`` ({"id": "A",
  "refName": "Open"} / {"id": "B", "refName": "Paid In Full"}) and ``tranId``.
- ``customerpayment``: ``customer``, ``payment`` (the amount), ``apply`` sublist lines
  (``doc`` = the invoice, ``apply``, ``amount``) that reduce the invoices' remaining.
- Custom fields (``custentity_*``, ``custbody_*``, ``custcol_*`` …) are stored as given.

Id spaces: entities (employee, customer, job) share one sequence and transactions
(invoice, customerpayment, journalentry) another, as in NetSuite; every other type has
its own. Seeded reference types are read-only in the sandbox.

Seed: subsidiaries 1 Northwind Advisory Inc. (US, USD, ``externalId`` ``PSF-US``),
2 Northwind Advisory Ltd (GB, GBP, ``PSF-UK``), 3 Northwind Advisory GmbH (DE, EUR,
``PSF-EU``) — the legal entities of :mod:`adapters.sandbox.seed`; departments, classes,
locations, currencies (1 USD, 2 GBP, 3 CAD, 4 EUR), GL accounts and service items with
fixed ids; and one employee per Kantata consultant of the same seed (ids from 100 in the
consultants' order, same name and e-mail, subsidiary from the consultant's entity), so
customers and jobs start after them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True, kw_only=True)
class SublistSpec:
    required: tuple[str, ...] = ()
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    numeric: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RecordSpec:
    name: str
    id_space: str
    writable: bool = True
    required: tuple[str, ...] = ()
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    numeric: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    sublists: dict[str, SublistSpec] = field(default_factory=dict)
    read_only: tuple[str, ...] = ()
    name_field: str = "name"
    transaction_type: str | None = None


_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "department": ("department",),
    "class": ("classification",),
    "location": ("location",),
}

SPECS: dict[str, RecordSpec] = {
    spec.name: spec
    for spec in (
        RecordSpec(name="subsidiary", id_space="subsidiary", writable=False),
        RecordSpec(name="department", id_space="department", writable=False),
        RecordSpec(name="classification", id_space="classification", writable=False),
        RecordSpec(name="location", id_space="location", writable=False),
        RecordSpec(name="currency", id_space="currency", writable=False),
        RecordSpec(name="account", id_space="account", writable=False, name_field="acctName"),
        RecordSpec(name="serviceitem", id_space="item", writable=False, name_field="itemId"),
        RecordSpec(name="employee", id_space="entity", writable=False, name_field="entityId"),
        RecordSpec(
            name="customer",
            id_space="entity",
            required=("companyName", "subsidiary"),
            refs={
                "subsidiary": ("subsidiary",),
                "currency": ("currency",),
                "parent": ("customer",),
            },
            name_field="companyName",
        ),
        RecordSpec(
            name="job",
            id_space="entity",
            required=("companyName", "parent"),
            refs={
                "parent": ("customer",),
                "subsidiary": ("subsidiary",),
                "currency": ("currency",),
                "projectManager": ("employee",),
                **_DIMENSIONS,
            },
            dates=("startDate", "projectedEndDate"),
            name_field="companyName",
        ),
        RecordSpec(
            name="timebill",
            id_space="timebill",
            required=("employee", "customer", "hours", "tranDate"),
            refs={
                "employee": ("employee",),
                "customer": ("customer", "job"),
                "item": ("serviceitem",),
                "subsidiary": ("subsidiary",),
                **_DIMENSIONS,
            },
            numeric=("hours", "rate"),
            dates=("tranDate",),
            name_field="memo",
        ),
        RecordSpec(
            name="journalentry",
            id_space="transaction",
            required=("subsidiary", "tranDate", "line"),
            refs={"subsidiary": ("subsidiary",), "currency": ("currency",)},
            dates=("tranDate",),
            sublists={
                "line": SublistSpec(
                    required=("account",),
                    refs={
                        "account": ("account",),
                        "entity": ("customer", "job", "employee"),
                        **_DIMENSIONS,
                    },
                    numeric=("debit", "credit"),
                )
            },
            read_only=("tranId", "total"),
            name_field="tranId",
            transaction_type="Journal",
        ),
        RecordSpec(
            name="invoice",
            id_space="transaction",
            required=("entity", "item"),
            refs={
                "entity": ("customer", "job"),
                "subsidiary": ("subsidiary",),
                "currency": ("currency",),
                **_DIMENSIONS,
            },
            dates=("tranDate", "dueDate"),
            sublists={
                "item": SublistSpec(
                    required=("item",),
                    refs={"item": ("serviceitem",), "job": ("job",), **_DIMENSIONS},
                    numeric=("quantity", "rate", "amount"),
                )
            },
            read_only=("tranId", "total", "amountRemaining", "status"),
            name_field="tranId",
            transaction_type="CustInvc",
        ),
        RecordSpec(
            name="customerpayment",
            id_space="transaction",
            required=("customer", "payment"),
            refs={
                "customer": ("customer", "job"),
                "subsidiary": ("subsidiary",),
                "currency": ("currency",),
                "account": ("account",),
            },
            numeric=("payment",),
            dates=("tranDate",),
            sublists={
                "apply": SublistSpec(
                    required=("doc",),
                    refs={"doc": ("invoice",)},
                    numeric=("amount",),
                )
            },
            read_only=("tranId", "applied", "unapplied"),
            name_field="tranId",
            transaction_type="CustPymt",
        ),
    )
}

TRANSACTION_TYPES = {
    spec.transaction_type: name for name, spec in SPECS.items() if spec.transaction_type
}

ID_SPACE_START = {"entity": 100, "transaction": 1000}

SUBSIDIARY_OF_ENTITY = {"PSF-US": 1, "PSF-UK": 2, "PSF-EU": 3}


class _ConsultantRecorder:
    """Stands in for the Kantata state so that the shared seed's consultants can be read.

    It numbers users as a fresh Kantata state does (``KantataState``: ids count up from
    100001, the integration user first), so each employee can carry its PSA user's id.
    """

    def __init__(self) -> None:
        from ..kantata.state import INTEGRATION_USER_ID

        self.users: list[dict[str, Any]] = []
        self._next_id = int(INTEGRATION_USER_ID)

    def add_user(self, user: dict[str, Any]) -> None:
        self._next_id += 1
        self.users.append({"id": str(self._next_id), **user})

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def default_consultants(seed: int) -> list[dict[str, Any]]:
    """The Kantata sandbox's consultants for ``seed`` (same names, e-mails and entities).

    They come from :func:`adapters.sandbox.seed.seed_kantata`, replayed against a recorder,
    so NetSuite employees match the PSA's users one for one (matched by e-mail).
    """
    from ..seed import seed_kantata  # the shared demo firm; imported late to avoid a cycle

    recorder = _ConsultantRecorder()
    seed_kantata(recorder, seed=seed)
    return [
        {
            "name": user["full_name"],
            "email": user["email_address"],
            "subsidiary": SUBSIDIARY_OF_ENTITY.get(user.get("legal_entity", ""), 1),
            "title": user.get("role"),
            "labor_cost": user.get("cost_rate_in_cents", 8500) / 100,
            "psa_user_id": user["id"],
        }
        for user in recorder.users
    ]


def seed_records(seed: int, consultants: list[dict[str, Any]] | None) -> dict[str, list[dict]]:
    """Reference records of a fresh account, by type (ids are fixed or follow the seed)."""
    ref = _ref
    records: dict[str, list[dict]] = {
        "currency": [
            {"id": 1, "name": "US Dollar", "symbol": "USD"},
            {"id": 2, "name": "British pound", "symbol": "GBP"},
            {"id": 3, "name": "Canadian Dollar", "symbol": "CAD"},
            {"id": 4, "name": "Euro", "symbol": "EUR"},
        ],
        "subsidiary": [
            {
                "id": 1,
                "externalId": "PSF-US",
                "name": "Northwind Advisory Inc.",
                "country": "US",
                "currency": ref(1, "currency"),
            },
            {
                "id": 2,
                "externalId": "PSF-UK",
                "name": "Northwind Advisory Ltd",
                "country": "GB",
                "currency": ref(2, "currency"),
                "parent": ref(1, "subsidiary"),
            },
            {
                "id": 3,
                "externalId": "PSF-EU",
                "name": "Northwind Advisory GmbH",
                "country": "DE",
                "currency": ref(4, "currency"),
                "parent": ref(1, "subsidiary"),
            },
        ],
        "department": [
            {"id": 1, "name": "Consulting"},
            {"id": 2, "name": "Delivery"},
            {"id": 3, "name": "Sales"},
            {"id": 4, "name": "G&A"},
        ],
        "classification": [
            {"id": 1, "name": "Advisory"},
            {"id": 2, "name": "Implementation"},
            {"id": 3, "name": "Managed Services"},
        ],
        "location": [
            {"id": 1, "name": "New York", "subsidiary": ref(1, "subsidiary")},
            {"id": 2, "name": "London", "subsidiary": ref(2, "subsidiary")},
            {"id": 3, "name": "Berlin", "subsidiary": ref(3, "subsidiary")},
        ],
        "account": [
            {"id": 1, "acctNumber": "1000", "acctName": "Operating Bank", "acctType": "Bank"},
            {
                "id": 2,
                "acctNumber": "1200",
                "acctName": "Accounts Receivable",
                "acctType": "AcctRec",
            },
            {
                "id": 3,
                "acctNumber": "2100",
                "acctName": "Employee Reimbursements",
                "acctType": "OthCurrLiab",
            },
            {"id": 4, "acctNumber": "4000", "acctName": "Services Revenue", "acctType": "Income"},
            {
                "id": 5,
                "acctNumber": "4100",
                "acctName": "Subscription Revenue",
                "acctType": "Income",
            },
            {"id": 6, "acctNumber": "6100", "acctName": "Travel Expense", "acctType": "Expense"},
            {"id": 7, "acctNumber": "6200", "acctName": "Meals Expense", "acctType": "Expense"},
            {"id": 8, "acctNumber": "6300", "acctName": "Lodging Expense", "acctType": "Expense"},
        ],
        "serviceitem": [
            {
                "id": 1,
                "itemId": "Consulting T&M",
                "displayName": "Consulting services (time and materials)",
                "incomeAccount": ref(4, "account"),
            },
            {
                "id": 2,
                "itemId": "Fixed Fee Milestone",
                "displayName": "Fixed-fee milestone",
                "incomeAccount": ref(4, "account"),
            },
            {
                "id": 3,
                "itemId": "Subscription",
                "displayName": "Managed services subscription",
                "incomeAccount": ref(5, "account"),
            },
            {
                "id": 4,
                "itemId": "Rebillable Expense",
                "displayName": "Rebillable expenses",
                "incomeAccount": ref(4, "account"),
            },
        ],
    }
    employees = []
    for index, person in enumerate(consultants or default_consultants(seed)):
        first, _, last = person["name"].partition(" ")
        employees.append(
            {
                "id": ID_SPACE_START["entity"] + index,
                "entityId": person["name"],
                "firstName": first,
                "lastName": last,
                "email": person["email"],
                "subsidiary": ref(int(person.get("subsidiary", 1)), "subsidiary"),
                "department": ref(int(person.get("department", 1)), "department"),
                "laborCost": float(person.get("labor_cost", 85.0)),
                "title": person.get("title"),
            }
        )
        if person.get("psa_user_id"):
            # The account as an employee sync leaves it: each employee carries the external
            # id pssync derives from the PSA user (``pssync-emp-<user id>``).
            employees[-1]["externalId"] = f"pssync-emp-{person['psa_user_id']}"
    records["employee"] = employees
    return records


def _ref(record_id: int, type_name: str) -> dict[str, str]:
    """A stored reference: the id as NetSuite renders it plus the target type (internal)."""
    return {"id": str(record_id), "_type": type_name}
