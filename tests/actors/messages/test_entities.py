"""Entities: validation, derived amounts and immutability."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
import pytest

from actors.messages import (
    Account,
    AccountChanged,
    Address,
    AnyEvent,
    BillingPeriodClosed,
    BillingScheduleItem,
    Contract,
    FieldChange,
    FinancialDimensions,
    FixedFeeLine,
    InvoiceStatus,
    Money,
    PaymentReceived,
    Project,
    SubscriptionLine,
    TimeAndMaterialsLine,
    TimeEntry,
)

from .samples import (
    ACCOUNT,
    COMMAND_SAMPLES,
    CONTRACT,
    EVENT_SAMPLES,
    INVOICE,
    PAYMENT,
    RATE_CARD,
    SCHEDULE,
    TIME_ENTRY,
    usd,
)

ALL_SAMPLES = [
    s for samples in (*EVENT_SAMPLES.values(), *COMMAND_SAMPLES.values()) for s in samples
]


def test_every_sample_message_is_hashable_so_nothing_mutable_hides_inside():
    for sample in ALL_SAMPLES:
        hash(sample)


def test_entities_are_immutable():
    with pytest.raises(AttributeError):
        ACCOUNT.name = "Other"


def test_an_account_cannot_be_its_own_parent():
    with pytest.raises(ValueError, match="own parent"):
        Account(id="001A", name="Globex", parent_id="001A")


def test_account_currency_must_be_known():
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        Account(id="001A", name="Globex", currency="ABC")


@pytest.mark.parametrize("entity", [Contract, Project])
def test_currency_bearing_entities_check_their_code(entity):
    fields = {"id": "X", "account_id": "A", "name": "N", "currency": "EURO"}
    if entity is Contract:
        del fields["name"]
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        entity(**fields)


def test_time_entry_hours_must_be_a_decimal():
    with pytest.raises(TypeError, match="hours must be a finite Decimal"):
        msgspec.structs.replace(TIME_ENTRY, hours=7.5)


def test_time_entry_amounts_are_rounded_to_the_minor_unit():
    # 20 minutes at 175.00/h: 58.333… rounds to 58.33.
    entry = msgspec.structs.replace(TIME_ENTRY, hours=Decimal(20) / 60)

    assert entry.bill_amount() == usd("58.33")
    assert entry.cost_amount() == usd("26.67")
    assert TIME_ENTRY.bill_amount() == usd("1268.75")


def test_non_billable_time_has_no_bill_amount_but_has_cost():
    entry = msgspec.structs.replace(TIME_ENTRY, billable=False)

    assert entry.bill_amount() is None
    assert entry.cost_amount() == usd("580.00")


def test_time_entry_without_rates_has_no_amounts():
    entry = TimeEntry(
        id="T", project_id="P", consultant_id="U", date_performed=date(2026, 1, 1), hours=Decimal(1)
    )
    assert (entry.bill_amount(), entry.cost_amount()) == (None, None)


def test_contract_lines_decode_by_kind():
    decoded = msgspec.json.decode(msgspec.json.encode(CONTRACT), type=Contract)

    kinds = [type(line) for line in decoded.lines]
    assert kinds == [FixedFeeLine, TimeAndMaterialsLine, SubscriptionLine]
    raw = msgspec.json.decode(msgspec.json.encode(CONTRACT))
    assert [line["kind"] for line in raw["lines"]] == [
        "fixed_fee",
        "time_and_materials",
        "subscription",
    ]


def test_rate_card_lookup():
    assert RATE_CARD.rate_for("Architect").bill_rate == usd("240.50")
    assert RATE_CARD.rate_for("Intern") is None


def test_invoice_lines_total_includes_tax():
    assert INVOICE.lines_total() == usd("87100.00")
    assert INVOICE.status is InvoiceStatus.OPEN


def test_invoice_status_values_are_the_billing_lifecycle():
    assert [status.value for status in InvoiceStatus] == [
        "draft",
        "open",
        "paid",
        "void",
        "uncollectible",
    ]


def test_billing_schedule_total_skips_cancelled_items():
    cancelled = BillingScheduleItem(id="X", amount=usd("999.00"), status="cancelled")
    schedule = msgspec.structs.replace(SCHEDULE, items=(*SCHEDULE.items, cancelled))

    assert schedule.total() == usd("82500.00")


def test_billing_schedule_refuses_items_in_another_currency():
    foreign = BillingScheduleItem(id="X", amount=Money.of("1", "EUR"))
    schedule = msgspec.structs.replace(SCHEDULE, items=(foreign,))

    with pytest.raises(ValueError, match="USD and EUR"):
        schedule.total()


def test_dimensions_merge_over_defaults():
    own = FinancialDimensions(department="Advisory", tax_code=None)
    defaults = FinancialDimensions(legal_entity="ACME-UK", department="Consulting", tax_code="S")

    merged = own.merged_over(defaults)

    assert merged == FinancialDimensions(
        legal_entity="ACME-UK", department="Advisory", tax_code="S"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Globex", "Globex Corp", ("Globex", "Globex Corp")),
        (None, 30, (None, "30")),
        (True, False, ("true", "false")),
        (Decimal("1.50"), Decimal("2.00"), ("1.50", "2.00")),
        (date(2026, 1, 1), None, ("2026-01-01", None)),
        (
            None,
            Address(city="Paris"),
            (None, '{"lines":[],"city":"Paris","region":"","postal_code":"","country":""}'),
        ),
    ],
)
def test_field_change_renders_values_as_text(old, new, expected):
    change = FieldChange.of("field", old, new)

    assert (change.old, change.new) == expected


def test_account_changed_lists_changed_fields():
    event = EVENT_SAMPLES[AccountChanged][0]

    assert event.changed_fields() == {"name", "payment_terms_days", "billing_address"}


def test_ordering_keys():
    keys = {cls.__name__: samples[0].ordering_key() for cls, samples in EVENT_SAMPLES.items()}

    assert keys == {
        "DealWon": "opportunity:006A",
        "AccountChanged": "account:001A",
        "ContractApproved": "contract:800A",
        "ProjectActivated": "project:P-1",
        "TimeApproved": "project:P-1",
        "ExpenseApproved": "project:P-1",
        "MilestoneCompleted": "project:P-1",
        "InvoiceIssued": "invoice:in_1",
        "InvoiceStatusChanged": "invoice:in_1",
        "PaymentReceived": "invoice:in_1",
        "ReconciliationRequested": "reconcile:2026-03-01..2026-03-31",
        "BillingPeriodClosed": "period:2026-03",
    }


def test_a_billing_period_is_a_calendar_month():
    assert msgspec.convert(
        {"type": "billing_period.closed", "period": "2026-12"}, AnyEvent
    ) == BillingPeriodClosed(period="2026-12")
    for bad in ("2026-13", "2026-00", "2026-1", "26-01", "2026-01-31", ""):
        with pytest.raises(msgspec.ValidationError, match="period"):
            msgspec.convert({"type": "billing_period.closed", "period": bad}, AnyEvent)


def test_unapplied_payment_is_ordered_by_account():
    payment = msgspec.structs.replace(PAYMENT, invoice_id=None)

    assert PaymentReceived(payment=payment).ordering_key() == "account:001A"
