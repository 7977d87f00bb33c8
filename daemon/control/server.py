"""The control server: accepts connections and answers request lines in order.

Nothing a client sends can disturb the daemon: each connection is handled in its own
task, every failure in it is caught and answered (``failed``) or ends only that
connection, and the number of connections is bounded (``busy`` beyond it). A line over
the limit is answered ``too_long`` and the connection closed, since the stream is no
longer in step. A mutation is checked against the :class:`~.peer.CredentialPolicy`
(``forbidden`` otherwise) and logged with the peer's uid and pid either way.
"""

from __future__ import annotations

from typing import Any

import structlog
import trio

from actors.errors import ControlError, PssyncError

from . import protocol as p
from .lines import LineReader, LineTooLong
from .operations import DaemonControl
from .peer import CredentialPolicy, Peer, peer_credentials

log = structlog.get_logger("daemon.control")

# Operators and scripts, not clients at scale; each connection costs at most one line
# buffer (MAX_LINE_BYTES), so this also bounds the memory the socket can take.
MAX_CONNECTIONS = 32


class ControlServer:
    """Serves a listener; :attr:`operations` is attached once the daemon is up."""

    def __init__(
        self,
        policy: CredentialPolicy,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_line_bytes: int = p.MAX_LINE_BYTES,
    ) -> None:
        self.policy = policy
        self.operations: DaemonControl | None = None
        self._unavailable = "the daemon is starting; retry in a moment"
        self.max_connections = max_connections
        self.max_line_bytes = max_line_bytes
        self.connections = 0

    def attach(self, operations: DaemonControl) -> None:
        """Start serving operations (until then every request is ``unavailable``)."""
        self.operations = operations

    def detach(self, reason: str) -> None:
        """Stop serving operations; requests get ``unavailable`` with ``reason``."""
        self.operations = None
        self._unavailable = reason

    async def serve(
        self,
        listener: trio.SocketListener,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._connection, [listener])
            task_status.started()

    async def _connection(self, stream: trio.SocketStream) -> None:
        # Everything is caught here: an exception escaping a handler would take
        # serve_listeners, and with it the daemon, down.
        try:
            async with stream:
                if self.connections >= self.max_connections:
                    await stream.send_all(
                        p.encode_error(None, "busy", "too many control connections; retry")
                    )
                    return
                self.connections += 1
                try:
                    await self._converse(stream)
                finally:
                    self.connections -= 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away mid-answer: its loss, not ours
        except Exception:
            log.exception("control.connection_failed")

    async def _converse(self, stream: trio.SocketStream) -> None:
        peer = peer_credentials(stream.socket)
        reader = LineReader(stream, max_line_bytes=self.max_line_bytes)
        while True:
            try:
                line = await reader.next_line()
            except LineTooLong:
                log.warning("control.line_too_long", peer_uid=peer.uid, peer_pid=peer.pid)
                await stream.send_all(
                    p.encode_error(
                        None,
                        "too_long",
                        f"request line longer than {self.max_line_bytes} bytes; closing",
                    )
                )
                return
            if line is None:
                return
            if not line.strip():
                continue  # a stray blank line (an operator pressing Enter in socat)
            await stream.send_all(await self.answer(line, peer))

    async def answer(self, line: bytes, peer: Peer) -> bytes:
        """The response line for one request line from ``peer``."""
        try:
            request = p.decode_request(line)
        except p.RequestError as exc:
            return p.encode_error(exc.request_id, exc.code, exc.message)
        if request.mutating:
            allowed = await trio.to_thread.run_sync(self.policy.may_mutate, peer)
            fields = _audit_fields(request, peer)
            if not allowed:
                log.warning("control.forbidden", **fields)
                return p.encode_error(
                    request.id,
                    "forbidden",
                    f"{request.op} changes the daemon: allowed to root, the service user "
                    f"and the operator group only (you are uid {peer.uid})",
                )
            log.info("control.mutation", **fields)
        try:
            return p.encode_result(request.id, await self._perform(request, peer))
        except ControlError as exc:
            return p.encode_error(request.id, exc.code, exc.message)
        except PssyncError as exc:
            return p.encode_error(request.id, "failed", str(exc))
        except Exception as exc:
            log.exception("control.operation_crashed", op=request.op)
            return p.encode_error(
                request.id, "failed", f"internal error: {type(exc).__name__}: {exc}"
            )

    async def _perform(self, request: p.AnyRequest, peer: Peer) -> Any:
        if self.operations is None:
            raise ControlError("unavailable", self._unavailable)
        return await self.operations.handle(request, peer)


def _audit_fields(request: p.AnyRequest, peer: Peer) -> dict[str, Any]:
    arguments = {
        name: getattr(request, name)
        for name in request.__struct_fields__
        if name not in ("v", "id") and getattr(request, name) is not None
    }
    return {
        "op": request.op,
        "peer_uid": peer.uid,
        "peer_gid": peer.gid,
        "peer_pid": peer.pid,
        "arguments": arguments,
    }
