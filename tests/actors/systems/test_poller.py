"""The poller against a real journal: pages, watermarks, backpressure, errors, poison."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio

from actors.errors import PayloadError, PermanentError, RetryableError, ThrottledError
from actors.messages import decode_envelope
from actors.systems import FeedState, Poller, PollSettings, SystemControl
from store import Journal

from .fakes import FakeFeed, envelope

SETTINGS = PollSettings(
    poll_interval_s=60,
    batch=2,
    backpressure_check_s=5,
    retry_initial_s=1,
    retry_max_s=8,
    poison_strikes=2,
    poison_retry_s=600,
)


class Backlog:
    """The dispatcher's backlog as the test sets it; counts the checks."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.checks = 0

    async def __call__(self, workflow: str) -> int:
        self.checks += 1
        await trio.lowlevel.checkpoint()
        return self.value


@asynccontextmanager
async def running(
    feed: FakeFeed,
    journal: Journal,
    *,
    backlog: Backlog | None = None,
    control: SystemControl | None = None,
    settings: PollSettings = SETTINGS,
) -> AsyncIterator[Poller]:
    poller = Poller(
        feed,
        system="billing",
        journal=journal,
        backlog=backlog or Backlog(),
        control=control or SystemControl("billing"),
        high_water_mark=100,
        settings=settings,
        wall_clock=lambda: 1_800_000_000.0,
        # Rare beats: every wake-up costs the journal clock real milliseconds.
        heartbeat_interval_s=1_000,
        heartbeat_timeout_s=2_000,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(poller.run)
        yield poller
        poller.request_stop()


def polls_reach(feed: FakeFeed, count: int) -> Callable[[], bool]:
    return lambda: len(feed.calls) >= count


async def test_pages_go_to_the_journal_and_the_watermark_follows(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(5)])
    async with running(feed, journal) as poller:
        await feed.changes.until(polls_reach(feed, 4))
        stats = poller.control.feeds["invoice_events"]

    # Pages of two while there is more, then the regular interval.
    assert feed.calls == [(None, 2), ("2", 2), ("4", 2), ("5", 2)]
    assert feed.times[3] - feed.times[2] >= 60
    events = await journal.read_events()
    assert [decode_envelope(row.body) for row in events] == feed.records
    assert events[0].type == "invoice.status_changed"
    assert events[0].occurred_at == feed.records[0].occurred_at.timestamp()
    assert await journal.get_watermark("billing", "invoice_events") == "5"
    assert (stats.pages, stats.events_appended, stats.duplicates) == (4, 5, 0)
    assert stats.state is FeedState.STOPPED


async def test_a_new_poller_resumes_from_the_stored_watermark(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(3)])
    await journal.set_watermark("billing", "invoice_events", "2", 1.0)
    async with running(feed, journal):
        await feed.changes.until(polls_reach(feed, 1))
    assert feed.calls[0] == ("2", 2)


