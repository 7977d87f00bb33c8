"""The simulated org's object model: fields, types, required fields, relationships.

Only what pssync reads and writes is modelled. Custom fields carry the ``__c`` suffix;
the names are this project's choice (a real org would have its own), documented here
because adapters' field mappings refer to them.

Assumptions (systems.md does not pin them):
- multi-currency org with ISO codes in :data:`CURRENCIES`; a record's ``CurrencyIsoCode``
  defaults to the corporate currency ``USD``;
- the won stage is ``Closed Won`` and the lost one ``Closed Lost`` (:data:`STAGES` stands in
  for ``OpportunityStage`` metadata: ``IsClosed``/``IsWon``/probability are derived from it);
- external-id fields are *not* unique (a real org may mark them unique), so an upsert can
  meet several matches and answer 300 — that is what the sandbox must be able to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal[
    "id",
    "reference",
    "string",
    "picklist",
    "double",
    "currency",
    "percent",
    "int",
    "boolean",
    "date",
    "datetime",
]

CURRENCIES = ("USD", "GBP", "EUR", "CAD", "AUD", "CHF", "JPY", "SEK", "ZAR")

#: StageName → (IsClosed, IsWon, default Probability, ForecastCategoryName).
STAGES: dict[str, tuple[bool, bool, float, str]] = {
    "Prospecting": (False, False, 10.0, "Pipeline"),
    "Qualification": (False, False, 20.0, "Pipeline"),
    "Needs Analysis": (False, False, 30.0, "Pipeline"),
    "Proposal/Price Quote": (False, False, 60.0, "Pipeline"),
    "Negotiation/Review": (False, False, 80.0, "Best Case"),
    "Closed Won": (True, True, 100.0, "Closed"),
    "Closed Lost": (True, False, 0.0, "Omitted"),
}
WON_STAGE = "Closed Won"

BILLING_TYPES = ("fixed_fee", "time_and_materials", "subscription")


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    writable: bool = True
    external_id: bool = False
    reference_to: str | None = None
    relationship: str | None = None  # e.g. "Account" for AccountId
    picklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChildRelationship:
    name: str  # e.g. "OpportunityLineItems"
    child: str  # e.g. "OpportunityLineItem"
    field: str  # the child's reference field, e.g. "OpportunityId"


@dataclass
class SObject:
    name: str
    key_prefix: str
    fields: dict[str, Field]
    children: dict[str, ChildRelationship] = field(default_factory=dict)
    _lower: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lower = {name.lower(): name for name in self.fields}

    def field(self, name: str) -> Field | None:
        """The field called ``name`` (case-insensitive, as SOQL and the REST API are)."""
        canonical = self._lower.get(name.lower())
        return self.fields[canonical] if canonical else None

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship name is ``name`` (``Account`` → AccountId)."""
        for candidate in self.fields.values():
            if candidate.relationship and candidate.relationship.lower() == name.lower():
                return candidate
        return None

    def child(self, name: str) -> ChildRelationship | None:
        for relationship in self.children.values():
            if relationship.name.lower() == name.lower():
                return relationship
        return None

    @property
    def external_ids(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.external_id]


def _audit() -> list[Field]:
    return [
        Field("Id", "id", writable=False),
        Field("IsDeleted", "boolean", writable=False),
        Field("CreatedDate", "datetime", writable=False),
        Field("CreatedById", "reference", writable=False),
        Field("LastModifiedDate", "datetime", writable=False),
        Field("LastModifiedById", "reference", writable=False),
        Field("SystemModstamp", "datetime", writable=False),
        Field("CurrencyIsoCode", "picklist", picklist=CURRENCIES),
    ]


def _object(
    name: str,
    prefix: str,
    fields: list[Field],
    children: dict[str, ChildRelationship] | None = None,
) -> SObject:
    return SObject(name, prefix, {f.name: f for f in [*_audit(), *fields]}, children or {})


ACCOUNT = _object(
    "Account",
    "001",
    [
        Field("Name", "string", required=True),
        Field("ParentId", "reference", reference_to="Account", relationship="Parent"),
        Field("Type", "picklist", picklist=("Customer", "Prospect", "Partner", "Other")),
        Field("Industry", "string"),
        Field("BillingStreet", "string"),
        Field("BillingCity", "string"),
        Field("BillingPostalCode", "string"),
        Field("BillingCountry", "string"),
        Field("Website", "string"),
        Field("Legal_Entity__c", "string"),
        Field(
            "Billing_Contact__c",
            "reference",
            reference_to="Contact",
            relationship="Billing_Contact__r",
        ),
        Field("Billing_Email__c", "string"),
        Field("Payment_Terms__c", "picklist", picklist=("Net 15", "Net 30", "Net 45", "Net 60")),
        Field("Tax_Id__c", "string"),
        Field("ERP_Customer_Id__c", "string", external_id=True),
        Field("PSA_Client_Id__c", "string", external_id=True),
        Field("Billing_Customer_Id__c", "string", external_id=True),
        Field("Source_Key__c", "string", external_id=True),
        Field("Credit_Status__c", "string"),
        Field("Balance_Due__c", "currency"),
    ],
    children={
        "ChildAccounts": ChildRelationship("ChildAccounts", "Account", "ParentId"),
        "Contacts": ChildRelationship("Contacts", "Contact", "AccountId"),
        "Opportunities": ChildRelationship("Opportunities", "Opportunity", "AccountId"),
    },
)

