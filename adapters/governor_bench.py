"""``pssync bench governor``: does the governor hold a vendor's rate limit exactly?

A simulated Stripe that enforces ``L`` requests/s (a token bucket of ``sandbox_burst``)
runs on loopback in a child process, so the vendor's limiter and the client do not share
an event loop. ``requests`` GETs then go through a real :class:`SystemClient` and a
:class:`Governor` configured at ``L``, on real time. Target: achieved rate at least 95 %
of ``L`` and not one 429.

Why the governor's burst is below the sandbox's: both buckets refill at ``L`` and start
full, but the vendor counts arrivals, not grants. A request granted early and delayed on
the way (the first one opens the connection) lets later ones arrive closer together than
they were granted, and with equal buckets that is a 429. A governor bucket smaller by
``k`` tokens absorbs ``k / L`` seconds of such jitter; the default keeps 100 ms of it.

Run the child by hand with ``python -m adapters.governor_bench serve --rate 50 --burst 50``;
it prints one JSON line (``{"url": …, "api_key": …}``) once it listens.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import msgspec
import trio

from actors.errors import AdapterError

from .auth import BearerToken
from .governor import Governor, GovernorConfig, Lane
from .http import HttpConfig, SystemClient
from .signals import StripeSignals

__all__ = ["GovernorBenchResult", "bench_governor", "format_governor_table"]

#: Jitter between grant and arrival that the default governor burst tolerates.
JITTER_ALLOWANCE_S = 0.1
#: Where the bench asks: a cheap read that every Stripe account answers.
BENCH_PATH = "/v1/customers"


class GovernorBenchResult(msgspec.Struct, frozen=True, kw_only=True):
    """One run: the limit, what was achieved, and how long requests waited for a slot."""

    rate_per_s: float
    """``L``: the sandbox's limit and the governor's configured rate."""
    sandbox_burst: int
    governor_burst: int
    requests: int
    concurrency: int
    elapsed_s: float
    """From the first grant to the last response."""
    achieved_per_s: float
    """Requests done per second of ``elapsed_s``; the opening burst lifts it above L."""
    sustained_per_s: float
    """Grants per second after the opening burst: what the governor holds in the long run."""
    throttled: int
    """429 responses seen on the wire (the client retried them)."""
    failed: int
    """Requests that ended in an error after the client's retries."""
    wait_p50_s: float
    wait_p99_s: float
    wait_max_s: float

    @property
    def achieved_fraction(self) -> float:
        return self.achieved_per_s / self.rate_per_s

    @property
    def ok(self) -> bool:
        """The target: at least 95 % of L, no 429 and no failure."""
        return self.achieved_fraction >= 0.95 and self.throttled == 0 and self.failed == 0


class _TimedGovernor(Governor):
    """A governor that records how long each request waited for its slot."""

    def __init__(self, config: GovernorConfig) -> None:
        super().__init__(config, name="bench")
        self.waits: list[float] = []
        self.grants: list[float] = []

    @asynccontextmanager
    async def slot(self, lane: Lane = Lane.MASTER_DATA) -> AsyncIterator[None]:
        asked = trio.current_time()
        async with super().slot(lane):
            granted = trio.current_time()
            self.waits.append(granted - asked)
            self.grants.append(granted)
            yield


async def bench_governor(
    *,
    rate_per_s: float = 50.0,
    requests: int = 1_000,
    sandbox_burst: int | None = None,
    burst: int | None = None,
    concurrency: int = 8,
) -> GovernorBenchResult:
    """Push ``requests`` through a governor at ``rate_per_s`` against a sandbox limited to it.

    ``sandbox_burst`` defaults to ``rate_per_s`` (Stripe's bucket), ``burst`` (the
    governor's) to that minus :data:`JITTER_ALLOWANCE_S` worth of tokens. Real time: this
    takes about ``requests / rate_per_s`` seconds.
    """
    if rate_per_s <= 0 or requests < 1 or concurrency < 1:
        raise ValueError("rate_per_s must be > 0, requests and concurrency >= 1")
    sandbox_burst = sandbox_burst if sandbox_burst is not None else max(1, int(rate_per_s))
    if burst is None:
        burst = max(1, sandbox_burst - math.ceil(rate_per_s * JITTER_ALLOWANCE_S))
    async with _sandbox_process(rate_per_s, sandbox_burst) as (url, api_key):
        return await _drive(
            url,
            api_key,
            rate_per_s=rate_per_s,
            requests=requests,
            sandbox_burst=sandbox_burst,
            burst=burst,
            concurrency=concurrency,
        )


