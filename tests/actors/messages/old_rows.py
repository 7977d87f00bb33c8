"""The rows behind ``fixtures/``: what older and newer pssync versions wrote.

The fixture files are frozen bytes and are never regenerated; these literals only
document their content (a test checks that they still match the files). To add a shape,
add a literal here, write its msgpack bytes to a new file once, and commit both.
"""

from __future__ import annotations

# An early row: written before causation_id and schema_version existed, with a time entry
# that had none of the optional fields (role, task, notes, dimensions, refs, updated_at).
OLDER_TIME_APPROVED = {
    "id": "6f1b0d7e-0b5c-5a4e-9a43-3f0f3c0e2a11",
    "type": "time.approved",
    "key": "project:P-1",
    "correlation_id": "6f1b0d7e-0b5c-5a4e-9a43-3f0f3c0e2a11",
    "source": "psa",
    "occurred_at": "2026-04-02T18:00:00Z",
    "recorded_at": "2026-04-02T18:00:05.250000Z",
    "body": {
        "type": "time.approved",
        "entry": {
            "id": "TE-1",
            "project_id": "P-1",
            "consultant_id": "U-9",
            "date_performed": "2026-04-02",
            "hours": "7.50",
            "bill_rate": {"amount": "175.00", "currency": "USD"},
        },
    },
}

# An early deal row with a minimal opportunity and an account without the newer fields.
OLDER_DEAL_WON = {
    "id": "0d3e3a57-6a5e-5bd0-8d4f-1f8e9c2b7a60",
    "type": "deal.won",
    "key": "opportunity:006A",
    "correlation_id": "0d3e3a57-6a5e-5bd0-8d4f-1f8e9c2b7a60",
    "source": "crm",
    "occurred_at": "2026-03-30T09:15:00+02:00",
    "recorded_at": "2026-03-30T07:15:02Z",
    "body": {
        "type": "deal.won",
        "opportunity": {
            "id": "006A",
            "account_id": "001A",
            "amount": {"amount": "250000.00", "currency": "EUR"},
        },
        "account": {"id": "001A", "name": "Globex"},
    },
}

# A row from a newer pssync: unknown fields at every level must be skipped, not refused.
NEWER_WITH_UNKNOWN_FIELDS = {
    "id": "a5c1e0d2-3b4f-5c6d-8e9f-0a1b2c3d4e5f",
    "type": "time.approved",
    "key": "project:P-1",
    "correlation_id": "flow-7",
    "causation_id": None,
    "source": "psa",
    "occurred_at": "2026-04-02T18:00:00Z",
    "recorded_at": "2026-04-02T18:00:05Z",
    "schema_version": 2,
    "tenant": "acme-eu",
    "trace": {"span_id": "00f067aa0ba902b7"},
    "body": {
        "type": "time.approved",
        "approved_by": "manager-3",
        "entry": {
            "id": "TE-2",
            "project_id": "P-1",
            "consultant_id": "U-9",
            "date_performed": "2026-04-02",
            "hours": "1.25",
            "location": "remote",
            "bill_rate": {"amount": "200.00", "currency": "USD", "fx_rate": "1"},
        },
    },
}

# A row from a newer pssync whose event type this one does not know.
NEWER_UNKNOWN_TYPE = {
    "id": "b7d2f1e3-4c5a-5d6e-9f0a-1b2c3d4e5f60",
    "type": "timesheet.rejected",
    "key": "project:P-1",
    "correlation_id": "flow-8",
    "source": "psa",
    "occurred_at": "2026-04-03T10:00:00Z",
    "recorded_at": "2026-04-03T10:00:01Z",
    "schema_version": 2,
    "body": {"type": "timesheet.rejected", "timesheet_id": "TS-1", "reason": "typo"},
}

# An UpsertCustomer written before commands could name the fields to write (``fields``):
# it must still mean "the whole account".
OLDER_UPSERT_CUSTOMER = {
    "command": "upsert_customer",
    "idempotency_key": "run-7:propagate:erp",
    "correlation_id": "flow-9",
    "account": {
        "id": "001A",
        "name": "Globex Corp",
        "legal_entity": "PSF-US",
        "currency": "USD",
        "tax_id": "US-12-3456789",
    },
    "contacts": [],
}

FIXTURES = {
    "older_time_approved.msgpack": OLDER_TIME_APPROVED,
    "older_deal_won.msgpack": OLDER_DEAL_WON,
    "newer_with_unknown_fields.msgpack": NEWER_WITH_UNKNOWN_FIELDS,
    "newer_unknown_type.msgpack": NEWER_UNKNOWN_TYPE,
    "older_upsert_customer.msgpack": OLDER_UPSERT_CUSTOMER,
}
