"""Change feeds: approved time, approved expenses, completed milestones.

Each feed is a Kantata list query ordered ``order=updated_at:asc`` and walked in
*sweeps*; the watermark is a small JSON :class:`Cursor`. A sweep has two phases:

1. **recheck** — the ``overlap_s`` before the newest change seen so far
   (``updated_after=newest-overlap&updated_before=newest+1s``), for records that became
   visible late with an earlier ``updated_at``. Only records without our external
   reference are asked for (``without_external_reference_service_name``), so once a
   month-end spike is exported its tens of thousands of entries are not read again on
   every poll, as they would be if the overlap were re-read in full.
2. **forward** — everything after that newest change (``updated_after=newest``), to the
   end. Then the poll answers ``more=False``; the next poll starts a new sweep.

Within a phase the query is fixed and pages go by ``limit``/``offset``. The result set
can shift under a reader (a record that changes moves to the end; an exported record
leaves a recheck), so each page re-reads a few records before its offset and looks for
the last records already read: found, reading resumes right after the latest of them;
not found (more records left than were re-read), the phase starts over at its first
record. Records are emitted at least once; envelope ids
(object id + ``updated_at``) make the journal keep one of each.

Entries carrying our external reference were marked exported after the ERP took them,
and are skipped: what they feed already happened, and were one read anyway (a reference
written after the page was read), the ERP posting is keyed by entry and idempotent. The
forward phase skips them client-side (side-loaded references) rather than with the
filter, so that entries the exporter marks during a long forward read do not vanish from
under it and force it to start over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from actors.errors import PayloadError
from actors.messages import (
    Envelope,
    Event,
    ExpenseApproved,
    ExpenseEntry,
    Milestone,
    MilestoneCompleted,
    TimeApproved,
    TimeEntry,
)

from ..base import FeedPage
from ..governor import Lane
from ..mapping import EntityMapping, LiveMappings
from .api import Call, KantataApi
from .options import KantataOptions
from .wire import Page, Stamped, references_of, typed

__all__ = ["Cursor", "KantataFeed", "build_feeds"]

_REREAD = 10
"""Records re-read before each page's offset to find where the last page ended."""
_REMEMBER = 3
"""Ids of a page's last records the cursor keeps, to find that place again."""


class Cursor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A feed's watermark: where the current sweep stands."""

    anchor: str | None = None
    """``updated_after`` of the current phase (None: from the beginning)."""
    until: str | None = None
    """Set in the recheck phase: its last second (``newest`` when the sweep began)."""
    offset: int = 0
    read: tuple[str, ...] = ()
    """Ids of the last few records read in this phase, the last one last."""
    newest: str | None = None
    """The newest ``updated_at`` seen so far, in any sweep."""


_cursor_encoder = msgspec.json.Encoder()
_cursor_decoder = msgspec.json.Decoder(Cursor)


def decode_cursor(watermark: str | None, start: str | None) -> Cursor:
    """The cursor in ``watermark``; a bare ISO time (set by an operator) is an anchor."""
    if watermark is None:
        return Cursor(anchor=start)
    if not watermark.startswith("{"):
        return Cursor(anchor=watermark, newest=watermark)
    try:
        return _cursor_decoder.decode(watermark)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(str(exc), where="kantata feed watermark") from exc


def _earlier(stamp: str, seconds: float) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - timedelta(seconds=seconds)).isoformat()


