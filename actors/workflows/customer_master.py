"""customer_master: account changes propagated by field ownership.

Trigger: ``AccountChanged`` (key ``account:<id>``). Salesforce sends snapshots, not diffs
(``changes`` is empty), so the workflow diffs the snapshot against the last one pssync
saw for the account. That baseline is not kept in a side table: every run records a
``snapshot`` step (the account as the source reported it, and the values pssync has
agreed to propagate), and the next run of the same key reads it from the newest earlier
run that recorded one. Runs of one key execute in order, so that run is finished.

``deps.field_owners`` maps a canonical field to the system that owns it (config
``[governance.customer_master]``); the names are the Account's attributes plus
``parent_account`` (parent_id), ``payment_terms`` (payment_terms_days) and
``invoice_email`` (the billing contact's email). Fields not configured are not mastered:
a change to one sends nothing and raises nothing, and no propagation writes one to a
holder's existing customer.

Steps:

1. ``baseline`` — the previous snapshot. A run whose event is older than another run's
   of the same account (a later change already queued, or a replay of old history) is
   *superseded*: it does nothing, and the newer run diffs across both changes, so a
   replay never rolls a system back to an old value.
2. ``holders`` — the systems that hold the customer: the id map (``account`` /
   ``customer``) and the refs of the account's ProjectActivated events.
3. For each changed field: owned by the reporting system → propagated; owned by another
   system → a conflict, not propagated. ``propagate:<system>`` writes the propagated
   fields, and only those, to every holder other than the source: ``UpsertCustomer``
   restricted to them (``fields``) to ERP, PSA and billing, ``UpdateAccountFields`` to
   the CRM. Every other field of the holder's customer is left alone, so a field owned
   by the holder and changed there directly (the ERP's tax id edited in NetSuite, which
   has no change feed; billing's invoice email edited in Stripe) is never overwritten
   with the value pssync last agreed. The command still carries the whole *agreed*
   account (the source's account with every field it does not own held at the
   previously agreed value), which the adapter uses only to create a customer the
   holder no longer has.
4. ``snapshot`` — recorded, conflicts included, so a conflict is raised once.
5. Conflicts → ``ctx.fail("master_data", …)``: one exception per event naming every
   conflicting field, its old and new value and its owner. The run parks, which holds
   later changes of that account until a person resolves it (master data is applied in
   order). Resolving records nothing: the conflicting value stays out of the agreed
   account, so no later propagation carries it either.

First sighting (no baseline): every configured field the source owns is propagated (the
source is authoritative for it, and a change made between provisioning and the first
snapshot would otherwise be lost), restricted to those fields like any propagation;
nothing is flagged, as there is nothing to diff with.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

from actors.messages import (
    Account,
    AccountChanged,
    Envelope,
    FieldChange,
    ProjectActivated,
    UpdateAccountFields,
    UpsertCustomer,
    decode_envelope,
    event_tag,
)
from actors.messages.commands import CUSTOMER_FIELD_ALIASES, CUSTOMER_FIELDS, INVOICE_EMAIL
from adapters.base import CommandResult

from .context import RunContext
from .spec import WorkflowSpec

__all__ = ["FIELDS", "SPEC", "Baseline", "Snapshot", "customer_master"]

log = structlog.get_logger(__name__)

CUSTOMER_KINDS = ("account", "customer")
"""Id-map kinds deal_to_project may map a customer under."""

_ALIASES = CUSTOMER_FIELD_ALIASES
FIELDS: frozenset[str] = CUSTOMER_FIELDS
"""Field names ``[governance.customer_master]`` may give an owner (``UpsertCustomer``'s)."""

_RUNS = 100_000  # list_runs needs a limit; one account never changes this often
_PAGE = 1_000


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What one run saw (``seen``) and the values pssync propagates (``agreed``)."""

    seen: Account
    agreed: Account
    source: str


class Baseline(msgspec.Struct, frozen=True, kw_only=True):
    """What earlier runs knew of the account, or that this run is superseded.

    ``seen``: the source's previous snapshot (diffs are per source: two systems' views
    of one account differ in fields neither masters). ``agreed``: the newest agreed
    account, whichever source it came from.
    """

    superseded: bool = False
    seen: Account | None = None
    agreed: Account | None = None


async def customer_master(ctx: RunContext) -> None:
    """Propagate one account snapshot by field ownership (module docstring)."""
    envelope = ctx.events[-1]
    event = envelope.body
    assert isinstance(event, AccountChanged)
    account, source = event.account, envelope.source
    owners: dict[str, str] = dict(ctx.deps.field_owners)
    unknown = sorted(set(owners) - FIELDS)
    if unknown:
        ctx.fail(
            "mapping",
            f"[governance.customer_master] names {', '.join(unknown)}, which are not customer"
            f" fields (known: {', '.join(sorted(FIELDS))}): correct the configuration, reload,"
            " then retry",
        )
    baseline = await ctx.step("baseline", lambda: _baseline(ctx), result_type=Baseline)
    if baseline.superseded:
        log.info("account snapshot superseded by a later one", account=account.id)
        return
    seen = baseline.seen
    if seen is None:
        changed = sorted(
            name
            for name, owner in owners.items()
            if owner == source
            and (not event.changes or {name, _ALIASES.get(name, name)} & event.changed_fields())
        )
    else:
        changed = sorted(
            name for name in owners if field_value(seen, name) != field_value(account, name)
        )
    agreed_before = baseline.agreed or account
    owned = [name for name in changed if owners[name] == source]
    conflicts = [name for name in changed if owners[name] != source]
    # The source's account, with every field it does not own held at the agreed value.
    agreed = account
    for name, owner in owners.items():
        if owner != source:
            agreed = with_field(agreed, name, field_value(agreed_before, name))
    propagated = [
        FieldChange.of(
            _ALIASES.get(name, name), field_value(agreed_before, name), field_value(agreed, name)
        )
        for name in owned
    ]
    if propagated:
        holders = await ctx.step(
            "holders", lambda: _holders(ctx, account.id), result_type=dict[str, str]
        )
        for system in sorted(holders):
            if system != source:
                await _propagate(ctx, system, agreed, propagated)
    snapshot = Snapshot(seen=account, agreed=agreed, source=source)
    await ctx.step("snapshot", lambda: _identity(snapshot), result_type=Snapshot)
    if conflicts:
        assert seen is not None
        described = "; ".join(
            f"{name} changed in {source} from {_show(field_value(seen, name))} to"
            f" {_show(field_value(account, name))} but is owned by {owners[name]}"
            for name in conflicts
        )
        ctx.fail(
            "master_data",
            f"account {account.id} ({account.name}): {described}; not overwritten — the other"
            " systems keep the owner's value. Make the change in the owning system (or undo it"
            f" in {source}), then resolve this exception",
            detail={
                "account_id": account.id,
                "source": source,
                "conflicts": [
                    {
                        "field": name,
                        "owner": owners[name],
                        "old": FieldChange.of(name, field_value(seen, name), None).old,
                        "new": FieldChange.of(name, None, field_value(account, name)).new,
                    }
                    for name in conflicts
                ],
            },
        )


def field_value(account: Account, name: str) -> Any:
    """The value of canonical customer field ``name`` on ``account``."""
    if name == INVOICE_EMAIL:
        return account.billing_contact.email if account.billing_contact else None
    return getattr(account, _ALIASES.get(name, name))


def with_field(account: Account, name: str, value: Any) -> Account:
    """``account`` with field ``name`` set to ``value``."""
    if name == INVOICE_EMAIL:
        if account.billing_contact is None:
            return account  # no contact to carry it; the CRM keeps it on its own record
        contact = msgspec.structs.replace(account.billing_contact, email=value or "")
        return msgspec.structs.replace(account, billing_contact=contact)
    return msgspec.structs.replace(account, **{_ALIASES.get(name, name): value})


async def _baseline(ctx: RunContext) -> Baseline:
    mine = max(ctx.run.trigger_seqs)
    others = [
        run
        for run in await ctx.journal.list_runs(workflow=ctx.workflow, key=ctx.key, limit=_RUNS)
        if run.id != ctx.run.id
    ]
    if any(min(run.trigger_seqs) > mine for run in others):
        return Baseline(superseded=True)
    earlier = sorted(
        (run for run in others if max(run.trigger_seqs) < mine),
        key=lambda run: (max(run.trigger_seqs), run.id),
        reverse=True,
    )
    source = ctx.events[-1].source
    agreed: Account | None = None
    for run in earlier:
        record = (await ctx.journal.get_steps(run.id)).get("snapshot")
        if record is None or record.status != "completed":
            continue
        snapshot = msgspec.msgpack.decode(record.result, type=Snapshot)
        agreed = agreed or snapshot.agreed
        if snapshot.source == source:
            return Baseline(seen=snapshot.seen, agreed=agreed)
    return Baseline(agreed=agreed)


async def _holders(ctx: RunContext, account_id: str) -> dict[str, str]:
    """System → the customer's id there, from the id map and project activations."""
    found: dict[str, str] = {}
    for kind in CUSTOMER_KINDS:
        for system, system_id in (await ctx.journal.ids_of(kind, account_id)).items():
            found.setdefault(system, system_id)
    after, tag = 0, event_tag(ProjectActivated)
    while True:
        page = await ctx.journal.read_events(after, _PAGE, [tag])
        for record in page:
            body = decode_envelope(record.body, origin=f"journal seq {record.seq}").body
            if isinstance(body, ProjectActivated) and body.project.account_id == account_id:
                for ref in body.refs:
                    if ref.object_type in ("customer", "client"):
                        found.setdefault(ref.system, ref.id)
        if len(page) < _PAGE:
            return found
        after = page[-1].seq or after


