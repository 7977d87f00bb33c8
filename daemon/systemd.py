"""sd_notify without libsystemd: one datagram of ``VAR=value`` lines to ``$NOTIFY_SOCKET``.

``Type=notify`` units wait for ``READY=1``; ``STOPPING=1`` announces a drain; ``WATCHDOG=1``
must arrive within ``WatchdogSec=`` (``$WATCHDOG_USEC``). Outside systemd every call is a
no-op. See systemd's ``man/notify-selfcontained-example.py``.

``NOTIFY_SOCKET`` is a path (``/run/systemd/notify``) or, with a leading ``@``, a Linux
abstract socket. A reload is bracketed by ``RELOADING=1`` + ``MONOTONIC_USEC=`` (same
datagram) and ``READY=1``: systemd 253's ``Type=notify-reload`` needs exactly that, and
252 (Debian 12, ``Type=notify`` + ``ExecReload=``) ignores it harmlessly. A long drain
re-sends ``EXTEND_TIMEOUT_USEC=`` so ``TimeoutStopSec=`` does not SIGKILL it.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from actors import HealthView


class Notifier:
    """Sends notifications to the socket named in ``environ`` (read once, at creation)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # Linux abstract namespace
        elif address and not address.startswith("/"):
            raise OSError(errno.EAFNOSUPPORT, f"unsupported NOTIFY_SOCKET {address!r}")
        self._address = address
        self.watchdog_interval_s = _watchdog_interval_s(environ)

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=…"``) as one datagram; False if no socket."""
        if not self._address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(self._address)
            sock.sendall("\n".join(fields).encode())
        return True

    def ready(self, status: str) -> bool:
        """Startup (or a reload) is done."""
        return self.notify("READY=1", status_field(status))

    def status(self, status: str) -> bool:
        """``STATUS=``: the one line ``systemctl status`` shows."""
        return self.notify(status_field(status))

    def stopping(self, status: str, *, extend_timeout_s: float | None = None) -> bool:
        """A drain has begun; optionally ask for ``extend_timeout_s`` more to finish it."""
        fields = ["STOPPING=1", status_field(status)]
        if extend_timeout_s is not None:
            fields.append(extend_timeout_field(extend_timeout_s))
        return self.notify(*fields)

    def reloading(self, status: str = "reloading configuration") -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=`` in the same datagram; ``ready()`` ends it."""
        return self.notify(
            "RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", status_field(status)
        )

    @contextmanager
    def reload_cycle(self, status: str = "reloading configuration") -> Iterator[None]:
        """``RELOADING=1`` … ``READY=1`` around a reload, also when it fails (the old
        configuration keeps running, so the service is ready again either way)::

            with notifier.reload_cycle():
                apply(new_config)
        """
        self.reloading(status)
        try:
            yield
        except BaseException as exc:
            self.ready(f"reload failed, previous configuration kept: {exc}")
            raise
        self.ready("running: configuration reloaded")

    def extend_timeout(self, seconds: float) -> bool:
        """Push the current start/stop timeout out to ``seconds`` from now."""
        return self.notify(extend_timeout_field(seconds))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


async def extend_timeout_while_running(
    notifier: Notifier, *, every_s: float = 5.0, extend_by_s: float = 15.0
) -> None:
    """Re-send ``EXTEND_TIMEOUT_USEC=extend_by_s`` every ``every_s`` until cancelled.

    Run it next to a long drain: systemd must see each extension before the previous one
    (or ``TimeoutStopSec=``) runs out, so ``every_s`` must be well below ``extend_by_s``.
    """
    if not every_s < extend_by_s:
        raise ValueError("every_s must be shorter than extend_by_s")
    while notifier.enabled:
        notifier.extend_timeout(extend_by_s)
        await trio.sleep(every_s)


def status_line(health: HealthView, *, systems: int, workflows: int) -> str:
    """The one-line ``STATUS=`` summary: ``running: 4 systems, 6 workflows, 23 actors`` or,
    when required actors are not alive, ``degraded: root/crm/poller, root/erp down``."""
    actors = health.actors()
    down = [a.path for a in actors if a.required and not a.alive]
    if down:
        shown = ", ".join(down[:3]) + (f" (+{len(down) - 3} more)" if len(down) > 3 else "")
        return f"degraded: {shown} down"
    return f"running: {systems} systems, {workflows} workflows, {len(actors)} actors"


def status_field(status: str) -> str:
    """``STATUS=<one line>``: a newline would start a new (bogus) assignment."""
    return "STATUS=" + " ".join(status.split())


def extend_timeout_field(seconds: float) -> str:
    return f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}"


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in µs, for ``RELOADING=1`` + ``MONOTONIC_USEC=``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _watchdog_interval_s(environ: Mapping[str, str]) -> float | None:
    """Half of ``WatchdogSec=`` when the watchdog is meant for this process, else None."""
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
