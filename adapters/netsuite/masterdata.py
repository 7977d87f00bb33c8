"""Master data: customers and jobs (projects), upserted by external id.

Both are looked up first (one SuiteQL query) so that ``created`` is true only for the
call that created the record, then always upserted: a changed name or dimension reaches
NetSuite on the next UpsertCustomer / UpsertJob. Two calls per command.

An UpsertCustomer restricted to some fields (``UpsertCustomer.fields``) sends an existing
customer only the body fields those canonical fields map to, plus the pssync source id;
NetSuite's ``PUT …/eid:X`` upsert updates an existing record with the fields in the body
and leaves every other field as it is (as ``PATCH`` does), so a field changed in NetSuite
by its owner survives. A restricted command whose fields map to nothing here writes
nothing (one call); a customer that does not exist is created from the whole account.
"""

from __future__ import annotations

from typing import Any

from actors.messages import Account, FinancialDimensions, UpsertCustomer, UpsertJob

from ..base import CommandResult
from ..governor import Lane
from .context import Context

__all__ = ["upsert_customer", "upsert_job"]


async def upsert_customer(ctx: Context, command: UpsertCustomer) -> CommandResult:
    """A customer in the subsidiary of the account's legal entity, in its currency."""
    account = command.account
    if not command.restricted:
        return await ctx.upsert_record(
            "customer",
            "cus",
            account.id,
            _customer_body(ctx, account),
            lane=Lane.MASTER_DATA,
            correlation_id=command.correlation_id,
            update_existing=True,
        )
    # Built before any call, so a field that cannot be mapped fails without a write.
    update = _customer_body(ctx, account, only=command)
    identity = set(ctx.fields.write("customer", {"id": account.id}))
    target = ctx.target("customer")
    external_id = ctx.refs.external_id("cus", account.id)
    found = await ctx.lookup(
        target, [external_id], lane=Lane.MASTER_DATA, correlation_id=command.correlation_id
    )
    existing = found.get(external_id)
    details = {"external_id": external_id}
    if existing is None:
        body = _customer_body(ctx, account)
    elif set(update) <= identity:
        return CommandResult(
            system=ctx.system,
            ids={account.id: existing},
            created=False,
            details=details | {"updated_fields": ""},
        )
    else:
        body = update
        details["updated_fields"] = ",".join(sorted(set(update) - identity))
    internal_id = await ctx.records.upsert(
        target.record_type,
        external_id,
        body,
        lane=Lane.MASTER_DATA,
        correlation_id=command.correlation_id,
    )
    return CommandResult(
        system=ctx.system, ids={account.id: internal_id}, created=existing is None, details=details
    )


def _customer_body(
    ctx: Context, account: Account, *, only: UpsertCustomer | None = None
) -> dict[str, Any]:
    """The customer's body fields: all of them, or those of the fields ``only`` names
    (and the source id, which identifies pssync's record)."""

    def writes(name: str) -> bool:
        return only is None or only.writes(name)

    values = {
        "name": account.name,
        "website": account.website,
        "tax_id": account.tax_id,
        "id": account.id,
    }
    body = ctx.fields.write(
        "customer", {name: value for name, value in values.items() if name == "id" or writes(name)}
    )
    if writes("legal_entity"):
        body["subsidiary"] = ctx.refs.required_subsidiary(None, legal_entity=account.legal_entity)
    if writes("currency") and account.currency is not None:
        body["currency"] = ctx.refs.currency(account.currency)
    if writes("parent_id") and account.parent_id is not None and ctx.options.link_customer_parent:
        body["parent"] = {"externalId": ctx.refs.external_id("cus", account.parent_id)}
    if only is not None and only.writes("active"):
        body["isInactive"] = not account.active  # named: a reactivation must reach NetSuite
    elif not account.active:
        body["isInactive"] = True
    return body


async def upsert_job(ctx: Context, command: UpsertJob) -> CommandResult:
    """A job under the customer, with subsidiary, department, class and location."""
    project = command.project
    dimensions = command.dimensions.merged_over(project.dimensions or FinancialDimensions())
    body = ctx.fields.write(
        "job",
        {
            "name": project.name,
            "start_date": project.start_date,
            "end_date": project.end_date,
            "id": project.id,
        },
    )
    body["parent"] = {"id": command.customer_id}
    body["currency"] = ctx.refs.currency(project.currency)
    subsidiary = ctx.refs.subsidiary(dimensions)
    if subsidiary is not None:  # else NetSuite takes the parent customer's
        body["subsidiary"] = subsidiary
    body |= ctx.refs.segments(dimensions)
    return await ctx.upsert_record(
        "job",
        "job",
        project.id,
        body,
        lane=Lane.MASTER_DATA,
        correlation_id=command.correlation_id,
        update_existing=True,
    )