async def _propagate(
    ctx: RunContext, system: str, agreed: Account, changes: list[FieldChange]
) -> None:
    step = f"propagate:{system}"
    crm = ctx.deps.roles.get("crm", ())

    async def send() -> CommandResult:
        key, correlation = ctx.idempotency_key(step), ctx.correlation_id
        if system in crm:
            command: UpsertCustomer | UpdateAccountFields = UpdateAccountFields(
                idempotency_key=key,
                correlation_id=correlation,
                account_id=agreed.id,
                changes=tuple(changes),
            )
        else:
            # Only the propagated fields are written to the holder's existing customer:
            # the rest of the agreed account is there for a holder that lost the customer
            # (created whole), never to overwrite what the holder's owners changed there.
            command = UpsertCustomer(
                idempotency_key=key,
                correlation_id=correlation,
                account=agreed,
                fields=tuple(change.field for change in changes),
            )
        return await ctx.deps.execute(system, command)

    await ctx.step(step, send, result_type=CommandResult)


async def _identity(snapshot: Snapshot) -> Snapshot:
    return snapshot


def _show(value: Any) -> str:
    rendered = FieldChange.of("value", None, value).new
    return "(empty)" if rendered in (None, "") else repr(rendered)


def _no_amount(events: tuple[Envelope, ...]) -> None:
    return None


SPEC = WorkflowSpec(
    name="customer_master",
    triggers=(AccountChanged,),
    run=customer_master,
    category="master_data",
    amount_at_risk=_no_amount,
)
"""customer_master's declaration (registered by ``actors.workflows.catalog``)."""