CONTACT = _object(
    "Contact",
    "003",
    [
        Field("FirstName", "string"),
        Field("LastName", "string", required=True),
        Field("Name", "string", writable=False),
        Field("Email", "string"),
        Field("Phone", "string"),
        Field("Title", "string"),
        Field("AccountId", "reference", reference_to="Account", relationship="Account"),
        Field("Source_Key__c", "string", external_id=True),
    ],
)

OPPORTUNITY = _object(
    "Opportunity",
    "006",
    [
        Field("Name", "string", required=True),
        Field("AccountId", "reference", reference_to="Account", relationship="Account"),
        Field("Amount", "currency"),
        Field("CloseDate", "date", required=True),
        Field("StageName", "picklist", required=True, picklist=tuple(STAGES)),
        Field("Probability", "percent"),
        Field("IsClosed", "boolean", writable=False),
        Field("IsWon", "boolean", writable=False),
        Field("ForecastCategoryName", "string", writable=False),
        Field("HasOpportunityLineItem", "boolean", writable=False),
        Field("Type", "string"),
        Field("LeadSource", "string"),
        Field("Description", "string"),
        Field("ContactId", "reference", reference_to="Contact", relationship="Contact"),
        Field("Service_Line__c", "string"),
        Field("Legal_Entity__c", "string"),
        Field("Contract_Start_Date__c", "date"),
        Field("Contract_End_Date__c", "date"),
        Field("PSA_Project_Id__c", "string", external_id=True),
        Field("ERP_Project_Id__c", "string", external_id=True),
        Field("Billing_Subscription_Id__c", "string", external_id=True),
        Field("Source_Key__c", "string", external_id=True),
        Field("Project_Status__c", "string"),
        Field("Billing_Progress__c", "percent"),
        Field("Invoiced_Amount__c", "currency"),
        Field("Paid_Amount__c", "currency"),
        Field("Sync_Status__c", "string"),
        Field("Sync_Error__c", "string"),
    ],
    children={
        "OpportunityLineItems": ChildRelationship(
            "OpportunityLineItems", "OpportunityLineItem", "OpportunityId"
        ),
    },
)

OPPORTUNITY_LINE_ITEM = _object(
    "OpportunityLineItem",
    "00k",
    [
        Field(
            "OpportunityId",
            "reference",
            required=True,
            reference_to="Opportunity",
            relationship="Opportunity",
        ),
        Field("Name", "string"),
        Field("Product2Id", "reference"),
        Field("PricebookEntryId", "reference"),
        Field("ProductCode", "string"),
        Field("Description", "string"),
        Field("Quantity", "double", required=True),
        Field("UnitPrice", "currency"),
        Field("ListPrice", "currency"),
        Field("TotalPrice", "currency"),
        Field("Discount", "percent"),
        Field("ServiceDate", "date"),
        Field("SortOrder", "int"),
        Field("Billing_Type__c", "picklist", picklist=BILLING_TYPES),
        Field(
            "Billing_Frequency__c",
            "picklist",
            picklist=("one_time", "monthly", "quarterly", "annual"),
        ),
        Field("Milestone_Name__c", "string"),
        Field("Milestone_Due_Date__c", "date"),
        Field("Milestone_Percent__c", "percent"),
        Field("Role__c", "string"),
        Field("Hours__c", "double"),
        Field("External_Line_Id__c", "string", external_id=True),
    ],
)

SOBJECTS: dict[str, SObject] = {
    o.name: o for o in (ACCOUNT, CONTACT, OPPORTUNITY, OPPORTUNITY_LINE_ITEM)
}
_SOBJECTS_LOWER = {name.lower(): o for name, o in SOBJECTS.items()}
PREFIXES: dict[str, str] = {o.key_prefix: o.name for o in SOBJECTS.values()}


def sobject(name: str) -> SObject | None:
    """The object called ``name`` (case-insensitive)."""
    return _SOBJECTS_LOWER.get(name.lower())
