"""The poller: one per change feed, feeding the journal page by page.

The loop, on trio's clock:

1. Paused system → wait for resume. Workflow backlog above its high-water mark → check
   again every ``backpressure_check_s``: a month-end spike waits in the vendor and in
   SQLite, never in memory.
2. ``feed.poll(watermark, limit=…)`` → append the page's envelopes to the journal in one
   batch → store the page's watermark. In that order: a crash between the two re-reads the
   page on restart and the journal drops the repeats by envelope id (deterministic ids),
   whereas the other order could lose the page.
3. ``page.more`` → poll again at once; else sleep ``poll_interval_s``.

Failures of a poll never end the poller:

- ``RetryableError`` (throttles, 5xx, timeouts, also ``poll_timeout_s`` passing): back off
  exponentially from ``retry_initial_s`` to ``retry_max_s`` (at least the vendor's
  Retry-After) and poll the same watermark again.
- ``PermanentError`` or an unexpected adapter error: logged with the feed's name, counted,
  and retried on the same backoff (a permission fixed at the vendor heals it).
- ``PayloadError`` (a record the adapter cannot decode): the page is halved until the bad
  record is isolated — the records before it are journaled and the watermark moves up to
  it, never past it. Confirmed at a page of one (``poison_strikes`` failures in a row, so
  a one-off malformed response is not mistaken for a bad record), it goes to the exception
  queue once (category ``mapping``, naming the system, feed, watermark and the error, which
  names the record and field) and the feed waits there, retrying every
  ``poison_retry_s``. A fixed mapping (reload) or a fixed record (a new version moves it
  in the feed) lets it pass. Skipping it automatically would need the adapter to report
  the record's position, which :class:`~adapters.base.FeedPage` does not carry.

Journal errors are not caught: the poller fails and its supervisor restarts it from the
stored watermark.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog
import trio

from actors.actor import Actor
from actors.errors import PayloadError, PermanentError, RetryableError, ThrottledError
from actors.interval import Interval
from adapters.base import ChangeFeed, FeedPage
from store import Journal

from .control import FeedState, FeedStats, SystemControl
from .records import event_record

log = structlog.get_logger(__name__)

Backlog = Callable[[str], Awaitable[int]]
"""``await backlog(workflow)``: events journaled for ``workflow`` and not yet handled."""

_detail = msgspec.json.Encoder()


class PollSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one system's pollers poll (``systems.<name>`` supplies ``poll_interval_s``)."""

    poll_interval_s: float = 60.0
    """Sleep between polls once a feed is caught up."""
    batch: int = 200
    """Records asked for per page (the ``limit`` of ``feed.poll``)."""
    backpressure_check_s: float = 5.0
    """How often a poller held back by a workflow's backlog checks it again."""
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    poll_timeout_s: float = 300.0
    """One poll, governor waits and client retries included; past it, a retryable error."""
    poison_strikes: int = 3
    poison_retry_s: float = 300.0

    def __post_init__(self) -> None:
        positive = (
            self.poll_interval_s,
            self.backpressure_check_s,
            self.retry_initial_s,
            self.poll_timeout_s,
            self.poison_retry_s,
        )
        if min(positive) <= 0 or self.batch < 1 or self.poison_strikes < 1:
            raise ValueError("poll times must be > 0, batch and poison_strikes >= 1")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")


