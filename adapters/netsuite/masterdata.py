"""Master data: customers and jobs (projects), upserted by external id.

Both are looked up first (one SuiteQL query) so that ``created`` is true only for the
call that created the record, then always upserted: a changed name or dimension reaches
NetSuite on the next UpsertCustomer / UpsertJob. Two calls per command.
"""

from __future__ import annotations

from actors.messages import FinancialDimensions, UpsertCustomer, UpsertJob

from ..base import CommandResult
from ..governor import Lane
from .context import Context

__all__ = ["upsert_customer", "upsert_job"]


async def upsert_customer(ctx: Context, command: UpsertCustomer) -> CommandResult:
    """A customer in the subsidiary of the account's legal entity, in its currency."""
    account = command.account
    body = ctx.fields.write(
        "customer",
        {
            "name": account.name,
            "website": account.website,
            "tax_id": account.tax_id,
            "id": account.id,
        },
    )
    body["subsidiary"] = ctx.refs.required_subsidiary(None, legal_entity=account.legal_entity)
    if account.currency is not None:
        body["currency"] = ctx.refs.currency(account.currency)
    if account.parent_id is not None and ctx.options.link_customer_parent:
        body["parent"] = {"externalId": ctx.refs.external_id("cus", account.parent_id)}
    if not account.active:
        body["isInactive"] = True
    return await ctx.upsert_record(
        "customer",
        "cus",
        account.id,
        body,
        lane=Lane.MASTER_DATA,
        correlation_id=command.correlation_id,
        update_existing=True,
    )


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
