"""The server against a running daemon: bad input never disturbs it; mutations are
checked against the credential policy and logged."""

from __future__ import annotations

import contextlib
import os

import pytest
import structlog
import trio

from daemon.control import ControlRegistry, ControlServer, CredentialPolicy
from daemon.control.protocol import MAX_LINE_BYTES

from .conftest import TIMEOUT_S, FakeSystem, unprivileged


async def status_still_answers(daemon) -> None:
    connection = await daemon.connect()
    answer = await connection.ask({"id": 99, "op": "status"})
    await connection.aclose()
    assert answer["ok"] is True, answer
    assert answer["id"] == 99


async def test_several_requests_on_one_connection_are_answered_in_order(start_daemon) -> None:
    daemon = await start_daemon()
    connection = await daemon.connect()

    await connection.send(
        b'{"id":1,"op":"status"}\n{"id":2,"op":"actors"}\n\n{"id":3,"op":"runs.list"}\n'
    )
    answers = [await connection.answer() for _ in range(3)]

    assert [a["id"] for a in answers] == [1, 2, 3]
    assert all(a["ok"] for a in answers)
    assert answers[0]["result"]["systems"][0]["name"] == "erp"
    assert answers[1]["result"][0]["path"] == "root"
    assert answers[2]["result"] == []


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"\x00\xff\xfe garbage \x07\n", "bad_request"),
        (b"{not json\n", "bad_request"),
        (b'{"id":5,"op":"format_disk"}\n', "unknown_op"),
        (b'{"id":5,"op":"runs.show","run_id":"seven"}\n', "bad_request"),
        (b'{"id":5,"op":"exceptions.list","older_than_s":-1}\n', "bad_request"),
    ],
    ids=["garbage", "invalid-json", "unknown-op", "wrong-type", "out-of-range"],
)
async def test_a_bad_request_gets_an_error_and_harms_nothing(
    start_daemon, line: bytes, code: str
) -> None:
    daemon = await start_daemon()
    connection = await daemon.connect()

    await connection.send(line)
    answer = await connection.answer()
    # the same connection keeps working
    after = await connection.ask({"id": 6, "op": "status"})

    assert answer["ok"] is False
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert after["ok"] is True
    await status_still_answers(daemon)


async def test_a_10_mb_line_gets_too_long_and_the_connection_is_closed(start_daemon) -> None:
    daemon = await start_daemon()
    connection = await daemon.connect()

    async def flood() -> None:
        # the daemon hangs up on us mid-send, as it should
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await connection.send(b"x" * 10_000_000 + b"\n")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        answer = await connection.answer()
        # Closed with our bytes unread: Linux reports that as a reset rather than EOF.
        try:
            closed = await connection.answer()
        except trio.BrokenResourceError:
            closed = None

    assert answer["error"]["code"] == "too_long"
    assert str(MAX_LINE_BYTES) in answer["error"]["message"]
    assert closed is None
    await status_still_answers(daemon)


async def test_half_closed_and_abandoned_connections_do_not_disturb_it(start_daemon) -> None:
    daemon = await start_daemon()
    # half-closed after a request: the answer still comes, then the daemon closes
    half = await daemon.connect()
    await half.send(b'{"id":1,"op":"status"}\n')
    await half.stream.send_eof()
    assert (await half.answer())["ok"] is True
    assert await half.answer() is None
    # half a line, then gone
    gone = await daemon.connect()
    await gone.send(b'{"id":2,"op":"sta')
    await gone.aclose()
    # a last line without its newline is still a request
    unterminated = await daemon.connect()
    await unterminated.send(b'{"id":3,"op":"actors"}')
    await unterminated.stream.send_eof()
    assert (await unterminated.answer())["id"] == 3

    await status_still_answers(daemon)


async def test_a_failing_operation_is_answered_failed_and_contained(start_daemon) -> None:
    registry = ControlRegistry(systems={"erp": FakeSystem("erp", fail_with=RuntimeError("boom"))})
    daemon = await start_daemon(registry=registry)
    connection = await daemon.connect()

    with structlog.testing.capture_logs() as logs:
        answer = await connection.ask({"id": 1, "op": "pause", "name": "erp"})

    assert answer["error"] == {"code": "failed", "message": "internal error: RuntimeError: boom"}
    assert any(entry["event"] == "control.operation_crashed" for entry in logs)
    await status_still_answers(daemon)


async def test_mutations_are_forbidden_to_an_unprivileged_peer_and_logged(
    start_daemon,
) -> None:
    system = FakeSystem("erp")
    daemon = await start_daemon(
        policy=unprivileged(), registry=ControlRegistry(systems={"erp": system})
    )
    connection = await daemon.connect()

    with structlog.testing.capture_logs() as logs:
        refused = await connection.ask({"id": 1, "op": "pause", "name": "erp"})
        reading = await connection.ask({"id": 2, "op": "actors"})

    assert refused["error"]["code"] == "forbidden"
    assert f"you are uid {os.getuid()}" in refused["error"]["message"]
    assert system.calls == []
    assert reading["ok"] is True  # reading is allowed to any peer that can connect
    [entry] = [e for e in logs if e["event"] == "control.forbidden"]
    assert entry["op"] == "pause"
    assert entry["peer_uid"] == os.getuid()
    assert entry["peer_pid"] == os.getpid()


async def test_every_mutation_is_logged_with_the_peer(start_daemon) -> None:
    system = FakeSystem("erp")
    daemon = await start_daemon(registry=ControlRegistry(systems={"erp": system}))
    connection = await daemon.connect()

    with structlog.testing.capture_logs() as logs:
        answer = await connection.ask({"id": 1, "op": "pause", "name": "erp"})

    assert answer["result"] == {"name": "erp", "kind": "system", "state": "paused", "paused": True}
    [entry] = [e for e in logs if e["event"] == "control.mutation"]
    assert entry["op"] == "pause"
    assert entry["arguments"] == {"name": "erp"}
    assert (entry["peer_uid"], entry["peer_pid"]) == (os.getuid(), os.getpid())


async def test_connections_beyond_the_bound_are_told_busy(tmp_path) -> None:
    from daemon.control import open_control_socket

    path = str(tmp_path / "c.sock")
    control = await open_control_socket(path)
    server = ControlServer(CredentialPolicy(uids=frozenset(), gids=frozenset()), max_connections=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, control.listener)
        with trio.fail_after(TIMEOUT_S):
            first = await trio.open_unix_socket(path)
            await first.send_all(b'{"id":1,"op":"status"}\n')
            # the daemon is "starting" (no operations attached): still an answer
            assert b'"unavailable"' in await first.receive_some()
            second = await trio.open_unix_socket(path)
            assert b'"busy"' in await second.receive_some()
            await first.aclose()
            await second.aclose()
        nursery.cancel_scope.cancel()
    await control.close()
