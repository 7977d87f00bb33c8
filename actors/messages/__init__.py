"""Canonical messages: entities, events, commands and the envelope (DESIGN.md §2).

Entities are frozen msgspec Structs with business names; events (facts a system reported)
and commands (requests to one system actor) are tagged unions whose tags never change;
the envelope wraps an event for the journal. ``codec`` encodes them: msgpack for the
journal, JSON for the control socket and logs. Money is Decimal plus an ISO 4217 code.
"""

from __future__ import annotations

from .billing import (
    BillingSchedule as BillingSchedule,
)
from .billing import (
    BillingScheduleItem as BillingScheduleItem,
)
from .billing import (
    Invoice as Invoice,
)
from .billing import (
    InvoiceLine as InvoiceLine,
)
from .billing import (
    InvoiceStatus as InvoiceStatus,
)
from .billing import (
    Payment as Payment,
)
from .codec import (
    decode_command as decode_command,
)
from .codec import (
    decode_command_json as decode_command_json,
)
from .codec import (
    decode_envelope as decode_envelope,
)
from .codec import (
    decode_envelope_header as decode_envelope_header,
)
from .codec import (
    decode_envelope_json as decode_envelope_json,
)
from .codec import (
    decode_event as decode_event,
)
from .codec import (
    decode_event_json as decode_event_json,
)
from .codec import (
    encode_command as encode_command,
)
from .codec import (
    encode_command_json as encode_command_json,
)
from .codec import (
    encode_envelope as encode_envelope,
)
from .codec import (
    encode_envelope_json as encode_envelope_json,
)
from .codec import (
    encode_event as encode_event,
)
from .codec import (
    encode_event_json as encode_event_json,
)
from .commands import (
    COMMAND_TYPES as COMMAND_TYPES,
)
from .commands import (
    AnyCommand as AnyCommand,
)
from .commands import (
    ApplyPayment as ApplyPayment,
)
from .commands import (
    Command as Command,
)
from .commands import (
    CreateInvoice as CreateInvoice,
)
from .commands import (
    CreateProjectFromTemplate as CreateProjectFromTemplate,
)
from .commands import (
    CreateSubscription as CreateSubscription,
)
from .commands import (
    FinalizeInvoice as FinalizeInvoice,
)
from .commands import (
    MarkEntriesExported as MarkEntriesExported,
)
from .commands import (
    PostExpenseLines as PostExpenseLines,
)
from .commands import (
    PostInvoice as PostInvoice,
)
from .commands import (
    PostTimeEntries as PostTimeEntries,
)
from .commands import (
    UpdateAccountFields as UpdateAccountFields,
)
from .commands import (
    UpdateBillingProgress as UpdateBillingProgress,
)
from .commands import (
    UpdateDealStatus as UpdateDealStatus,
)
from .commands import (
    UpdateInvoiceStatus as UpdateInvoiceStatus,
)
from .commands import (
    UpsertBillingSchedule as UpsertBillingSchedule,
)
from .commands import (
    UpsertCustomer as UpsertCustomer,
)
from .commands import (
    UpsertJob as UpsertJob,
)
from .commands import (
    UpsertProject as UpsertProject,
)
from .commands import (
    command_tag as command_tag,
)
from .common import (
    AwareDatetime as AwareDatetime,
)
from .common import (
    ExternalRef as ExternalRef,
)
from .common import (
    FieldChange as FieldChange,
)
from .common import (
    NonEmptyStr as NonEmptyStr,
)
from .currencies import (
    ISO_4217 as ISO_4217,
)
from .currencies import (
    is_currency as is_currency,
)
from .currencies import (
    minor_unit_exponent as minor_unit_exponent,
)
from .dimensions import (
    FinancialDimensions as FinancialDimensions,
)
from .envelope import (
    ENVELOPE_NAMESPACE as ENVELOPE_NAMESPACE,
)
from .envelope import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from .envelope import (
    Envelope as Envelope,
)
from .envelope import (
    EnvelopeHeader as EnvelopeHeader,
)
from .envelope import (
    envelope_id as envelope_id,
)
from .events import (
    EVENT_TYPES as EVENT_TYPES,
)
from .events import (
    AccountChanged as AccountChanged,
)
from .events import (
    AnyEvent as AnyEvent,
)
from .events import (
    BillingPeriod as BillingPeriod,
)
from .events import (
    BillingPeriodClosed as BillingPeriodClosed,
)
from .events import (
    ContractApproved as ContractApproved,
)
from .events import (
    DealWon as DealWon,
)
from .events import (
    Event as Event,
)
from .events import (
    ExpenseApproved as ExpenseApproved,
)
from .events import (
    InvoiceIssued as InvoiceIssued,
)
from .events import (
    InvoiceStatusChanged as InvoiceStatusChanged,
)
from .events import (
    MilestoneCompleted as MilestoneCompleted,
)
from .events import (
    PaymentReceived as PaymentReceived,
)
from .events import (
    ProjectActivated as ProjectActivated,
)
from .events import (
    ReconciliationRequested as ReconciliationRequested,
)
from .events import (
    TimeApproved as TimeApproved,
)
from .events import (
    event_tag as event_tag,
)
from .money import (
    CurrencyCode as CurrencyCode,
)
from .money import (
    Money as Money,
)
from .money import (
    check_currency as check_currency,
)
from .money import (
    sum_money as sum_money,
)
from .parties import (
    Account as Account,
)
from .parties import (
    Address as Address,
)
from .parties import (
    Contact as Contact,
)
from .projects import (
    Milestone as Milestone,
)
from .projects import (
    MilestoneStatus as MilestoneStatus,
)
from .projects import (
    Phase as Phase,
)
from .projects import (
    Project as Project,
)
from .projects import (
    ResourceDemand as ResourceDemand,
)
from .sales import (
    Contract as Contract,
)
from .sales import (
    ContractLine as ContractLine,
)
from .sales import (
    ContractLineKind as ContractLineKind,
)
from .sales import (
    ContractMilestone as ContractMilestone,
)
from .sales import (
    FixedFeeLine as FixedFeeLine,
)
from .sales import (
    Opportunity as Opportunity,
)
from .sales import (
    OpportunityLine as OpportunityLine,
)
from .sales import (
    Rate as Rate,
)
from .sales import (
    RateCard as RateCard,
)
from .sales import (
    SubscriptionLine as SubscriptionLine,
)
from .sales import (
    TimeAndMaterialsLine as TimeAndMaterialsLine,
)
from .work import (
    ExpenseEntry as ExpenseEntry,
)
from .work import (
    TimeEntry as TimeEntry,
)
