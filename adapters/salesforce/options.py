"""Settings of one Salesforce system that the adapter needs beyond HTTP and auth."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

__all__ = ["SalesforceFields", "SalesforceOptions"]


def _account_refs() -> dict[str, str]:
    return {
        "erp": "ERP_Customer_Id__c",
        "psa": "PSA_Client_Id__c",
        "billing": "Billing_Customer_Id__c",
    }


def _opportunity_refs() -> dict[str, str]:
    return {
        "psa": "PSA_Project_Id__c",
        "erp": "ERP_Project_Id__c",
        "billing": "Billing_Subscription_Id__c",
    }


class SalesforceFields(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The org's custom fields pssync reads back and writes to (names differ per org).

    ``*_refs`` map a configured system name (``erp``, ``psa``, ``billing``) to the field
    holding that system's id: read into ``external_refs`` by the feeds, written by
    ``UpdateDealStatus`` (refs with ``object_type="customer"`` go to the account) and
    ``UpsertCustomer``.
    """

    account_refs: dict[str, str] = msgspec.field(default_factory=_account_refs)
    opportunity_refs: dict[str, str] = msgspec.field(default_factory=_opportunity_refs)
    customer_external_id: str = "Source_Key__c"
    """The Account external-id field that ``UpsertCustomer`` upserts by (canonical id)."""
    contact_external_id: str = "Source_Key__c"
    """The Contact external-id field for an ``UpsertCustomer``'s contacts."""
    project_status: str = "Project_Status__c"
    status_message: str = "Sync_Error__c"
    billing_progress_percent: str = "Billing_Progress__c"
    invoiced_amount: str = "Invoiced_Amount__c"
    paid_amount: str = "Paid_Amount__c"
    balance_due: str = "Balance_Due__c"
    """On the Account: what the customer still owes (``UpdateBillingProgress.outstanding``)."""
    billing_contact_relationship: str = "Billing_Contact__r"
    """The Account's relationship to its billing Contact, read with the account."""


class SalesforceOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``systems.<name>`` options of a Salesforce system (units in the names).

    ``overlap_s``: every poll re-reads this much before its watermark, because a record's
    ``SystemModstamp`` is set when its transaction starts and it becomes visible only at
    commit; re-read records get the same envelope id and the journal drops them.
    ``start_watermark``: ISO 8601 time the feeds start from when they have no watermark
    (``None``: from the beginning of the org's data).
    """

    api_version: Annotated[str, Meta(pattern=r"^v\d{2,3}\.\d$")] = "v66.0"
    overlap_s: Annotated[float, Meta(ge=0)] = 60.0
    query_batch_size: Annotated[int, Meta(ge=200, le=2000)] = 200
    """``Sforce-Query-Options: batchSize`` — records per query page (Salesforce: 200-2000)."""
    collection_size: Annotated[int, Meta(ge=1, le=200)] = 200
    """Records per sObject Collections call (Salesforce allows at most 200)."""
    start_watermark: str | None = None
    max_hierarchy_depth: Annotated[int, Meta(ge=0, le=50)] = 10
    """How many parents above a deal's account are read before the walk gives up."""
    fields: SalesforceFields = msgspec.field(default_factory=SalesforceFields)

    @property
    def data_path(self) -> str:
        """The REST root of the pinned version (``/services/data/v66.0``)."""
        return f"/services/data/{self.api_version}"
