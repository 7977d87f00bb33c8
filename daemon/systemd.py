"""sd_notify without libsystemd: one datagram of ``VAR=value`` lines to ``$NOTIFY_SOCKET``.

``Type=notify`` units wait for ``READY=1``; ``STOPPING=1`` announces a drain; ``WATCHDOG=1``
must arrive within ``WatchdogSec=`` (``$WATCHDOG_USEC``). Outside systemd every call is a
no-op. See systemd's ``man/notify-selfcontained-example.py``.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Mapping


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
        return self.notify("READY=1", f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


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
        return int(usec) / 2_000_000
    except ValueError:
        return None
