"""Child process of the crash test: append batches flat out, report each acknowledged one.

Run as ``python -m tests.store.crash_child JOURNAL INCARNATION``. Prints ``ready`` once
the journal is open, then one line per batch whose ``append`` has returned (so is
durable), written with a single ``os.write`` so a kill never leaves half a line. Each
batch also repeats the previous batch's first event, so dedup runs under the kills too.
"""

from __future__ import annotations

import os
import sys

import trio

from store import EventRecord, open_journal

TASKS = 8
BATCH = 5


def record(event_id: str, batch_id: str) -> EventRecord:
    """An event whose body names its batch, so the parent can check what was stored."""
    return EventRecord(
        id=event_id,
        type="TimeApproved",
        key=f"P-{hash(batch_id) % 7}",
        source="psa",
        correlation_id=batch_id,
        occurred_at=0.0,
        recorded_at=0.0,
        body=batch_id.encode(),
    )


async def main(path: str, incarnation: str) -> None:
    async with open_journal(path) as journal:
        os.write(1, b"ready\n")

        async def appender(task: int) -> None:
            previous: EventRecord | None = None
            n = 0
            while True:
                batch_id = f"{incarnation}-{task}-{n}"
                records = [record(f"{batch_id}-{j}", batch_id) for j in range(BATCH)]
                await journal.append([*records, previous] if previous else records)
                os.write(1, f"{batch_id}\n".encode())
                previous = records[0]
                n += 1

        async with trio.open_nursery() as nursery:
            for task in range(TASKS):
                nursery.start_soon(appender, task)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