class CrashBeforeWatermark:
    """A journal whose first ``set_watermark`` fails: the process 'dies' in between."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.crashed = False

    def __getattr__(self, name: str):
        return getattr(self._journal, name)

    async def set_watermark(self, *args, **kwargs) -> None:
        if not self.crashed:
            self.crashed = True
            raise OSError("killed between append and watermark")
        await self._journal.set_watermark(*args, **kwargs)


async def test_a_crash_between_append_and_watermark_rereads_the_page_without_duplicates(
    journal_clock, journal
):
    feed = FakeFeed([envelope(number) for number in range(4)])
    crashing = CrashBeforeWatermark(journal)
    with pytest.raises(ExceptionGroup) as crash:
        async with running(feed, crashing):  # type: ignore[arg-type]
            await trio.sleep_forever()
    assert crash.group_contains(OSError, match="killed", depth=None)
    assert len(await journal.read_events()) == 2  # the first page was appended
    assert await journal.get_watermark("billing", "invoice_events") is None

    control = SystemControl("billing")
    async with running(feed, journal, control=control):  # the restart
        await feed.changes.until(polls_reach(feed, 4))

    assert feed.calls[1] == (None, 2)  # the first page again
    events = await journal.read_events()
    assert [row.id for row in events] == [record.id for record in feed.records]
    stats = control.feeds["invoice_events"]
    assert (stats.events_appended, stats.duplicates) == (2, 2)


async def test_polling_waits_while_the_backlog_is_over_the_high_water_mark(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(3)])
    backlog = Backlog(value=101)
    async with running(feed, journal, backlog=backlog) as poller:
        await trio.sleep(60)
        assert feed.calls == []
        stats = poller.control.feeds["invoice_events"]
        assert stats.state is FeedState.BACKPRESSURE
        assert backlog.checks >= 60 // 5  # checked every backpressure_check_s

        backlog.value = 100  # at the mark is not above it
        await feed.changes.until(polls_reach(feed, 1))
        # High again after the first page: the second waits.
        backlog.value = 5_000
        await trio.sleep(120)
        assert feed.calls == [(None, 2)]
        backlog.value = 0
        await feed.changes.until(polls_reach(feed, 2))
    assert feed.calls == [(None, 2), ("2", 2)]


async def test_retryable_errors_back_off_on_the_clock(journal_clock, journal):
    feed = FakeFeed([envelope(0)])
    feed.errors.extend(
        [
            RetryableError("503", system="billing", status=503),
            RetryableError("503", system="billing", status=503),
            ThrottledError("429", system="billing", status=429, retry_after_s=30),
            RetryableError("503", system="billing", status=503),
            RetryableError("503", system="billing", status=503),
        ]
    )
    async with running(feed, journal) as poller:
        await feed.changes.until(polls_reach(feed, 6))
        stats = poller.control.feeds["invoice_events"]

    gaps = [later - earlier for earlier, later in zip(feed.times, feed.times[1:], strict=False)]
    # 1, 2, then the vendor's 30 s (over the 4 s of backoff), then 8 and 8 (retry_max_s).
    assert gaps == pytest.approx([1, 2, 30, 8, 8])
    assert {call for call in feed.calls} == {(None, 2)}  # the same page each time
    assert stats.retryable_errors == 5
    assert len(await journal.read_events()) == 1


async def test_permanent_errors_are_counted_and_the_feed_lives_on(journal_clock, journal):
    feed = FakeFeed([envelope(0), envelope(1)])
    feed.errors.append(PermanentError("403 insufficient access", system="billing", status=403))
    feed.errors.append(KeyError("adapter bug"))
    async with running(feed, journal) as poller:
        await feed.changes.until(polls_reach(feed, 3))
        stats = poller.control.feeds["invoice_events"]
        assert stats.permanent_errors == 2
    assert len(await journal.read_events()) == 2
    assert stats.last_error is None  # cleared by the successful poll


async def test_a_paused_system_does_not_poll(journal_clock, journal):
    feed = FakeFeed([envelope(0)])
    control = SystemControl("billing")
    control.pause()
    async with running(feed, journal, control=control):
        await trio.sleep(3_600)
        assert feed.calls == []
        assert control.feeds["invoice_events"].state is FeedState.PAUSED
        control.resume()
        await feed.changes.until(polls_reach(feed, 1))


async def test_a_poison_record_goes_to_exceptions_and_the_records_before_it_get_through(
    journal_clock, journal
):
    feed = FakeFeed([envelope(number) for number in range(6)])
    feed.poison.add(3)
    settings = PollSettings(
        poll_interval_s=60, batch=4, retry_initial_s=1, poison_strikes=2, poison_retry_s=600
    )
    async with running(feed, journal, settings=settings) as poller:
        stats = poller.control.feeds["invoice_events"]
        await feed.changes.until(lambda: stats.state is FeedState.POISONED)
        await trio.sleep(1_200)  # two more retries: still one exception

        # Everything before the bad record is journaled, and the watermark stops at it.
        assert [row.id for row in await journal.read_events()] == [
            record.id for record in feed.records[:3]
        ]
        assert await journal.get_watermark("billing", "invoice_events") == "3"
        assert stats.poison_records == 1
        exceptions = await journal.list_exceptions(category="mapping")
        assert len(exceptions) == 1
        assert exceptions[0].workflow == "invoice_feedback"
        assert exceptions[0].owner == "mapping"
        assert "billing/invoice_events" in exceptions[0].message
        assert "billing/invoice in_3/amount" in exceptions[0].message

        feed.poison.clear()  # the mapping is fixed
        await feed.changes.until(lambda: stats.watermark == "6")
    assert len(await journal.read_events()) == 6


async def test_a_one_off_malformed_page_is_not_mistaken_for_poison(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(2)])
    feed.errors.append(PayloadError("not JSON", where="billing/events"))
    async with running(feed, journal, settings=SETTINGS) as poller:
        await feed.changes.until(polls_reach(feed, 3))
        stats = poller.control.feeds["invoice_events"]
    assert feed.calls[:2] == [(None, 2), (None, 1)]  # halved, then fine
    assert stats.poison_records == 0
    assert await journal.list_exceptions(category="mapping") == []
    assert len(await journal.read_events()) == 2


async def test_stop_finishes_the_page_in_hand(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(2)])
    feed.hold = trio.Event()
    async with running(feed, journal) as poller:
        await feed.changes.until(polls_reach(feed, 1))
        poller.request_stop()  # while the first poll is at the vendor
        feed.hold.set()
    assert len(feed.calls) == 1
    assert await journal.get_watermark("billing", "invoice_events") == "2"
    assert len(await journal.read_events()) == 2
