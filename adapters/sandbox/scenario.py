"""A business that keeps moving: drives the sandbox states the way a firm's people would.

The driver acts on vendor *states* directly (never over HTTP, so it costs no API budget
and is never faulted) and is deterministic: the same seed, starting state and sequence of
calls give the same records. ``Scenario.run_week()`` advances the shared clock by seven
days and then, for the week just ended:

1. adds a few new open deals and wins some open ones (``StageName`` → ``Closed Won``, lines
   already attached); in the first week also adds three malformed won deals: an account
   without a billing contact, a deal in a currency no legal entity bills in (``ZAR``),
   and an account and deal with no legal entity (``Description`` names the defect);
2. consultants log time (and some expenses) on every active Kantata workspace: a team of
   two to five per workspace, four to eight hours per weekday;
3. managers approve most of the previous time (about 90 %; the rest waits a week); in the
   week holding a month end, ``month_end_entries`` extra entries are logged and every
   pending entry is approved at once — the month-end spike;
4. milestones that are due are completed (about 80 %; the rest slip a week);
5. invoices are paid — through the Stripe hook below, skipped when absent.

Stripe hook (the only coupling to the Stripe vendor): if ``sandbox.vendors["stripe"].state``
has ``open_invoice_ids() -> list[str]`` and ``pay_invoice(invoice_id: str) -> None``, each
open invoice gets a fate when first seen — paid the next week (70 %), paid five weeks
later (20 %) or never (10 %) — and is paid accordingly. ``pay_invoice`` is expected to
mark the invoice paid and record the payment/events the way Stripe would.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .sandbox import Sandbox
from .seed import COUNTRY_ENTITY, LEGAL_ENTITIES, add_opportunity

_DAY_S = 86_400.0
_BILLING_CURRENCIES = {entity.currency for entity in LEGAL_ENTITIES.values()}
_FATES = ("on_time", "late", "never")
_FATE_WEIGHTS = (70, 20, 10)
_FATE_DELAY_WEEKS = {"on_time": 1, "late": 5}


class WeekReport(msgspec.Struct, kw_only=True):
    """What one ``run_week`` did."""

    week_start: str
    deals_created: list[str] = []
    deals_won: list[str] = []
    malformed_deals: list[str] = []
    time_entries_logged: int = 0
    expenses_logged: int = 0
    time_entries_approved: int = 0
    month_end_spike: int = 0
    milestones_completed: list[str] = []
    invoices_paid: list[str] = []


class Scenario:
    """Deterministic business activity over a :class:`~adapters.sandbox.sandbox.Sandbox`."""

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        seed: int = 0,
        new_deals_per_week: tuple[int, int] = (1, 3),
        wins_per_week: tuple[int, int] = (1, 3),
        month_end_entries: int = 500,
    ) -> None:
        self.sandbox = sandbox
        self.clock = sandbox.clock
        self.rng = random.Random(f"scenario:{seed}")
        self.seed = seed
        self.new_deals_per_week = new_deals_per_week
        self.wins_per_week = wins_per_week
        self.month_end_entries = month_end_entries
        self.week = 0
        self.invoice_fates: dict[str, tuple[str, int]] = {}
        self.malformed_added = False

    # -- vendor states -------------------------------------------------------------------

    def _state(self, name: str) -> Any:
        vendor = self.sandbox.vendors.get(name)
        return vendor.state if vendor is not None else None

    @property
    def salesforce(self) -> Any:
        return self._state("salesforce")

    @property
    def kantata(self) -> Any:
        return self._state("kantata")

    @property
    def stripe(self) -> Any:
        state = self._state("stripe")
        has_hook = hasattr(state, "open_invoice_ids") and hasattr(state, "pay_invoice")
        return state if has_hook else None

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC).date()

    # -- the week ----------------------------------------------------------------------

    def run_week(self) -> WeekReport:
        """Advance seven days and play the week that just ended."""
        self.clock.advance(7 * _DAY_S)
        self.week += 1
        today = self.today()
        week_start = today - dt.timedelta(days=7)
        report = WeekReport(week_start=week_start.isoformat())
        if self.salesforce is not None:
            report.deals_created = self.add_deals(self.rng.randint(*self.new_deals_per_week))
            report.deals_won = self.win_deals(self.rng.randint(*self.wins_per_week))
            if not self.malformed_added:
                report.malformed_deals = self.add_malformed_deals()
        if self.kantata is not None:
            report.time_entries_approved = self.approve_time(before=week_start)
            logged, expenses = self.log_week(week_start)
            report.time_entries_logged, report.expenses_logged = logged, expenses
            month_end = _month_end(week_start)
            if week_start <= month_end < today:
                report.month_end_spike = self.month_end_spike(month_end, self.month_end_entries)
            report.milestones_completed = self.complete_milestones(today)
        report.invoices_paid = self.settle_invoices()
        return report

    # -- CRM -------------------------------------------------------------------------------

    def _customer_accounts(self) -> list[str]:
        return [
            record_id
            for record_id, record in self.salesforce.records["Account"].items()
            if record.get("Legal_Entity__c")
            and record.get("Billing_Contact__c")
            and record.get("CurrencyIsoCode") in _BILLING_CURRENCIES
            and record.get("Type") == "Customer"
        ]

    def add_deals(self, count: int) -> list[str]:
        accounts = self._customer_accounts()
        if not accounts:
            return []
        return [
            add_opportunity(self.salesforce, self.rng, self.rng.choice(accounts), self.today())
            for _ in range(count)
        ]

    def win_deals(self, count: int) -> list[str]:
        """Close ``count`` open deals as won (oldest close date first, ties by id)."""
        open_deals = sorted(
            (record["CloseDate"], record_id)
            for record_id, record in self.salesforce.records["Opportunity"].items()
            if not record["IsClosed"] and record.get("HasOpportunityLineItem")
        )
        won = [record_id for _, record_id in open_deals[:count]]
        for record_id in won:
            self.salesforce.update(
                "Opportunity",
                record_id,
                {"StageName": "Closed Won", "CloseDate": self.today().isoformat()},
            )
        return won

    def add_malformed_deals(self) -> list[str]:
        """Three won deals an integration must refuse, each with its defect described."""
        state = self.salesforce
        self.malformed_added = True
        today = self.today()
        deals = []
        no_contact = state.insert(
            "Account",
            {
                "Name": "Halcyon Holdings Inc.",
                "Type": "Customer",
                "BillingCountry": "US",
                "CurrencyIsoCode": "USD",
                "Legal_Entity__c": "PSF-US",
            },
        )
        deals.append(self._malformed(no_contact, today, "missing billing contact", {}))
        entity = LEGAL_ENTITIES[COUNTRY_ENTITY["DE"]]
        odd_currency = state.insert(
            "Account",
            {
                "Name": "Kaapstad Mining (Pty) Ltd",
                "Type": "Customer",
                "BillingCountry": "ZA",
                "CurrencyIsoCode": "ZAR",
                "Legal_Entity__c": entity.code,
            },
        )
        self._billing_contact(odd_currency)
        deals.append(
            self._malformed(odd_currency, today, "unknown currency ZAR", {"CurrencyIsoCode": "ZAR"})
        )
        no_entity = state.insert(
            "Account",
            {
                "Name": "Nowhere Ventures",
                "Type": "Customer",
                "BillingCountry": "US",
                "CurrencyIsoCode": "USD",
            },
        )
        self._billing_contact(no_entity)
        deals.append(
            self._malformed(no_entity, today, "no legal entity", {"Legal_Entity__c": None})
        )
        return deals

    def _billing_contact(self, account_id: str) -> None:
        contact = self.salesforce.insert(
            "Contact", {"LastName": "Payables", "Email": "ap@example.com", "AccountId": account_id}
        )
        self.salesforce.update("Account", account_id, {"Billing_Contact__c": contact})

    def _malformed(
        self, account_id: str, today: dt.date, defect: str, overrides: dict[str, Any]
    ) -> str:
        deal = add_opportunity(
            self.salesforce,
            self.rng,
            account_id,
            today,
            service_line="implementation",
            stage="Closed Won",
            overrides={"Description": f"sandbox: malformed ({defect})", **overrides},
        )
        return deal

    # -- PSA -------------------------------------------------------------------------------

    def _active_workspaces(self) -> list[dict[str, Any]]:
        return [w for w in self.kantata.tables["workspaces"].values() if not w.get("archived")]

    def _team(self, workspace_id: str) -> list[str]:
        consultants = sorted(
            (user_id for user_id, user in self.kantata.tables["users"].items() if user.get("role")),
            key=int,
        )
        if not consultants:
            return []
        picker = random.Random(f"team:{self.seed}:{workspace_id}")
        return picker.sample(consultants, min(len(consultants), picker.randint(2, 5)))

    def _tasks(self, workspace_id: str) -> list[str]:
        return [
            story["id"]
            for story in self.kantata.tables["stories"].values()
            if story["workspace_id"] == workspace_id
            and story["story_type"] == "task"
            and story["state"] != "completed"
        ]

    def log_week(self, week_start: dt.date) -> tuple[int, int]:
        """Time for each weekday of the week and a few expenses; returns (entries, expenses)."""
        entries: list[dict[str, Any]] = []
        expenses: list[dict[str, Any]] = []
        for workspace in self._active_workspaces():
            tasks = self._tasks(workspace["id"])
            for user_id in self._team(workspace["id"]):
                for offset in range(7):
                    day = week_start + dt.timedelta(days=offset)
                    if day.weekday() >= 5:
                        continue
                    entries.append(self._entry(workspace["id"], user_id, day, tasks))
                if self.rng.random() < 0.3:
                    expenses.append(
                        {
                            "workspace_id": workspace["id"],
                            "user_id": user_id,
                            "date": (week_start + dt.timedelta(days=2)).isoformat(),
                            "category": self.rng.choice(("Travel", "Lodging", "Meals")),
                            "amount_in_cents": self.rng.randint(20, 600) * 100,
                            "billable": self.rng.random() < 0.8,
                            "notes": "Client site visit",
                        }
                    )
        for start in range(0, len(entries), 100):
            self.kantata.create("time_entries", entries[start : start + 100])
        for start in range(0, len(expenses), 100):
            self.kantata.create("expenses", expenses[start : start + 100])
        return len(entries), len(expenses)

    def _entry(
        self, workspace_id: str, user_id: str, day: dt.date, tasks: list[str]
    ) -> dict[str, Any]:
        return {
            "workspace_id": workspace_id,
            "user_id": user_id,
            "story_id": self.rng.choice(tasks) if tasks else None,
            "date_performed": day.isoformat(),
            "time_in_minutes": self.rng.randint(8, 16) * 30,
            "billable": self.rng.random() < 0.9,
            "notes": "Client work",
        }

    def approve_time(self, *, before: dt.date, share: float = 0.9) -> int:
        """Approve about ``share`` of the pending entries dated before ``before``."""
        pending = sorted(
            (
                entry_id
                for entry_id, entry in self.kantata.tables["time_entries"].items()
                if not entry["approved"] and entry["date_performed"] < before.isoformat()
            ),
            key=int,
        )
        chosen = [entry_id for entry_id in pending if self.rng.random() < share]
        expense_ids = sorted(
            (
                expense_id
                for expense_id, expense in self.kantata.tables["expenses"].items()
                if not expense["approved"] and expense["date"] < before.isoformat()
            ),
            key=int,
        )
        self.kantata.approve_expenses(expense_ids)
        return self.kantata.approve(chosen)

    def month_end_spike(self, month_end: dt.date, entries: int) -> int:
        """Log ``entries`` catch-up entries for the month, then approve everything pending."""
        workspaces = self._active_workspaces()
        if workspaces and entries > 0:
            first = month_end.replace(day=1)
            batch = []
            for number in range(entries):
                workspace = workspaces[number % len(workspaces)]
                team = self._team(workspace["id"]) or ["100001"]
                day = first + dt.timedelta(days=self.rng.randint(0, month_end.day - 1))
                batch.append(
                    self._entry(
                        workspace["id"], self.rng.choice(team), day, self._tasks(workspace["id"])
                    )
                )
            for start in range(0, len(batch), 100):
                self.kantata.create("time_entries", batch[start : start + 100])
        pending = [i for i, e in self.kantata.tables["time_entries"].items() if not e["approved"]]
        return self.kantata.approve(pending)

    def complete_milestones(self, today: dt.date, share: float = 0.8) -> list[str]:
        due = sorted(
            (story["due_date"], int(story_id), story_id)
            for story_id, story in self.kantata.tables["stories"].items()
            if story["story_type"] == "milestone"
            and story["state"] != "completed"
            and story.get("due_date")
            and story["due_date"] <= today.isoformat()
        )
        completed = [story_id for *_, story_id in due if self.rng.random() < share]
        for story_id in completed:
            self.kantata.complete_story(story_id)
        return completed

    # -- billing ---------------------------------------------------------------------------

    def settle_invoices(self) -> list[str]:
        """Pay open invoices by their fate (on time, late, never); [] without the hook."""
        stripe = self.stripe
        if stripe is None:
            return []
        paid = []
        for invoice_id in sorted(stripe.open_invoice_ids()):
            if invoice_id not in self.invoice_fates:
                fate = self.rng.choices(_FATES, weights=_FATE_WEIGHTS)[0]
                self.invoice_fates[invoice_id] = (fate, self.week)
                continue
            fate, seen = self.invoice_fates[invoice_id]
            delay = _FATE_DELAY_WEEKS.get(fate)
            if delay is not None and self.week - seen >= delay:
                stripe.pay_invoice(invoice_id)
                paid.append(invoice_id)
        return paid


async def run_scenario(
    scenario: Scenario,
    *,
    interval_s: float = 10.0,
    weeks: int | None = None,
    on_week: Callable[[WeekReport], None] | None = None,
) -> list[WeekReport]:
    """For ``pssync demo``: play one business week every ``interval_s`` (trio time).

    Runs ``weeks`` weeks (forever when None) and returns their reports; ``on_week`` sees
    each report as it happens (e.g. to print or log it).
    """
    reports: list[WeekReport] = []
    while weeks is None or len(reports) < weeks:
        await trio.sleep(interval_s)
        report = scenario.run_week()
        reports.append(report)
        if on_week is not None:
            on_week(report)
    return reports


def _month_end(day: dt.date) -> dt.date:
    next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return next_month - dt.timedelta(days=1)
