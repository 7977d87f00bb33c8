"""A blocking client for the control socket, for the CLI (one process, one request).

Failures to reach the daemon are ControlErrors with codes of their own, which the CLI
maps to exit statuses: ``not_running`` (no socket file, or nobody listening: exit 3) and
``permission_denied`` (the socket file refused this user: exit 4).
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

import msgspec

from actors.errors import ControlError

from .protocol import MAX_LINE_BYTES, encode_request


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """One response line; ``raw`` keeps the bytes for ``--json``."""

    id: int | str | None = None
    ok: bool
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict[str, str] | None = None


_response = msgspec.json.Decoder(Response)


class ControlClient:
    """Connects on construction; ``call`` sends one request and returns its response."""

    def __init__(self, path: str, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(timeout_s)
        self._buffer = bytearray()
        self._next_id = 1
        try:
            self._sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            self._sock.close()
            raise ControlError(
                "not_running", f"the daemon is not running (no control socket at {path})"
            ) from None
        except PermissionError:
            self._sock.close()
            raise ControlError(
                "permission_denied", f"permission denied connecting to {path}"
            ) from None
        except OSError as exc:
            self._sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                raise ControlError("not_running", f"no daemon at {path}") from None
            raise ControlError("failed", f"cannot connect to {path}: {exc.strerror}") from None

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, op: str, **arguments: Any) -> Response:
        """Send ``op`` with ``arguments`` (None values left out); the daemon's response."""
        request_id = self._next_id
        self._next_id += 1
        try:
            self._sock.sendall(encode_request(op, request_id, **arguments))
            line = self._read_line()
        except TimeoutError:
            raise ControlError("failed", f"no answer from the daemon to {op}") from None
        except (BrokenPipeError, ConnectionResetError):
            line = None
        if line is None:
            raise ControlError("failed", "the daemon closed the connection without answering")
        try:
            return _response.decode(line)
        except msgspec.DecodeError as exc:
            raise ControlError("failed", f"unreadable answer from the daemon: {exc}") from None

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait for the daemon to close the connection (it has stopped); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._sock.settimeout(remaining)
            try:
                if not self._sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True

    def _read_line(self) -> bytes | None:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            if len(self._buffer) > 64 * MAX_LINE_BYTES:
                raise ControlError("failed", "answer line too long")
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
