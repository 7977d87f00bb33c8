"""Example messages for the tests: one full and one minimal instance per event and command.

``EVENT_SAMPLES`` and ``COMMAND_SAMPLES`` are keyed by class; a test asserts their keys are
exactly the members of the unions, so a new message class without samples fails the suite.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from actors.messages import (
    Account,
    AccountChanged,
    Address,
    ApplyPayment,
    BillingPeriodClosed,
    BillingSchedule,
    BillingScheduleItem,
    Command,
    Contact,
    Contract,
    ContractApproved,
    ContractMilestone,
    CreateInvoice,
    CreateProjectFromTemplate,
    CreateSubscription,
    DealWon,
    Event,
    ExpenseApproved,
    ExpenseEntry,
    ExternalRef,
    FieldChange,
    FinalizeInvoice,
    FinancialDimensions,
    FixedFeeLine,
    Invoice,
    InvoiceIssued,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusChanged,
    MarkEntriesExported,
    Milestone,
    MilestoneCompleted,
    Money,
    Opportunity,
    OpportunityLine,
    Payment,
    PaymentReceived,
    Phase,
    PostExpenseLines,
    PostInvoice,
    PostTimeEntries,
    Project,
    ProjectActivated,
    Rate,
    RateCard,
    ReconciliationRequested,
    ResourceDemand,
    SubscriptionLine,
    TimeAndMaterialsLine,
    TimeApproved,
    TimeEntry,
    UpdateAccountFields,
    UpdateBillingProgress,
    UpdateDealStatus,
    UpdateInvoiceStatus,
    UpsertBillingSchedule,
    UpsertCustomer,
    UpsertJob,
    UpsertProject,
)

T0 = datetime(2026, 3, 31, 17, 45, 12, 123456, tzinfo=UTC)
T_PARIS = datetime(2026, 3, 31, 19, 45, tzinfo=timezone(timedelta(hours=2)))


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


DIMS = FinancialDimensions(
    legal_entity="ACME-US",
    subsidiary="3",
    department="Consulting",
    cost_centre="CC-410",
    region="NA",
    location="NYC",
    project_code="P-1001",
    tax_code="US-NY",
)
REF_ERP = ExternalRef(system="erp", id="4711", object_type="customer")
CONTACT = Contact(
    id="003A",
    account_id="001A",
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    phone="+1 555 0100",
    title="CFO",
    external_refs=(ExternalRef(system="crm", id="003A"),),
    updated_at=T0,
)
ADDRESS = Address(
    lines=("1 Main St", "Floor 5"), city="New York", region="NY", postal_code="10001", country="US"
)
ACCOUNT = Account(
    id="001A",
    name="Globex Corp",
    parent_id="001P",
    legal_entity="ACME-US",
    currency="USD",
    billing_contact=CONTACT,
    billing_address=ADDRESS,
    shipping_address=ADDRESS,
    tax_id="US-12-3456789",
    payment_terms_days=30,
    industry="Manufacturing",
    website="https://globex.example",
    owner="Jane Partner",
    active=True,
    external_refs=(REF_ERP,),
    updated_at=T0,
)
OPPORTUNITY = Opportunity(
    id="006A",
    account_id="001A",
    name="Globex ERP rollout",
    stage="Closed Won",
    is_won=True,
    is_closed=True,
    close_date=date(2026, 3, 30),
    amount=usd("250000.00"),
    service_line="erp-implementation",
    project_template_id="TPL-ERP",
    legal_entity="ACME-US",
    primary_contact_id="003A",
    owner="Jane Partner",
    lines=(
        OpportunityLine(
            id="00kA",
            name="Implementation",
            product_code="IMPL",
            service_line="erp-implementation",
            quantity=Decimal("1"),
            unit_price=usd("200000.00"),
            total=usd("200000.00"),
            service_date=date(2026, 4, 1),
            description="Fixed fee",
        ),
        OpportunityLine(id="00kB", unit_price=usd("50000")),
    ),
    external_refs=(ExternalRef(system="crm", id="006A", object_type="Opportunity"),),
    updated_at=T0,
)
RATE_CARD = RateCard(
    id="RC-2026",
    name="Standard 2026",
    rates=(
        Rate(role="Consultant", bill_rate=usd("175.00"), cost_rate=usd("80.00")),
        Rate(role="Architect", bill_rate=usd("240.50")),
    ),
)
CONTRACT = Contract(
    id="800A",
    account_id="001A",
    opportunity_id="006A",
    number="C-2026-001",
    status="Activated",
    currency="USD",
    legal_entity="ACME-US",
    start_date=date(2026, 4, 1),
    end_date=date(2027, 3, 31),
    signed_on=date(2026, 3, 29),
    payment_terms_days=30,
    lines=(
        FixedFeeLine(
            id="L1",
            description="Implementation",
            service_line="erp-implementation",
            dimensions=DIMS,
            amount=usd("200000.00"),
            milestones=(
                ContractMilestone(
                    id="M1", name="Design", amount=usd("80000.00"), due_date=date(2026, 5, 1)
                ),
                ContractMilestone(id="M2", amount=usd("120000.00")),
            ),
        ),
        TimeAndMaterialsLine(id="L2", rate_card=RATE_CARD, cap=usd("50000.00")),
        SubscriptionLine(
            id="L3",
            amount=usd("2500.00"),
            interval="month",
            interval_count=1,
            quantity=Decimal("2"),
            start_date=date(2026, 7, 1),
            end_date=date(2027, 6, 30),
        ),
    ),
    external_refs=(ExternalRef(system="crm", id="800A"),),
    updated_at=T0,
)
MILESTONE = Milestone(
    id="M1",
    project_id="P-1",
    name="Design sign-off",
    phase_id="PH1",
    contract_line_id="L1",
    due_date=date(2026, 5, 1),
    completed_on=date(2026, 4, 28),
    status="approved",
    amount=usd("80000.00"),
)
PROJECT = Project(
    id="P-1",
    name="Globex ERP rollout",
    account_id="001A",
    opportunity_id="006A",
    contract_id="800A",
    template_id="TPL-ERP",
    status="active",
    currency="USD",
    start_date=date(2026, 4, 1),
    end_date=date(2027, 3, 31),
    budget=usd("250000.00"),
    manager="Pat Manager",
    dimensions=DIMS,
    phases=(
        Phase(
            id="PH1",
            name="Design",
            wbs_code="1",
            start_date=date(2026, 4, 1),
            end_date=date(2026, 4, 30),
            budget=usd("80000"),
        ),
        Phase(id="PH1.1", name="Workshops", parent_id="PH1", wbs_code="1.1"),
    ),
    milestones=(MILESTONE, Milestone(id="M2", project_id="P-1")),
    resource_demand=(
        ResourceDemand(
            id="RD1",
            role="Architect",
            hours=Decimal("120.5"),
            start_date=date(2026, 4, 1),
            end_date=date(2026, 6, 30),
            phase_id="PH1",
            consultant_id="U-9",
            bill_rate=usd("240.50"),
        ),
    ),
    external_refs=(ExternalRef(system="psa", id="123456", object_type="workspace"),),
    updated_at=T0,
)
TIME_ENTRY = TimeEntry(
    id="TE-1",
    project_id="P-1",
    consultant_id="U-9",
    date_performed=date(2026, 4, 2),
    hours=Decimal("7.25"),
    billable=True,
    approved=True,
    bill_rate=usd("175.00"),
    cost_rate=usd("80.00"),
    role="Consultant",
    phase_id="PH1",
    task_id="S-77",
    notes="Workshop with finance team",
    exported=False,
    dimensions=DIMS,
    external_refs=(ExternalRef(system="psa", id="991", object_type="time_entry"),),
    updated_at=T_PARIS,
)
EXPENSE_ENTRY = ExpenseEntry(
    id="EX-1",
    project_id="P-1",
    consultant_id="U-9",
    date_incurred=date(2026, 4, 3),
    category="Travel",
    amount=eur("200.00"),
    tax=eur("38.00"),
    billable=True,
    reimbursable=True,
    approved=True,
    notes="Train to Lyon",
    receipt_url="https://psa.example/receipts/1",
    exported=False,
    dimensions=DIMS,
    external_refs=(ExternalRef(system="psa", id="55", object_type="expense"),),
    updated_at=T0,
)
INVOICE = Invoice(
    id="in_1",
    account_id="001A",
    number="INV-0001",
    project_id="P-1",
    contract_id="800A",
    currency="USD",
    status=InvoiceStatus.OPEN,
    issue_date=date(2026, 4, 28),
    due_date=date(2026, 5, 28),
    lines=(
        InvoiceLine(
            id="il_1",
            description="Milestone: Design sign-off",
            quantity=Decimal("1"),
            unit_price=usd("80000.00"),
            amount=usd("80000.00"),
            tax=usd("7100.00"),
            project_id="P-1",
            milestone_id="M1",
            billing_schedule_item_id="BSI-1",
            time_entry_ids=("TE-1", "TE-2"),
            dimensions=DIMS,
        ),
    ),
    total=usd("87100.00"),
    amount_due=usd("87100.00"),
    amount_paid=usd("0.00"),
    legal_entity="ACME-US",
    external_refs=(ExternalRef(system="billing", id="in_1", object_type="invoice"),),
    updated_at=T0,
)
PAYMENT = Payment(
    id="py_1",
    account_id="001A",
    amount=usd("87100.00"),
    received_on=date(2026, 5, 20),
    invoice_id="in_1",
    method="ach",
    reference="ACH-778",
    fee=usd("8.00"),
    external_refs=(ExternalRef(system="billing", id="py_1"),),
)
SCHEDULE = BillingSchedule(
    id="BS-1",
    project_id="P-1",
    account_id="001A",
    contract_id="800A",
    kind="milestone",
    currency="USD",
    items=(
        BillingScheduleItem(
            id="BSI-1",
            description="Design sign-off",
            amount=usd("80000.00"),
            milestone_id="M1",
            contract_line_id="L1",
            status="ready",
        ),
        BillingScheduleItem(
            id="BSI-2",
            amount=usd("2500.00"),
            bill_on=date(2026, 7, 1),
            period_start=date(2026, 7, 1),
            period_end=date(2026, 7, 31),
            status="invoiced",
            invoice_id="in_2",
        ),
    ),
    external_refs=(REF_ERP,),
)

EVENT_SAMPLES: dict[type[Event], list[Event]] = {
    DealWon: [
        DealWon(opportunity=OPPORTUNITY, account=ACCOUNT, contacts=(CONTACT,)),
        DealWon(opportunity=Opportunity(id="006B", account_id="001B")),
    ],
    AccountChanged: [
        AccountChanged(
            account=ACCOUNT,
            changes=(
                FieldChange.of("name", "Globex", "Globex Corp"),
                FieldChange.of("payment_terms_days", None, 30),
                FieldChange.of("billing_address", None, ADDRESS),
            ),
        ),
        AccountChanged(account=Account(id="001B", name="Initech")),
    ],
    ContractApproved: [
        ContractApproved(contract=CONTRACT),
        ContractApproved(contract=Contract(id="800B", account_id="001B", currency="JPY")),
    ],
    ProjectActivated: [
        ProjectActivated(
            project=PROJECT,
            refs=(REF_ERP, ExternalRef(system="psa", id="123456", object_type="workspace")),
        ),
        ProjectActivated(project=Project(id="P-2", name="X", account_id="001B", currency="KWD")),
    ],
    TimeApproved: [
        TimeApproved(entry=TIME_ENTRY),
        TimeApproved(
            entry=TimeEntry(
                id="TE-2",
                project_id="P-1",
                consultant_id="U-1",
                date_performed=date(2026, 4, 2),
                hours=Decimal("0.333333333333"),
            )
        ),
    ],
    ExpenseApproved: [
        ExpenseApproved(entry=EXPENSE_ENTRY),
        ExpenseApproved(
            entry=ExpenseEntry(
                id="EX-2",
                project_id="P-1",
                consultant_id="U-1",
                date_incurred=date(2026, 4, 3),
                amount=Money.of(1500, "JPY"),
            )
        ),
    ],
    MilestoneCompleted: [
        MilestoneCompleted(milestone=MILESTONE),
        MilestoneCompleted(milestone=Milestone(id="M9", project_id="P-9")),
    ],
    InvoiceIssued: [
        InvoiceIssued(invoice=INVOICE),
        InvoiceIssued(invoice=Invoice(id="in_2", account_id="001B", currency="EUR")),
    ],
    InvoiceStatusChanged: [
        InvoiceStatusChanged(
            invoice_id="in_1",
            account_id="001A",
            previous=InvoiceStatus.OPEN,
            status=InvoiceStatus.PAID,
            amount_due=usd("0.00"),
            amount_paid=usd("87100.00"),
            changed_at=T0,
        ),
        InvoiceStatusChanged(invoice_id="in_2", status=InvoiceStatus.UNCOLLECTIBLE),
    ],
    PaymentReceived: [
        PaymentReceived(payment=PAYMENT),
        PaymentReceived(
            payment=Payment(
                id="py_2", account_id="001B", amount=eur("10"), received_on=date(2026, 1, 1)
            )
        ),
    ],
    ReconciliationRequested: [
        ReconciliationRequested(
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
            project_ids=("P-1", "P-2"),
            requested_by="operator:alice",
        ),
        ReconciliationRequested(period_start=date(2026, 3, 1), period_end=date(2026, 3, 31)),
    ],
    BillingPeriodClosed: [
        BillingPeriodClosed(period="2026-03"),
        BillingPeriodClosed(period="2026-12", requested_by="operator:alice"),
    ],
}

KEY = {"idempotency_key": "run-42:step-1"}
FULL = {"idempotency_key": "run-42:step-2", "correlation_id": "c0ffee"}

COMMAND_SAMPLES: dict[type[Command], list[Command]] = {
    UpsertCustomer: [
        UpsertCustomer(**FULL, account=ACCOUNT, contacts=(CONTACT,)),
        UpsertCustomer(**KEY, account=Account(id="001B", name="Initech")),
        UpsertCustomer(**FULL, account=ACCOUNT, fields=("name", "payment_terms", "invoice_email")),
    ],
    UpdateAccountFields: [
        UpdateAccountFields(
            **FULL, account_id="001A", changes=(FieldChange.of("website", "", "https://x"),)
        ),
        UpdateAccountFields(**KEY, account_id="001B", changes=()),
    ],
    UpsertProject: [UpsertProject(**FULL, project=PROJECT)],
    CreateProjectFromTemplate: [
        CreateProjectFromTemplate(**FULL, template_id="TPL-ERP", project=PROJECT)
    ],
    UpsertJob: [
        UpsertJob(**FULL, project=PROJECT, customer_id="4711", dimensions=DIMS),
        UpsertJob(**KEY, project=PROJECT, customer_id="4711", dimensions=FinancialDimensions()),
    ],
    UpsertBillingSchedule: [UpsertBillingSchedule(**FULL, schedule=SCHEDULE, customer_id="cus_1")],
    CreateSubscription: [
        CreateSubscription(
            **FULL,
            customer_id="cus_1",
            project_id="P-1",
            line=SubscriptionLine(id="L3", amount=usd("2500.00"), start_date=date(2026, 7, 1)),
        )
    ],
    PostTimeEntries: [
        PostTimeEntries(
            **FULL,
            project_id="P-1",
            entries=(TIME_ENTRY, EVENT_SAMPLES[TimeApproved][1].entry),
            period_start=date(2026, 4, 1),
            period_end=date(2026, 4, 30),
            dimensions=DIMS,
        ),
        PostTimeEntries(**KEY, project_id="P-1", entries=(TIME_ENTRY,)),
    ],
    PostExpenseLines: [
        PostExpenseLines(**FULL, project_id="P-1", entries=(EXPENSE_ENTRY,), dimensions=DIMS)
    ],
    MarkEntriesExported: [
        MarkEntriesExported(
            **FULL,
            time_entry_ids=("TE-1", "TE-2"),
            expense_entry_ids=("EX-1",),
            exported_to=ExternalRef(system="erp", id="TB-88", object_type="timebill"),
        ),
        MarkEntriesExported(**KEY, exported_to=ExternalRef(system="erp", id="JE-1")),
    ],
    CreateInvoice: [CreateInvoice(**FULL, invoice=INVOICE, customer_id="cus_1")],
    FinalizeInvoice: [FinalizeInvoice(**KEY, invoice_id="in_1")],
    PostInvoice: [
        PostInvoice(**FULL, invoice=INVOICE, customer_id="4711", dimensions=DIMS),
        PostInvoice(**KEY, invoice=INVOICE, customer_id="4711"),
    ],
    UpdateInvoiceStatus: [UpdateInvoiceStatus(**KEY, invoice_id="in_1", status=InvoiceStatus.VOID)],
    ApplyPayment: [
        ApplyPayment(**FULL, payment=PAYMENT, customer_id="4711", invoice_id="INV-ERP-1"),
        ApplyPayment(**KEY, payment=PAYMENT, customer_id="4711"),
    ],
    UpdateDealStatus: [
        UpdateDealStatus(
            **FULL, opportunity_id="006A", status="active", refs=(REF_ERP,), message="done"
        ),
        UpdateDealStatus(**KEY, opportunity_id="006A", status="provisioning"),
    ],
    UpdateBillingProgress: [
        UpdateBillingProgress(
            **FULL,
            account_id="001A",
            opportunity_id="006A",
            project_id="P-1",
            invoiced=usd("87100.00"),
            paid=usd("87100.00"),
            outstanding=usd("0.00"),
        ),
        UpdateBillingProgress(**KEY, account_id="001A", invoiced=usd("0")),
    ],
}