class Poller(Actor[None]):
    """Reads one change feed into the journal; see the module docstring for the loop."""

    def __init__(
        self,
        feed: ChangeFeed,
        *,
        system: str,
        journal: Journal,
        backlog: Backlog,
        control: SystemControl,
        high_water_mark: int,
        settings: PollSettings | None = None,
        exception_owner: str = "mapping",
        wall_clock: Callable[[], float] = time.time,
        name: str | None = None,
        **actor_options: float,
    ) -> None:
        self.settings = settings or PollSettings()
        # A poll may legitimately take up to poll_timeout_s (governor waits, retries), so
        # the heartbeat deadline must be longer, or a slow vendor would look wedged.
        actor_options.setdefault("heartbeat_timeout_s", self.settings.poll_timeout_s + 30.0)
        # Nobody sends to a poller: its mailbox is a rendezvous that stays empty.
        super().__init__(name or f"poll:{feed.name}", mailbox_size=0, **actor_options)
        self.feed = feed
        self.system = system
        self.journal = journal
        self.backlog = backlog
        self.control = control
        self.high_water_mark = high_water_mark
        self.exception_owner = exception_owner
        self._wall_clock = wall_clock
        self._stopping = False
        self._wait_scope: trio.CancelScope | None = None
        self._limit = self.settings.batch
        self._interval = control.poll_interval or Interval(self.settings.poll_interval_s)
        self._failures = 0
        self._strikes = 0
        self._stats: FeedStats = control.feed(feed.name, feed.workflow)

    def request_stop(self) -> None:
        """Finish the page in hand (append and watermark), then return."""
        self._stopping = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        stats = self._stats
        watermark = await self.journal.get_watermark(self.system, self.feed.name)
        stats.watermark = watermark
        task_status.started()
        try:
            while not self._stopping:
                self.heartbeat()
                if self.control.paused:
                    stats.state = FeedState.PAUSED
                    await self._wait(math.inf, until=self.control.wait_resumed)
                    continue
                backlog = await self.backlog(self.feed.workflow)
                if backlog > self.high_water_mark:
                    if stats.state is not FeedState.BACKPRESSURE:
                        log.info(
                            "poller.backpressure",
                            system=self.system,
                            feed=self.feed.name,
                            workflow=self.feed.workflow,
                            backlog=backlog,
                            high_water_mark=self.high_water_mark,
                        )
                    stats.state = FeedState.BACKPRESSURE
                    stats.backpressure_waits += 1
                    await self._wait(self.settings.backpressure_check_s)
                    continue
                stats.state = FeedState.POLLING
                page = await self._poll(watermark)
                if page is None:
                    continue  # _poll has waited as its failure required
                watermark = await self._store(page, watermark)
                if not page.more:
                    stats.state = FeedState.IDLE
                    await self._wait(self._interval)
        finally:
            stats.state = FeedState.STOPPED

    # -- one poll ----------------------------------------------------------------------

    async def _poll(self, watermark: str | None) -> FeedPage | None:
        """One page, or None after handling (and waiting out) a failure."""
        stats = self._stats
        stats.polls += 1
        try:
            try:
                with trio.fail_after(self.settings.poll_timeout_s):
                    page = await self.feed.poll(watermark, limit=self._limit)
            except trio.TooSlowError as exc:
                raise RetryableError(
                    f"poll of {self.feed.name!r} took over {self.settings.poll_timeout_s:g} s",
                    system=self.system,
                    code="TIMEOUT",
                ) from exc
        except PayloadError as exc:
            await self._undecodable(watermark, exc)
            return None
        except RetryableError as exc:
            stats.retryable_errors += 1
            retry_after = exc.retry_after_s if isinstance(exc, ThrottledError) else None
            await self._back_off(exc, "poller.retry", "warning", at_least_s=retry_after)
            return None
        except PermanentError as exc:
            stats.permanent_errors += 1
            await self._back_off(exc, "poller.failed", "error")
            return None
        except Exception as exc:  # an adapter bug must not stop the feed for good
            stats.permanent_errors += 1
            await self._back_off(exc, "poller.error", "error")
            return None
        self._failures = 0
        if self._strikes:
            log.info("poller.unblocked", system=self.system, feed=self.feed.name)
        self._strikes = 0
        # Grow back after a poison hunt halved the page.
        self._limit = min(self.settings.batch, self._limit * 2)
        stats.last_error = None
        stats.last_poll_at = trio.current_time()
        return page

    async def _store(self, page: FeedPage, watermark: str | None) -> str | None:
        stats = self._stats
        if page.envelopes:
            result = await self.journal.append([event_record(env) for env in page.envelopes])
            stats.events_appended += result.new_count
            stats.duplicates += len(page.envelopes) - result.new_count
        # After the append, never before: a crash in between re-reads this page, and the
        # journal deduplicates it by envelope id. Storing first could lose the page.
        if page.watermark is not None and page.watermark != watermark:
            await self.journal.set_watermark(
                self.system, self.feed.name, page.watermark, self._wall_clock()
            )
            watermark = page.watermark
        stats.pages += 1
        stats.watermark = watermark
        return watermark

    # -- failures ----------------------------------------------------------------------

    async def _back_off(
        self, error: Exception, event: str, level: str, *, at_least_s: float | None = None
    ) -> None:
        self._failures += 1
        delay = min(
            self.settings.retry_max_s,
            self.settings.retry_initial_s * 2 ** (self._failures - 1),
        )
        if at_least_s is not None:
            delay = max(delay, at_least_s)
        self._stats.last_error = f"{type(error).__name__}: {error}"
        self._stats.state = FeedState.BACKOFF
        getattr(log, level)(
            event,
            system=self.system,
            feed=self.feed.name,
            error=self._stats.last_error,
            failures=self._failures,
            delay_s=delay,
        )
        await self._wait(delay)

    async def _undecodable(self, watermark: str | None, error: PayloadError) -> None:
        stats = self._stats
        stats.last_error = f"PayloadError: {error}"
        if self._limit > 1:
            # Somewhere in this page: halve it and poll again at once; the records
            # before the bad one still get through, one smaller page at a time.
            self._limit = max(1, self._limit // 2)
            log.warning(
                "poller.undecodable_page",
                system=self.system,
                feed=self.feed.name,
                error=str(error),
                limit=self._limit,
            )
            return
        self._strikes += 1
        if self._strikes < self.settings.poison_strikes:
            # Could be one malformed response rather than a bad record: try again.
            await self._back_off(error, "poller.undecodable_record", "warning")
            return
        if self._strikes == self.settings.poison_strikes:
            stats.poison_records += 1
            await self._file_exception(watermark, error)
        stats.state = FeedState.POISONED
        await self._wait(self.settings.poison_retry_s)

    async def _file_exception(self, watermark: str | None, error: PayloadError) -> None:
        message = (
            f"{self.system}/{self.feed.name}: the next record after watermark {watermark!r} "
            f"does not decode, so the feed waits there until the mapping or the record is "
            f"fixed: {error}"
        )
        log.error(
            "poller.poison",
            system=self.system,
            feed=self.feed.name,
            watermark=watermark,
            where=error.where,
            error=str(error),
        )
        # One exception per stuck record, also across restarts of the poller.
        already = await self.journal.list_exceptions(
            status="open", workflow=self.feed.workflow, category="mapping"
        )
        if any(item.message == message for item in already):
            return
        await self.journal.open_exception(
            workflow=self.feed.workflow,
            category="mapping",
            owner=self.exception_owner,
            message=message,
            correlation_id=f"{self.system}:{self.feed.name}:{watermark or ''}",
            now=self._wall_clock(),
            detail=_detail.encode(
                {
                    "system": self.system,
                    "feed": self.feed.name,
                    "watermark": watermark,
                    "where": error.where,
                    "error": error.message,
                }
            ),
        )

    # -- waiting -----------------------------------------------------------------------

    async def _wait(
        self,
        seconds: float | Interval,
        *,
        until: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Sleep ``seconds`` (or until ``until()`` returns), heartbeating; a stop ends it.

        An :class:`Interval` is re-read at each heartbeat, so a reload that changes it
        shortens or extends a sleep already begun.
        """
        start = trio.current_time()
        with trio.CancelScope() as scope:
            self._wait_scope = scope
            try:
                while not self._stopping:
                    self.heartbeat()
                    now = trio.current_time()
                    if isinstance(seconds, Interval):
                        remaining = seconds.due_in(start, now)
                    else:
                        remaining = start + seconds - now
                    if remaining <= 0:
                        return
                    with trio.move_on_after(min(remaining, self.heartbeat_interval_s)):
                        if until is None:
                            await trio.sleep_forever()
                        else:
                            await until()
                            return
            finally:
                self._wait_scope = None
