"""Kantata OX records and their write rules.

Objects are plain dicts keyed by string ids (Kantata returns ids as strings), stored per
resource under its plural key. Timestamps (``created_at``/``updated_at``) come from the
:class:`~adapters.sandbox.clock.SandboxClock` at **second** resolution, as Kantata's are —
an ``updated_after`` poller that keeps a strict ``>`` watermark can therefore miss a
change made in the same second; that is the real API's behaviour and stays.

Assumptions where systems.md §2 is silent (marked [3p]/[mem] there or absent):

- users carry ``cost_rate_in_cents`` and ``bill_rate_in_cents`` directly (real Kantata keeps
  them on rate cards); a new time entry takes its ``rate_in_cents`` / ``cost_rate_in_cents``
  from its user and its ``currency`` from its workspace;
- clients are ``workspace_groups`` with ``company: true``; a workspace names its client in
  ``workspace_group_ids``;
- approval happens in Kantata's UI (timesheet submissions are not modelled): only the
  sandbox (scenario, admin) sets ``approved``; an approved or invoiced time entry can no
  longer be changed through the API (422);
- ``POST /external_references`` creates *or updates* the reference of one
  (``subject_type``, ``subject_id``, ``service_name``, ``service_model``);
- ``/subscribed_events`` keeps nine days of ``<subject>:created|updated|deleted`` events
  for workspaces, stories, time entries and expenses, one per write, in write order
  (default order ``created_at:asc``); ``optional_fields=current_payload`` gives the
  subject as it is *now* (the sandbox does not keep a copy per event);
- project templates (:data:`TEMPLATE_RESOURCE`) are read-only; ``POST /workspaces`` with
  ``project_template_id`` (+ optional ``project_template_start_date``) applies one: each
  phase becomes a parent story of type ``deliverable``, its tasks and milestones become
  sub-stories, and each resource demand becomes an unnamed ``workspace_resources`` row.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import Any

from ..clock import SandboxClock
from .errors import KantataError, validation

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
INTEGRATION_USER_ID = "100001"
TEMPLATE_RESOURCE = "project_templates"
STORY_TYPES = ("task", "deliverable", "milestone", "issue")
STORY_STATES = ("not started", "started", "needs info", "completed")
SUBJECT_TYPES = {
    "Workspace": "workspaces",
    "Story": "stories",
    "TimeEntry": "time_entries",
    "Expense": "expenses",
    "User": "users",
    "WorkspaceGroup": "workspace_groups",
}
EVENTS = "subscribed_events"
#: Resource → (subject_type, event_type prefix) of the change feed.
EVENT_SUBJECTS = {
    "workspaces": ("Workspace", "workspace"),
    "stories": ("Story", "story"),
    "time_entries": ("TimeEntry", "time_entry"),
    "expenses": ("Expense", "expense"),
}
EVENT_RETENTION_S = 9 * 86_400.0
CURRENCY_SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "CAD": "$", "AUD": "$"}


@dataclass(frozen=True)
class Resource:
    plural: str
    singular: str
    writable: tuple[str, ...]
    bulk_max: int = 1
    default_order: str = "id:asc"
    read_only: bool = False


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource(
            "workspaces",
            "workspace",
            (
                "title",
                "description",
                "creator_role",
                "start_date",
                "due_date",
                "budgeted",
                "price_in_cents",
                "currency",
                "archived",
                "workspace_group_ids",
                "project_template_id",
                "project_template_start_date",
                "status_key",
            ),
            bulk_max=100,
        ),
        Resource(
            "stories",
            "story",
            (
                "title",
                "workspace_id",
                "story_type",
                "parent_id",
                "start_date",
                "due_date",
                "state",
                "time_estimate_in_minutes",
                "weight",
                "budget_estimate_in_cents",
                "description",
                "position",
                "billable",
            ),
            bulk_max=300,
        ),
        Resource(
            "time_entries",
            "time_entry",
            (
                "workspace_id",
                "story_id",
                "user_id",
                "date_performed",
                "time_in_minutes",
                "billable",
                "notes",
                "rate_in_cents",
                "cost_rate_in_cents",
                "location",
            ),
            bulk_max=100,
            default_order="date_performed:desc",
        ),
        Resource(
            "expenses",
            "expense",
            (
                "workspace_id",
                "user_id",
                "date",
                "category",
                "expense_category_id",
                "amount_in_cents",
                "currency",
                "billable",
                "notes",
            ),
            bulk_max=100,
            default_order="date:desc",
        ),
        Resource("users", "user", (), read_only=True),
        Resource(
            "external_references",
            "external_reference",
            (
                "subject_type",
                "subject_id",
                "service_name",
                "service_model",
                "service_model_ref",
                "status",
                "external_message",
                "external_link",
            ),
        ),
        Resource("workspace_groups", "workspace_group", ("name", "company", "workspace_ids")),
        Resource("workspace_resources", "workspace_resource", (), read_only=True),
        Resource(TEMPLATE_RESOURCE, "project_template", (), read_only=True),
        Resource(EVENTS, "subscribed_event", (), read_only=True, default_order="created_at:asc"),
    )
}


def format_timestamp(epoch_s: float) -> str:
    moment = dt.datetime.fromtimestamp(int(epoch_s), tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_timestamp(value: str) -> float:
    text = value.strip().replace("Z", "+00:00")
    if _DATE.match(text):
        text += "T00:00:00+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class KantataState:
    """Every Kantata object by resource and id, plus OAuth tokens."""

    def __init__(self, clock: SandboxClock, *, seed: int = 0) -> None:
        self.clock = clock
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in RESOURCES}
        self.tokens: dict[str, dict[str, Any]] = {}
        self._next_id = 100_000
        self._random = random.Random(seed)
        #: Bumped on every write; list caches and the reference index key on it.
        self.version = 0
        self._refs_index: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._refs_version = -1
        self.add_user(
            {
                "full_name": "pssync Integration",
                "email_address": "integration@pssync.example",
                "headline": "Integration user",
                "cost_rate_in_cents": 0,
                "bill_rate_in_cents": 0,
                "currency": "USD",
            }
        )

    # -- basics ------------------------------------------------------------------------

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def now(self) -> str:
        return format_timestamp(self.clock.now())

    def new_token(self, user_id: str = INTEGRATION_USER_ID) -> str:
        token = "".join(self._random.choice("0123456789abcdef") for _ in range(64))
        self.tokens[token] = {"user_id": user_id, "revoked": False}
        return token

    def get(self, plural: str, record_id: str) -> dict[str, Any] | None:
        return self.tables[plural].get(str(record_id))

    def changed(self) -> None:
        """Call after mutating records directly (tests, admin) so caches refresh."""
        self.version += 1

    def _insert(self, plural: str, record: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stamp = self.now()
        record = {"id": self.new_id(), **record, "created_at": stamp, "updated_at": stamp}
        self.tables[plural][record["id"]] = record
        self._event(plural, record["id"], "created", stamp)
        return record

    def touch(self, plural: str, record: dict[str, Any]) -> None:
        self.version += 1
        record["updated_at"] = self.now()
        self._event(plural, record["id"], "updated", record["updated_at"])

    def _event(self, plural: str, subject_id: str, action: str, stamp: str) -> None:
        """Append to the change feed (``/subscribed_events``), keeping :data:`EVENT_RETENTION_S`."""
        subject = EVENT_SUBJECTS.get(plural)
        if subject is None:
            return
        subject_type, prefix = subject
        events = self.tables[EVENTS]
        event_id = self.new_id()
        events[event_id] = {
            "id": event_id,
            "event_type": f"{prefix}:{action}",
            "subject_type": subject_type,
            "subject_id": subject_id,
            "subject_changed_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
        }
        horizon = format_timestamp(self.clock.now() - EVENT_RETENTION_S)
        while events:
            oldest = next(iter(events))
            if events[oldest]["created_at"] >= horizon:
                break
            del events[oldest]

    # -- sandbox-side writes (seed, scenario, admin) ------------------------------------

    def add_user(self, values: dict[str, Any]) -> dict[str, Any]:
        record = {"account_role": "consultant", "disabled": False, **values}
        return self._insert("users", record)

    def add_template(self, values: dict[str, Any]) -> dict[str, Any]:
        return self._insert(TEMPLATE_RESOURCE, dict(values))

    def approve(self, entry_ids: list[str]) -> int:
        """Approve time entries as a timesheet approval would; returns how many changed."""
        changed = 0
        stamp = self.now()
        for entry_id in entry_ids:
            entry = self.tables["time_entries"].get(str(entry_id))
            if entry is not None and not entry["approved"]:
                entry["approved"] = True
                entry["updated_at"] = stamp
                self._event("time_entries", entry["id"], "updated", stamp)
                changed += 1
        self.version += 1
        return changed

    def approve_expenses(self, expense_ids: list[str]) -> int:
        changed = 0
        for expense_id in expense_ids:
            expense = self.tables["expenses"].get(str(expense_id))
            if expense is not None and not expense["approved"]:
                expense["approved"] = True
                self.touch("expenses", expense)
                changed += 1
        return changed

    def complete_story(self, story_id: str) -> None:
        story = self.tables["stories"][str(story_id)]
        story["state"] = "completed"
        story["percentage_complete"] = 100
        self.touch("stories", story)

    # -- API writes --------------------------------------------------------------------

    def create(self, plural: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create ``items`` all or nothing: 422 with every validation error otherwise."""
        spec = RESOURCES[plural]
        cleaned: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            values = {key: item[key] for key in spec.writable if key in item}
            problems = self._validate(plural, values, creating=True)
            errors.extend(
                {**error, "index": index} if len(items) > 1 else error for error in problems
            )
            cleaned.append(values)
        if errors:
            raise KantataError(422, errors)
        if plural == "external_references":
            return [self._upsert_reference(values) for values in cleaned]
        return [self._create_one(plural, values) for values in cleaned]

    def update(self, plural: str, record_id: str, item: dict[str, Any]) -> dict[str, Any]:
        spec = RESOURCES[plural]
        record = self.tables[plural].get(str(record_id))
        if record is None:
            raise KantataError(404, [{"type": "system", "message": "Not Found"}])
        if plural == "time_entries" and (record["approved"] or record["is_invoiced"]):
            raise KantataError(
                422,
                [validation("This time entry has been approved or invoiced and is locked")],
            )
        values = {key: item[key] for key in spec.writable if key in item}
        values.pop("project_template_id", None)
        errors = self._validate(plural, {**record, **values}, creating=False)
        if errors:
            raise KantataError(422, errors)
        record.update(values)
        self._derive(plural, record)
        self.touch(plural, record)
        return record

    def delete(self, plural: str, record_id: str) -> None:
        self.version += 1
        if self.tables[plural].pop(str(record_id), None) is None:
            raise KantataError(404, [{"type": "system", "message": "Not Found"}])
        self._event(plural, str(record_id), "deleted", self.now())

    def _create_one(self, plural: str, values: dict[str, Any]) -> dict[str, Any]:
        match plural:
            case "workspaces":
                template_id = values.pop("project_template_id", None)
                template_start = values.pop("project_template_start_date", None)
                record = self._insert(
                    plural,
                    {
                        "description": "",
                        "start_date": None,
                        "due_date": None,
                        "budgeted": False,
                        "price_in_cents": 0,
                        "currency": "USD",
                        "archived": False,
                        "workspace_group_ids": [],
                        "status": {"color": "grey", "key": 350, "message": "In Planning"},
                        "project_template_id": template_id,
                        **values,
                    },
                )
                if template_id is not None:
                    self.apply_template(record, str(template_id), template_start)
                return record
            case "stories":
                record = self._insert(
                    plural,
                    {
                        "story_type": "task",
                        "state": "not started",
                        "parent_id": None,
                        "start_date": None,
                        "due_date": None,
                        "time_estimate_in_minutes": None,
                        "weight": None,
                        "percentage_complete": 0,
                        **values,
                    },
                )
                return record
            case "time_entries":
                user = self.tables["users"][str(values.get("user_id") or INTEGRATION_USER_ID)]
                workspace = self.tables["workspaces"][str(values["workspace_id"])]
                currency = workspace["currency"]
                record = {
                    "story_id": None,
                    "user_id": user["id"],
                    "billable": True,
                    "notes": "",
                    "rate_in_cents": user.get("bill_rate_in_cents", 0),
                    "cost_rate_in_cents": user.get("cost_rate_in_cents", 0),
                    "location": None,
                    **values,
                    "approved": False,
                    "is_invoiced": False,
                    "currency": currency,
                    "currency_base_unit": 100,
                    "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
                }
                record["workspace_id"] = str(record["workspace_id"])
                record["user_id"] = str(record["user_id"])
                return self._insert(plural, record)
            case "expenses":
                workspace = self.tables["workspaces"][str(values["workspace_id"])]
                record = {
                    "user_id": INTEGRATION_USER_ID,
                    "billable": True,
                    "notes": "",
                    "category": None,
                    "expense_category_id": None,
                    "currency": workspace["currency"],
                    **values,
                    "approved": False,
                    "is_invoiced": False,
                }
                record["workspace_id"] = str(record["workspace_id"])
                return self._insert(plural, record)
            case _:
                return self._insert(plural, values)

    def _upsert_reference(self, values: dict[str, Any]) -> dict[str, Any]:
        values = {"status": "synced", "external_message": None, "external_link": None, **values}
        values["subject_id"] = str(values["subject_id"])
        key = ("subject_type", "subject_id", "service_name", "service_model")
        for record in self.tables["external_references"].values():
            if all(record[name] == values[name] for name in key):
                record.update(values)
                self.touch("external_references", record)
                return record
        return self._insert("external_references", values)

    def _derive(self, plural: str, record: dict[str, Any]) -> None:
        if plural == "stories" and record["state"] == "completed":
            record["percentage_complete"] = 100

    def apply_template(
        self, workspace: dict[str, Any], template_id: str, start_date: str | None
    ) -> None:
        template = self.tables[TEMPLATE_RESOURCE][template_id]
        start = dt.date.fromisoformat(start_date or workspace.get("start_date") or "2026-01-01")
        offset = 0
        for position, phase in enumerate(template["phases"], start=1):
            phase_start = start + dt.timedelta(days=offset)
            phase_end = phase_start + dt.timedelta(days=phase["duration_days"] - 1)
            parent = self._create_one(
                "stories",
                {
                    "workspace_id": workspace["id"],
                    "title": phase["title"],
                    "story_type": "deliverable",
                    "start_date": phase_start.isoformat(),
                    "due_date": phase_end.isoformat(),
                    "position": position,
                },
            )
            for task in phase.get("tasks", []):
                self._create_one(
                    "stories",
                    {
                        "workspace_id": workspace["id"],
                        "parent_id": parent["id"],
                        "title": task["title"],
                        "story_type": "task",
                        "time_estimate_in_minutes": task.get("hours", 0) * 60,
                        "start_date": phase_start.isoformat(),
                        "due_date": phase_end.isoformat(),
                    },
                )
            for milestone in phase.get("milestones", []):
                self._create_one(
                    "stories",
                    {
                        "workspace_id": workspace["id"],
                        "parent_id": parent["id"],
                        "title": milestone["title"],
                        "story_type": "milestone",
                        "weight": milestone.get("billing_percent"),
                        "due_date": phase_end.isoformat(),
                    },
                )
            offset += phase["duration_days"]
        for demand in template.get("resource_demand", []):
            self._insert(
                "workspace_resources",
                {
                    "workspace_id": workspace["id"],
                    "role_name": demand["role"],
                    "user_id": None,
                    "allocated_minutes": int(demand["hours"] * 60),
                },
            )

    # -- validation --------------------------------------------------------------------

    def _validate(
        self, plural: str, values: dict[str, Any], *, creating: bool
    ) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []

        def require(field: str, message: str) -> None:
            if values.get(field) in (None, ""):
                errors.append(validation(message, field))

        def exists(field: str, table: str, message: str) -> None:
            value = values.get(field)
            if value not in (None, "") and str(value) not in self.tables[table]:
                errors.append(validation(message, field))

        def date(field: str) -> None:
            value = values.get(field)
            if value not in (None, "") and not (isinstance(value, str) and _DATE.match(value)):
                errors.append(validation(f"{field} must be a date (YYYY-MM-DD)", field))

        match plural:
            case "workspaces":
                require("title", "Please give your project a title")
                require("creator_role", "Please select a role for this project")
                if values.get("creator_role") not in (None, "", "maven", "buyer"):
                    errors.append(validation("Creator role must be maven or buyer", "creator_role"))
                if values.get("currency") is not None and not _CURRENCY.match(
                    str(values["currency"])
                ):
                    errors.append(validation("Currency is not a valid ISO 4217 code", "currency"))
                exists("project_template_id", TEMPLATE_RESOURCE, "Project template not found")
                date("start_date")
                date("due_date")
            case "stories":
                require("title", "Title can't be blank")
                require("workspace_id", "Workspace can't be blank")
                exists("workspace_id", "workspaces", "Workspace not found")
                exists("parent_id", "stories", "Parent not found")
                if values.get("story_type", "task") not in STORY_TYPES:
                    errors.append(
                        validation("Story type is not included in the list", "story_type")
                    )
                if values.get("state", "not started") not in STORY_STATES:
                    errors.append(validation("State is not included in the list", "state"))
                date("start_date")
                date("due_date")
            case "time_entries":
                require("workspace_id", "Workspace can't be blank")
                exists("workspace_id", "workspaces", "Workspace not found")
                require("date_performed", "Date performed can't be blank")
                date("date_performed")
                minutes = values.get("time_in_minutes")
                if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
                    errors.append(
                        validation("Time in minutes must be greater than 0", "time_in_minutes")
                    )
                exists("story_id", "stories", "Story not found")
                exists("user_id", "users", "User not found")
            case "expenses":
                require("workspace_id", "Workspace can't be blank")
                exists("workspace_id", "workspaces", "Workspace not found")
                require("date", "Date can't be blank")
                date("date")
                amount = values.get("amount_in_cents")
                if not isinstance(amount, int) or isinstance(amount, bool):
                    errors.append(validation("Amount can't be blank", "amount_in_cents"))
                if (
                    values.get("category") in (None, "")
                    and values.get("expense_category_id") is None
                ):
                    errors.append(validation("Category can't be blank", "category"))
            case "external_references":
                for field in ("subject_type", "subject_id", "service_name", "service_model"):
                    require(field, f"{field.replace('_', ' ').capitalize()} can't be blank")
                require("service_model_ref", "Service model ref can't be blank")
                table = SUBJECT_TYPES.get(str(values.get("subject_type")))
                if values.get("subject_type") and table is None:
                    errors.append(validation("Subject type is not supported", "subject_type"))
                elif table is not None:
                    exists("subject_id", table, "Subject not found")
            case "workspace_groups":
                require("name", "Name can't be blank")
        return errors

    # -- VendorState -------------------------------------------------------------------

    def external_references_of(self, subject_type: str, subject_id: str) -> list[dict[str, Any]]:
        if self._refs_version != self.version:
            self._refs_index = {}
            for ref in self.tables["external_references"].values():
                key = (ref["subject_type"], ref["subject_id"])
                self._refs_index.setdefault(key, []).append(ref)
            self._refs_version = self.version
        return list(self._refs_index.get((subject_type, str(subject_id)), []))

    def counts(self) -> dict[str, int]:
        return {plural: len(table) for plural, table in self.tables.items()}

    def duplicates(self) -> list[dict[str, Any]]:
        """Distinct subjects carrying the same foreign key (service, model, ref)."""
        by_key: dict[tuple[str, str, str, str], list[str]] = {}
        for ref in self.tables["external_references"].values():
            key = (
                ref["subject_type"],
                ref["service_name"],
                ref["service_model"],
                str(ref["service_model_ref"]),
            )
            subjects = by_key.setdefault(key, [])
            if ref["subject_id"] not in subjects:
                subjects.append(ref["subject_id"])
        return [
            {"type": subject_type, "source_key": f"{service}/{model}/{ref}", "ids": ids}
            for (subject_type, service, model, ref), ids in by_key.items()
            if len(ids) > 1
        ]

    def snapshot(self) -> dict[str, Any]:
        return {
            "tables": copy.deepcopy(self.tables),
            "tokens": copy.deepcopy(self.tokens),
            "next_id": self._next_id,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.tables = {name: {} for name in RESOURCES}
        for plural, table in data.get("tables", {}).items():
            if plural in RESOURCES:
                self.tables[plural] = copy.deepcopy(table)
        self.tokens = copy.deepcopy(data.get("tokens", {}))
        self._next_id = int(data.get("next_id", self._next_id))
        self.version += 1
