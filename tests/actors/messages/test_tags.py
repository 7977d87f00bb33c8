"""Tags are journal format: the sets are frozen here so a rename or reuse fails a test."""

from __future__ import annotations

import inspect
from typing import get_args

import msgspec
import pytest

from actors import messages
from actors.messages import (
    COMMAND_TYPES,
    EVENT_TYPES,
    AnyCommand,
    AnyEvent,
    Command,
    Event,
    command_tag,
    event_tag,
)

# Append only. Never remove, rename or reuse a tag: old journal rows carry it.
EXPECTED_EVENT_TAGS = {
    "deal.won": "DealWon",
    "account.changed": "AccountChanged",
    "contract.approved": "ContractApproved",
    "project.activated": "ProjectActivated",
    "time.approved": "TimeApproved",
    "expense.approved": "ExpenseApproved",
    "milestone.completed": "MilestoneCompleted",
    "invoice.issued": "InvoiceIssued",
    "invoice.status_changed": "InvoiceStatusChanged",
    "payment.received": "PaymentReceived",
    "reconciliation.requested": "ReconciliationRequested",
    "billing_period.closed": "BillingPeriodClosed",
}

EXPECTED_COMMAND_TAGS = {
    "upsert_customer": "UpsertCustomer",
    "update_account_fields": "UpdateAccountFields",
    "upsert_project": "UpsertProject",
    "create_project_from_template": "CreateProjectFromTemplate",
    "upsert_job": "UpsertJob",
    "upsert_billing_schedule": "UpsertBillingSchedule",
    "create_subscription": "CreateSubscription",
    "post_time_entries": "PostTimeEntries",
    "post_expense_lines": "PostExpenseLines",
    "mark_entries_exported": "MarkEntriesExported",
    "create_invoice": "CreateInvoice",
    "finalize_invoice": "FinalizeInvoice",
    "post_invoice": "PostInvoice",
    "update_invoice_status": "UpdateInvoiceStatus",
    "apply_payment": "ApplyPayment",
    "update_deal_status": "UpdateDealStatus",
    "update_billing_progress": "UpdateBillingProgress",
}


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_event_tags_are_frozen():
    assert {tag: cls.__name__ for tag, cls in EVENT_TYPES.items()} == EXPECTED_EVENT_TAGS


def test_command_tags_are_frozen():
    assert {tag: cls.__name__ for tag, cls in COMMAND_TYPES.items()} == EXPECTED_COMMAND_TAGS


def test_every_event_subclass_is_in_the_union():
    assert _all_subclasses(Event) == set(get_args(AnyEvent))


def test_every_command_subclass_is_in_the_union():
    assert _all_subclasses(Command) == set(get_args(AnyCommand))


def test_event_tags_are_dotted_lower_case_and_unique():
    tags = [event_tag(cls) for cls in get_args(AnyEvent)]
    assert len(tags) == len(set(tags))
    for tag in tags:
        noun, _, verb = tag.partition(".")
        assert noun, tag
        assert verb, tag
        assert tag == tag.lower(), tag


def test_command_tags_are_snake_case_and_unique():
    tags = [command_tag(cls) for cls in get_args(AnyCommand)]
    assert len(tags) == len(set(tags))
    assert all(tag.isidentifier() and tag == tag.lower() for tag in tags)


@pytest.mark.parametrize("cls", [*get_args(AnyEvent), *get_args(AnyCommand)], ids=str)
def test_each_message_class_has_a_one_line_docstring_saying_who_sends_it(cls):
    doc = cls.__doc__ or ""
    assert doc.strip()
    assert "\n" not in doc.strip()
    assert "Sent by" in doc


@pytest.mark.parametrize("cls", [*get_args(AnyEvent), *get_args(AnyCommand)], ids=str)
def test_messages_are_frozen_and_tolerate_unknown_fields(cls):
    config = cls.__struct_config__
    assert config.frozen
    assert not config.forbid_unknown_fields


def test_every_command_requires_an_idempotency_key():
    for cls in get_args(AnyCommand):
        field = {info.name: info for info in msgspec.structs.fields(cls)}["idempotency_key"]
        assert field.required, cls


def _package_structs() -> list[type]:
    return [
        value
        for value in vars(messages).values()
        if isinstance(value, type) and issubclass(value, msgspec.Struct)
    ]


@pytest.mark.parametrize("cls", _package_structs(), ids=lambda cls: cls.__name__)
def test_every_struct_is_frozen_keyword_only_and_open_to_new_fields(cls):
    # Old readers must skip fields a newer pssync adds, so nothing forbids unknown fields.
    config = cls.__struct_config__
    assert config.frozen
    parameters = inspect.signature(cls).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    assert not config.forbid_unknown_fields
    assert not config.array_like
    assert cls.__doc__


def test_package_exports_are_explicit():
    assert len(_package_structs()) > 50
    assert all(not name.startswith("_") or name.startswith("__") for name in vars(messages))
