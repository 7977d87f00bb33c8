"""kill -9 at random moments never loses an acknowledged event nor breaks the file."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from store import open_journal

from .conftest import event
from .crash_child import BATCH

REPO = Path(__file__).resolve().parents[2]
KILLS = 22


async def run_and_kill(path: str, incarnation: int, delay: float, wait_ready: bool) -> list[str]:
    """Start a child, SIGKILL it ``delay`` s after it is ready (or after spawn), and
    return the batch ids it acknowledged."""
    output = bytearray()
    ready = trio.Event()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.store.crash_child", path, str(incarnation)],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    try:

        async def read_all() -> None:
            # Read while the child runs so a full pipe never throttles it.
            while chunk := await process.stdout.receive_some():
                output.extend(chunk)
                if output.startswith(b"ready\n"):
                    ready.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            with trio.fail_after(20):
                if wait_ready:
                    await ready.wait()
                await trio.sleep(delay)  # the random moment of the kill is the test
                process.kill()  # SIGKILL
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == -9
    lines = bytes(output).split(b"\n")[:-1]  # a line is written whole or not at all
    return [line.decode() for line in lines if line != b"ready"]


@pytest.mark.slow
async def test_kill_9_loses_no_acknowledged_event(tmp_path) -> None:
    path = str(tmp_path / "journal.db")
    rng = random.Random(20261125)
    acknowledged: list[str] = []

    for incarnation in range(KILLS):
        # Mostly mid-append; every fifth kill may land while the child opens the file.
        wait_ready = incarnation % 5 != 0
        delay = rng.uniform(0.0, 0.2 if wait_ready else 0.4)
        batches = await run_and_kill(path, incarnation, delay, wait_ready)
        acknowledged += batches
        expected = {f"{batch}-{j}": batch.encode() for batch in batches for j in range(BATCH)}

        async with open_journal(path) as journal:
            stored = await journal.get_events(list(expected))
            assert {e.id: e.body for e in stored} == expected  # present, unaltered, once
            report = await journal.verify()
            assert report.integrity == ("ok",)
            assert report.ok, report.problems
            probe = await journal.append([event(f"probe-{incarnation}")])
            assert probe.new == (True,)

    assert len(acknowledged) > 5 * KILLS  # the children really were mid-stream
    async with open_journal(path) as journal:
        everything = await journal.read_events(limit=10_000_000)
    ids = [e.id for e in everything]
    assert len(ids) == len(set(ids))
    assert {f"{b}-{j}" for b in acknowledged for j in range(BATCH)} <= set(ids)
    assert [e.seq for e in everything] == sorted(e.seq for e in everything)