def _later(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    parse = datetime.fromisoformat
    return a if parse(a.replace("Z", "+00:00")) >= parse(b.replace("Z", "+00:00")) else b


Convert = Callable[[dict[str, Any], Page], Event | None]


class KantataFeed:
    """One change feed over one Kantata resource (a :class:`~adapters.base.ChangeFeed`)."""

    def __init__(
        self,
        *,
        name: str,
        workflow: str,
        plural: str,
        subject: str,
        params: dict[str, str],
        version: Callable[[Stamped], str] | None = None,
        convert: Convert,
        api: KantataApi,
        system: str,
        options: KantataOptions,
    ) -> None:
        self.name = name
        self.workflow = workflow
        self._plural = plural
        self._subject = subject
        self._params = params
        self._convert = convert
        self._version = version or (lambda stamped: stamped.updated_at)
        self._api = api
        self._system = system
        self._options = options

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        """Read the next page of the current sweep (see the module docstring)."""
        cursor = decode_cursor(watermark, self._options.start_watermark)
        size = max(1, min(limit, self._options.per_page))
        reread = min(_REREAD, size // 2) if cursor.read else 0
        offset = max(0, cursor.offset - reread)
        page = await self._fetch(cursor, offset, size)
        start = 0
        if cursor.read and reread:
            ids = [str(record.get("id")) for record in page.records]
            # The latest of them still in place (the very last may itself have moved).
            known = next((i for i in reversed(cursor.read) if i in ids), None)
            if known is not None:
                start = ids.index(known) + 1
            elif offset > 0:
                # Our place is lost: read the phase again (the journal drops repeats).
                offset = 0
                page = await self._fetch(cursor, offset, size)
        envelopes = []
        newest = cursor.newest
        for record in page.records[start:]:
            stamped = typed(record, Stamped, plural=self._plural)
            occurred = self._moment(stamped)
            newest = _later(newest, stamped.updated_at)
            envelope = self._envelope(record, stamped, occurred, page)
            if envelope is not None:
                envelopes.append(envelope)
        found = tuple(envelopes)
        reached = offset + len(page.records)
        if page.records and reached < page.count and len(page.records) == size:
            read = tuple(str(record.get("id")) for record in page.records[-_REMEMBER:])
            after = msgspec.structs.replace(cursor, offset=reached, read=read, newest=newest)
            return FeedPage(envelopes=found, watermark=self._encode(after), more=True)
        if cursor.until is not None:
            # Recheck done; the forward phase starts after the newest change it knew of.
            after = Cursor(anchor=cursor.until, newest=_later(newest, cursor.until))
            return FeedPage(envelopes=found, watermark=self._encode(after), more=True)
        if newest is None:  # nothing read yet, ever
            return FeedPage(envelopes=found, watermark=self._encode(cursor), more=False)
        overlap_from = _earlier(newest, self._options.overlap_s)
        if self._options.start_watermark is not None:  # never before the configured start
            overlap_from = _later(overlap_from, self._options.start_watermark)
        after = Cursor(anchor=overlap_from, until=newest, newest=newest)
        return FeedPage(envelopes=found, watermark=self._encode(after), more=False)

    async def _fetch(self, cursor: Cursor, offset: int, size: int) -> Page:
        params: dict[str, Any] = {
            **self._params,
            "order": "updated_at:asc",
            "include": "external_references",
            "limit": size,
            "offset": offset,
        }
        if cursor.anchor is not None:
            params["updated_after"] = cursor.anchor
        if cursor.until is not None:
            params["updated_before"] = _earlier(cursor.until, -1.0)
            params["without_external_reference_service_name"] = self._api.service_name
        return await self._api.get(self._plural, Call(Lane.ANALYTICS), params)

    def _moment(self, stamped: Stamped) -> datetime:
        where = f"kantata {self._plural} {stamped.id}"
        try:
            moment = datetime.fromisoformat(stamped.updated_at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PayloadError(f"updated_at: {exc}", where=where) from exc
        if moment.utcoffset() is None:
            raise PayloadError("updated_at has no time zone", where=where)
        return moment

    def _envelope(
        self, record: dict[str, Any], stamped: Stamped, occurred: datetime, page: Page
    ) -> Envelope | None:
        if references_of(record, page, service_name=self._api.service_name):
            return None  # already exported (see the module docstring)
        event = self._convert(record, page)
        if event is None:
            return None
        return Envelope.new(
            event,
            source=self._system,
            object_id=f"{self._subject}:{stamped.id}",
            version=self._version(stamped),
            occurred_at=occurred,
            key=f"project:{stamped.workspace_id}" if stamped.workspace_id else None,
        )

    @staticmethod
    def _encode(cursor: Cursor) -> str:
        return _cursor_encoder.encode(cursor).decode()


def _canonical(mapping: EntityMapping, record: dict[str, Any], kind: type[Any]) -> Any:
    record_id = str(record.get("id", ""))
    values = mapping.to_canonical(record, record_id=record_id)
    try:
        return msgspec.convert(values, kind)
    except msgspec.ValidationError as exc:
        raise PayloadError(
            str(exc), where=f"kantata {mapping.object} {record_id} (mapping v{mapping.version})"
        ) from exc


def build_feeds(
    *, api: KantataApi, mappings: LiveMappings, system: str, options: KantataOptions
) -> tuple[KantataFeed, ...]:
    """The three feeds of a Kantata PSA."""
    # Entities are looked up per record: a reload swaps the mapping under running feeds.

    def time_approved(record: dict[str, Any], page: Page) -> Event | None:
        # The approved filter also returns entries of projects that need no approval.
        entry = _canonical(mappings.entity("time_entry"), {**record, "approved": True}, TimeEntry)
        return TimeApproved(entry=entry)

    def expense_approved(record: dict[str, Any], page: Page) -> Event | None:
        entry = _canonical(mappings.entity("expense"), {**record, "approved": True}, ExpenseEntry)
        return ExpenseApproved(entry=entry)

    def milestone_completed(record: dict[str, Any], page: Page) -> Event | None:
        # The state filter is applied here: Kantata documents none for stories.
        if record.get("story_type") != "milestone" or record.get("state") != "completed":
            return None
        return MilestoneCompleted(
            milestone=_canonical(mappings.entity("milestone"), record, Milestone)
        )

    common = {"api": api, "system": system, "options": options}
    return (
        KantataFeed(
            name="approved_time",
            workflow="time_expense_to_erp",
            plural="time_entries",
            subject="time_entry",
            params={"approved": "true"},
            convert=time_approved,
            **common,
        ),
        KantataFeed(
            name="approved_expenses",
            workflow="time_expense_to_erp",
            plural="expenses",
            subject="expense",
            params={"approved": "true"},
            convert=expense_approved,
            **common,
        ),
        KantataFeed(
            name="completed_milestones",
            workflow="milestone_to_invoice",
            plural="stories",
            subject="story",
            params={"story_type": "milestone"},
            convert=milestone_completed,
            # One completion per milestone, however often the story is edited after it:
            # a second MilestoneCompleted would invoice the milestone twice.
            version=lambda stamped: "completed",
            **common,
        ),
    )
