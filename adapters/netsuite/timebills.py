"""PostTimeEntries, the month-end hot path: one time bill per entry, as few calls as allowed.

NetSuite's REST record service has no bulk create, so each entry is one
``PUT …/timebill/eid:<id>`` upsert. Before them, one SuiteQL query per
``lookup_chunk_size`` entries (``SELECT id, externalid FROM timebill WHERE externalid IN
(…)``) finds the entries NetSuite already has; those are skipped, not re-posted. Calls for
N entries of which K exist: ``ceil(N / lookup_chunk_size) + (N - K)``; a replay of a
posted batch of 500 costs one query. The upserts run ``min(max_parallel_upserts, governor
max_concurrency)`` at a time, under the account's concurrency limit.

Every entry is attempted even when some fail (each upsert is idempotent, so the retry of
the step only redoes what is missing); the step then fails with the first permanent
error, else the first retryable one, counting how many entries are outstanding.
"""

from __future__ import annotations

from typing import Any

import trio

from actors.errors import AdapterError, PermanentError, PssyncError, ThrottledError
from actors.messages import FinancialDimensions, PostTimeEntries, TimeEntry

from ..base import CommandResult
from ..governor import Lane
from .context import Context

__all__ = ["post_time_entries", "timebill_body"]


def timebill_body(ctx: Context, entry: TimeEntry, defaults: FinancialDimensions | None) -> dict:
    """The time bill of one entry: employee, job, hours, rate, dimensions, source token."""
    billable_rate = entry.bill_rate.amount if entry.billable and entry.bill_rate else None
    body: dict[str, Any] = ctx.fields.write(
        "timebill",
        {
            "date_performed": entry.date_performed,
            "hours": entry.hours,
            "billable": entry.billable,
            "rate": billable_rate,
        },
    )
    body["employee"] = ctx.refs.employee(entry)
    body["customer"] = ctx.refs.job(entry.project_id)  # the job, as NetSuite's UI does
    dimensions = (entry.dimensions or FinancialDimensions()).merged_over(
        defaults or FinancialDimensions()
    )
    body |= ctx.refs.segments(dimensions)
    if ctx.options.time_item_id:
        body["item"] = {"id": ctx.options.time_item_id}
    # The token names the source in NetSuite's UI and lets a duplicate under another
    # external id be found; time bills have no body-level custom source field.
    token = f"[pssync:{ctx.refs.external_id('tb', entry.id)}]"
    body["memo"] = f"{entry.notes} {token}" if entry.notes else token
    return body


async def post_time_entries(ctx: Context, command: PostTimeEntries) -> CommandResult:
    """Post every entry once; ``ids`` maps each time entry id to its time bill id."""
    entries = list({entry.id: entry for entry in command.entries}.values())
    # Build every body first: an unmapped dimension fails the batch before any call.
    bodies = {entry.id: timebill_body(ctx, entry, command.dimensions) for entry in entries}
    external_ids = {entry.id: ctx.refs.external_id("tb", entry.id) for entry in entries}
    target = ctx.target("timebill")
    found = await ctx.lookup(
        target,
        list(external_ids.values()),
        lane=Lane.CRITICAL,
        correlation_id=command.correlation_id,
    )
    ids = {eid_owner: found[eid] for eid_owner, eid in external_ids.items() if eid in found}
    todo = [entry.id for entry in entries if external_ids[entry.id] not in found]
    failures: list[tuple[str, PssyncError]] = []
    governor_cap = ctx.records.client.governor.config.max_concurrency
    limiter = trio.CapacityLimiter(min(ctx.options.max_parallel_upserts, governor_cap))

    async def post(entry_id: str) -> None:
        async with limiter:
            try:
                ids[entry_id] = await ctx.records.upsert(
                    target.record_type,
                    external_ids[entry_id],
                    bodies[entry_id],
                    lane=Lane.CRITICAL,
                    correlation_id=command.correlation_id,
                )
            except PssyncError as exc:
                failures.append((entry_id, exc))

    async with trio.open_nursery() as nursery:
        for entry_id in todo:
            nursery.start_soon(post, entry_id)
    if failures:
        raise _batch_error(failures, len(entries)) from failures[0][1]
    return CommandResult(
        system=ctx.system,
        ids=ids,
        created=bool(todo),
        details={"posted": str(len(todo)), "skipped": str(len(entries) - len(todo))},
    )


def _batch_error(failures: list[tuple[str, PssyncError]], total: int) -> PssyncError:
    for _, error in failures:
        if not isinstance(error, AdapterError):
            return error  # a payload problem: report it as it is
    entry_id, first = next(
        ((i, e) for i, e in failures if isinstance(e, PermanentError)), failures[0]
    )
    assert isinstance(first, AdapterError)
    message = f"{len(failures)} of {total} time entries not posted; {entry_id}: {first.message}"
    fields = {"system": first.system, "status": first.status, "code": first.code}
    if isinstance(first, ThrottledError):
        return ThrottledError(message, retry_after_s=first.retry_after_s, **fields)
    return type(first)(message, **fields)