async def _drive(
    url: str,
    api_key: str,
    *,
    rate_per_s: float,
    requests: int,
    sandbox_burst: int,
    burst: int,
    concurrency: int,
) -> GovernorBenchResult:
    governor = _TimedGovernor(
        GovernorConfig(rate_per_s=rate_per_s, burst=burst, max_concurrency=concurrency)
    )
    throttled = 0

    async def count_throttles(response: httpx.Response) -> None:
        nonlocal throttled
        if response.status_code == 429:
            throttled += 1

    client = SystemClient(
        "bench",
        HttpConfig(base_url=url, max_connections=concurrency),
        auth=BearerToken(api_key),
        governor=governor,
        signals=StripeSignals(),
    )
    # The client retries 429s itself; this hook sees every response on the wire.
    client.http.event_hooks["response"].append(count_throttles)
    remaining = requests
    failed = 0

    async def worker() -> None:
        nonlocal remaining, failed
        while remaining > 0:
            remaining -= 1
            try:
                await client.request("GET", BENCH_PATH, params={"limit": 1}, lane=Lane.ANALYTICS)
            except AdapterError:
                failed += 1

    async with client:
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        finished = trio.current_time()
    grants = governor.grants
    elapsed = finished - grants[0]
    after_burst = grants[min(burst, len(grants) - 1) :]
    span = after_burst[-1] - after_burst[0]
    waits = sorted(governor.waits)
    return GovernorBenchResult(
        rate_per_s=rate_per_s,
        sandbox_burst=sandbox_burst,
        governor_burst=burst,
        requests=requests,
        concurrency=concurrency,
        elapsed_s=elapsed,
        achieved_per_s=(requests - failed) / elapsed if elapsed > 0 else math.inf,
        sustained_per_s=(len(after_burst) - 1) / span if span > 0 else math.inf,
        throttled=throttled,
        failed=failed,
        wait_p50_s=_percentile(waits, 0.50),
        wait_p99_s=_percentile(waits, 0.99),
        wait_max_s=waits[-1],
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def format_governor_table(result: GovernorBenchResult) -> str:
    """The result for people: one row per figure, the verdict last."""
    rows = [
        ("limit (L)", f"{result.rate_per_s:g} req/s"),
        ("burst (sandbox / governor)", f"{result.sandbox_burst} / {result.governor_burst}"),
        ("requests / concurrency", f"{result.requests} / {result.concurrency}"),
        ("elapsed", f"{result.elapsed_s:.2f} s"),
        (
            "achieved rate",
            f"{result.achieved_per_s:.2f} req/s ({result.achieved_fraction:.1%} of L)",
        ),
        ("sustained rate (after burst)", f"{result.sustained_per_s:.2f} req/s"),
        ("429 responses", str(result.throttled)),
        ("failed requests", str(result.failed)),
        ("governor wait p50", f"{result.wait_p50_s * 1000:.1f} ms"),
        ("governor wait p99", f"{result.wait_p99_s * 1000:.1f} ms"),
        ("governor wait max", f"{result.wait_max_s * 1000:.1f} ms"),
        ("target (>= 95% of L, no 429)", "met" if result.ok else "NOT met"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows) + "\n"


# -- the sandbox in a child process ------------------------------------------------------

_STARTUP_TIMEOUT_S = 30.0
#: The directory holding this package: the child imports the same code as the parent.
_IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)


@asynccontextmanager
async def _sandbox_process(rate_per_s: float, burst: int) -> AsyncIterator[tuple[str, str]]:
    """Start the child, read its URL and key, and kill it on the way out."""
    root = _IMPORT_ROOT
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable,
        "-m",
        "adapters.governor_bench",
        "serve",
        "--rate",
        repr(float(rate_per_s)),
        "--burst",
        str(burst),
    ]
    process = await trio.lowlevel.open_process(command, stdout=-1, env=env)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(_STARTUP_TIMEOUT_S):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"the sandbox process exited: {command}")
                line += chunk
        ready = msgspec.json.decode(line.strip())
        yield str(ready["url"]), str(ready["api_key"])
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def _serve(rate_per_s: float, burst: int) -> None:
    # Imported here: the parent process never needs the sandbox's dependencies.
    from .sandbox.sandbox import SandboxConfig, build_sandbox
    from .sandbox.server import serve_sandbox

    sandbox = build_sandbox(
        SandboxConfig(
            vendors=("stripe",),
            options={"stripe": {"rate_limit_per_s": rate_per_s, "rate_burst": burst}},
        )
    )
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve_sandbox, sandbox, ports={"stripe": 0}))
        api_key = sandbox.vendors["stripe"].credentials["api_key"]
        sys.stdout.write(msgspec.json.encode({"url": urls["stripe"], "api_key": api_key}).decode())
        sys.stdout.write("\n")
        sys.stdout.flush()


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.governor_bench")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a rate-limited Stripe sandbox")
    serve.add_argument("--rate", type=float, required=True, help="requests per second")
    serve.add_argument("--burst", type=int, required=True, help="token bucket size")
    run = commands.add_parser("run", help="run the bench and print the table")
    run.add_argument("--rate", type=float, default=50.0)
    run.add_argument("--requests", type=int, default=1_000)
    run.add_argument("--concurrency", type=int, default=8)
    run.add_argument("--sandbox-burst", type=int, default=None)
    run.add_argument("--burst", type=int, default=None, help="the governor's burst")
    args = parser.parse_args(argv)
    if args.command == "serve":
        trio.run(_serve, args.rate, args.burst)
    else:
        result = trio.run(
            partial(
                bench_governor,
                rate_per_s=args.rate,
                requests=args.requests,
                concurrency=args.concurrency,
                sandbox_burst=args.sandbox_burst,
                burst=args.burst,
            )
        )
        print(format_governor_table(result), end="")


if __name__ == "__main__":
    _main()
