"""The change feeds of a Salesforce org: won deals and changed accounts.

Both poll with SOQL on ``SystemModstamp`` (indexed, moved by every user or system
update), ordered by ``SystemModstamp, Id``, paging with ``nextRecordsUrl``:

- The watermark is the highest ``SystemModstamp`` emitted, as ISO 8601 text.
- Each poll re-reads ``overlap_s`` before the watermark, because a transaction's records
  carry its start time but appear only at commit. Re-read records have the same envelope
  id (record id + ``SystemModstamp``) and the journal drops them; they do not count
  against ``limit``, so a busy overlap window can never stop the feed from advancing.
- A page never ends inside a run of equal ``SystemModstamp`` values (it runs on to the
  end of the run), so the next poll's ``>`` filter cannot skip the rest of that run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import Any

from actors.errors import PayloadError
from actors.messages import Account, AccountChanged, DealWon, Envelope

from ..base import FeedPage
from ..governor import Lane
from ..http import new_correlation_id
from .api import SalesforceApi
from .canonical import RecordDecoder
from .hierarchy import chain_of, load_accounts
from .options import SalesforceOptions
from .soql import datetime_literal, select

__all__ = ["ChangedAccountsFeed", "WonDealsFeed", "format_watermark", "parse_watermark"]


def parse_watermark(value: str | None, *, feed: str) -> datetime | None:
    """The watermark's instant; a PayloadError if the stored text is not an aware ISO time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(str(exc), where=f"salesforce feed {feed} watermark {value!r}") from exc
    if moment.utcoffset() is None:
        raise PayloadError("no time zone", where=f"salesforce feed {feed} watermark {value!r}")
    return moment


def format_watermark(moment: datetime) -> str:
    """``2026-01-01T09:30:00.000+00:00``: Salesforce's millisecond precision, kept."""
    return moment.isoformat(timespec="milliseconds")


