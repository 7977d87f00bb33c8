"""PostExpenseLines: one balanced journal entry per batch, external id from the command.

Each expense becomes two lines: a debit to the category's expense account (entity: the
project's job, with the entry's department, class and location) and a credit of the same
gross amount (amount plus tax) to the reimbursement liability (entity: the employee) or,
for non-reimbursable spend, to ``expense_offset_account_id``. A negative amount (a refund)
swaps the sides. The sandbox models expenses the same way (reference: sandbox netsuite
records). One SuiteQL lookup, then one upsert: two calls per batch, one on a replay.
"""

from __future__ import annotations

from typing import Any

from actors.errors import PermanentError
from actors.messages import ExpenseEntry, FinancialDimensions, Money, PostExpenseLines

from ..base import CommandResult
from ..governor import Lane
from .context import Context
from .wire import require

__all__ = ["post_expense_lines"]


async def post_expense_lines(ctx: Context, command: PostExpenseLines) -> CommandResult:
    """Post the batch as one journal entry; every expense id maps to its id."""
    entries = list({entry.id: entry for entry in command.entries}.values())
    if not entries:
        return CommandResult(system=ctx.system)
    currency = _one(ctx, {entry.amount.currency for entry in entries}, "currency")
    merged = [_dimensions(entry, command.dimensions) for entry in entries]
    subsidiaries = {_key(ctx.refs.required_subsidiary(dims)) for dims in merged}
    subsidiary = _one(ctx, subsidiaries, "subsidiary")
    lines: list[dict[str, Any]] = []
    for entry, dims in zip(entries, merged, strict=True):
        lines.extend(_lines(ctx, entry, dims))
    if not lines:
        return CommandResult(system=ctx.system, details={"note": "all amounts are zero"})
    body = ctx.fields.write(
        "journal_entry",
        {
            "date": max(entry.date_incurred for entry in entries),
            "memo": f"Expenses of project {command.project_id}",
            "source": command.idempotency_key,
        },
    )
    body["subsidiary"] = {"id": subsidiary}
    body["currency"] = ctx.refs.currency(currency)
    body["line"] = {"items": lines}
    external_id = ctx.refs.external_id("je", command.idempotency_key)
    internal_id, created = await ctx.upsert_one(
        ctx.target("journal_entry"),
        external_id,
        body,
        lane=Lane.CRITICAL,
        correlation_id=command.correlation_id,
        update_existing=False,
    )
    ids = dict.fromkeys((entry.id for entry in entries), internal_id)
    ids["journal_entry"] = internal_id
    return CommandResult(
        system=ctx.system,
        ids=ids,
        created=created,
        details={"external_id": external_id, "lines": str(len(lines))},
    )


def _dimensions(entry: ExpenseEntry, defaults: FinancialDimensions | None) -> FinancialDimensions:
    return (entry.dimensions or FinancialDimensions()).merged_over(
        defaults or FinancialDimensions()
    )


def _key(ref: dict[str, str]) -> str:
    return ref["id"]


def _one(ctx: Context, values: set[str], what: str) -> str:
    if len(values) != 1:
        raise PermanentError(
            f"netsuite: one journal entry needs one {what}, the batch has {sorted(values)}",
            system=ctx.system,
            code="MIXED_BATCH",
        )
    return next(iter(values))


def _lines(ctx: Context, entry: ExpenseEntry, dims: FinancialDimensions) -> list[dict[str, Any]]:
    try:
        gross: Money = entry.amount + entry.tax if entry.tax is not None else entry.amount
    except ValueError as exc:  # tax in another currency than the amount
        raise PermanentError(
            f"netsuite: expense {entry.id}: {exc}", system=ctx.system, code="MIXED_CURRENCY"
        ) from exc
    if gross.is_zero():
        return []
    options = ctx.options
    expense_account = require(
        options.expense_accounts.get(entry.category) or options.default_expense_account_id,
        f"an expense account for category {entry.category!r}",
        system=ctx.system,
    )
    if entry.reimbursable:
        credit_account = options.reimbursement_account_id
    else:
        credit_account = options.expense_offset_account_id or options.reimbursement_account_id
    credit_account = require(credit_account, "the expense credit account", system=ctx.system)
    amount = abs(gross.amount)
    debit_side, credit_side = ("debit", "credit") if gross.amount > 0 else ("credit", "debit")
    memo = f"{entry.category} {entry.notes}".strip() + f" [{entry.id}]"
    segments = ctx.refs.segments(dims)
    expense_line = ctx.fields.write("expense_line", {debit_side: amount, "memo": memo})
    expense_line |= {"account": {"id": expense_account}, "entity": ctx.refs.job(entry.project_id)}
    offset_line = ctx.fields.write("expense_line", {credit_side: amount, "memo": memo})
    offset_line["account"] = {"id": credit_account}
    if entry.reimbursable:
        offset_line["entity"] = ctx.refs.employee(entry)
    return [expense_line | segments, offset_line | segments]