class _ModstampFeed(ABC):
    """What both feeds share: the window query and the watermark arithmetic."""

    name: str
    workflow: str
    sobject: str
    condition: str = ""

    def __init__(
        self,
        *,
        system: str,
        api: SalesforceApi,
        decoder: RecordDecoder,
        options: SalesforceOptions,
    ) -> None:
        self.system = system
        self.api = api
        self.decoder = decoder
        self.options = options
        self.start = parse_watermark(options.start_watermark, feed=self.name)

    @abstractmethod
    def columns(self) -> str:
        """The SELECT list of the feed's object."""

    def soql(self, since: datetime | None) -> str:
        conditions = [self.condition] if self.condition else []
        if since is not None:
            lower = since - timedelta(seconds=self.options.overlap_s)
            conditions.append(f"SystemModstamp > {datetime_literal(lower)}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"SELECT {self.columns()} FROM {self.sobject}{where} ORDER BY SystemModstamp, Id"

    async def read(
        self, watermark: str | None, limit: int, correlation_id: str
    ) -> tuple[list[tuple[dict[str, Any], datetime]], datetime | None, bool]:
        """Records after the watermark (plus the overlap), the new watermark, and ``more``."""
        since = parse_watermark(watermark, feed=self.name) or self.start
        limit = max(1, limit)
        selected: list[tuple[dict[str, Any], datetime]] = []
        progress = 0
        last: datetime | None = None
        more = False
        records = self.api.records(
            self.soql(since), lane=Lane.ANALYTICS, correlation_id=correlation_id
        )
        async with aclosing(records):
            async for record in records:
                stamp = self._stamp(record)
                if since is not None and stamp <= since:
                    selected.append((record, stamp))  # overlap: emitted again, not counted
                    continue
                if progress >= limit and stamp != last:
                    more = True
                    break
                selected.append((record, stamp))
                progress += 1
                last = stamp
        high = max((moment for moment in (since, last) if moment is not None), default=None)
        return selected, high, more

    def _stamp(self, record: dict[str, Any]) -> datetime:
        raw = record.get("SystemModstamp")
        where = f"salesforce {self.sobject} {record.get('Id', '?')} (SystemModstamp)"
        if not isinstance(raw, str):
            raise PayloadError(f"expected a timestamp, got {raw!r}", where=where)
        try:
            stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PayloadError(str(exc), where=where) from exc
        if stamp.utcoffset() is None:
            raise PayloadError(f"timestamp {raw!r} has no time zone", where=where)
        return stamp


class WonDealsFeed(_ModstampFeed):
    """Opportunities that are won (``IsWon``, whatever the stage is called) → ``DealWon``.

    Each deal comes with its lines (a parent-child subquery), its account with billing
    address and billing contact, and the account's parent chain, read in one batched query
    per hierarchy level. The envelope key is the top of that chain (``account:<id>``), so
    deals of one customer group are handled one after another and never race to create
    the same customer; a deal whose account cannot be read is keyed by itself.
    A deal is emitted as Salesforce holds it — a missing legal entity or an odd currency
    is the workflow's to judge — unless a field does not decode (a PayloadError naming it).

    The envelope version is the deal's ``SystemModstamp``, so any later change to a won
    deal is reported again as a new DealWon — including pssync's own write-backs of status,
    ids and billing progress, which Salesforce cannot tell apart from a user's edit. The
    write-backs skip unchanged values, and ``external_refs`` carry the ids already written,
    so a workflow can see a deal it has provisioned; it must treat DealWon as "this won
    deal as it is now", not as "won just now".
    """

    name = "won_deals"
    workflow = "deal_to_project"
    sobject = "Opportunity"
    condition = "IsWon = true"

    def columns(self) -> str:
        lines = f"SELECT {select(self.decoder.line_fields())} FROM OpportunityLineItems"
        return select(
            self.decoder.opportunity_fields(), subqueries=[lines + " ORDER BY SortOrder, Id"]
        )

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        """Up to ``limit`` newly won or changed won deals after ``watermark``."""
        correlation_id = new_correlation_id()
        selected, high, more = await self.read(watermark, limit, correlation_id)
        account_ids = {str(r["AccountId"]) for r, _ in selected if r.get("AccountId")}
        accounts = await load_accounts(
            self.api,
            self.decoder.account_fields(),
            account_ids,
            max_depth=self.options.max_hierarchy_depth,
            correlation_id=correlation_id,
        )
        envelopes = []
        for record, stamp in selected:
            lines = await self.api.children(
                record.get("OpportunityLineItems"),
                lane=Lane.ANALYTICS,
                correlation_id=correlation_id,
                where=f"Opportunity {record.get('Id')} (OpportunityLineItems)",
            )
            envelopes.append(self._envelope(record, stamp, lines, accounts))
        return _page(envelopes, high, more)

    def _envelope(
        self,
        record: dict[str, Any],
        stamp: datetime,
        lines: Sequence[dict[str, Any]],
        accounts: dict[str, dict[str, Any]],
    ) -> Envelope:
        opportunity = self.decoder.to_opportunity(record, lines)
        account = None
        parents: tuple[Account, ...] = ()
        key = f"opportunity:{opportunity.id}"
        if opportunity.account_id in accounts:
            account = self.decoder.to_account(accounts[opportunity.account_id])
            chain = chain_of(
                opportunity.account_id, accounts, max_depth=self.options.max_hierarchy_depth
            )
            key = f"account:{chain.root}"
            parents = tuple(
                self.decoder.to_account(accounts[parent_id])
                for parent_id in chain.ids[1:]
                if parent_id in accounts
            )
        contacts = (account.billing_contact,) if account and account.billing_contact else ()
        event = DealWon(
            opportunity=opportunity,
            account=account,
            contacts=contacts,
            account_hierarchy=parents,
        )
        return Envelope.new(
            event,
            source=self.system,
            object_id=opportunity.id,
            version=format_watermark(stamp),
            occurred_at=stamp,
            key=key,
        )


class ChangedAccountsFeed(_ModstampFeed):
    """Accounts created or changed → ``AccountChanged`` with the account as it is now.

    Salesforce sends no diffs, so ``changes`` is empty: the event is a snapshot and the
    customer_master workflow diffs it against the last snapshot it knows. A change to the
    billing Contact record alone does not move the Account's ``SystemModstamp`` and is
    not seen here.
    """

    name = "changed_accounts"
    workflow = "customer_master"
    sobject = "Account"

    def columns(self) -> str:
        return select(self.decoder.account_fields())

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        """Up to ``limit`` changed accounts after ``watermark``."""
        selected, high, more = await self.read(watermark, limit, new_correlation_id())
        envelopes = [
            Envelope.new(
                AccountChanged(account=self.decoder.to_account(record)),
                source=self.system,
                object_id=str(record["Id"]),
                version=format_watermark(stamp),
                occurred_at=stamp,
            )
            for record, stamp in selected
        ]
        return _page(envelopes, high, more)


def _page(envelopes: list[Envelope], high: datetime | None, more: bool) -> FeedPage:
    watermark = format_watermark(high) if high is not None else None
    return FeedPage(envelopes=tuple(envelopes), watermark=watermark, more=more)
