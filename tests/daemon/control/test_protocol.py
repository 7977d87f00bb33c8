"""The wire protocol: decoding requests, naming what is wrong, encoding answers."""

from __future__ import annotations

import json

import pytest

from daemon.control import protocol as p


def test_a_request_decodes_to_its_operation() -> None:
    request = p.decode_request(b'{"v":1,"id":3,"op":"exceptions.list","owner":"pmo"}')

    assert request == p.ExceptionsList(id=3, owner="pmo")
    assert request.op == "exceptions.list"
    assert not request.mutating
    assert p.decode_request(b'{"op":"pause","name":"crm"}').mutating


def test_close_period_decodes_with_an_optional_month() -> None:
    request = p.decode_request(b'{"v":1,"id":4,"op":"close_period","period":"2026-01"}')

    assert request == p.ClosePeriod(id=4, period="2026-01")
    assert request.op == "close_period"
    assert request.mutating
    assert p.decode_request(b'{"op":"close_period"}') == p.ClosePeriod()
    assert "close_period" in p.OPERATIONS
    with pytest.raises(p.RequestError) as raised:
        p.decode_request(b'{"op":"close_period","month":"2026-01"}')
    assert raised.value.code == "bad_request"
    assert "unknown field `month`" in raised.value.message


@pytest.mark.parametrize(
    ("line", "code", "request_id", "message"),
    [
        (b'{"id":1,"op":"explode"}', "unknown_op", 1, "unknown operation 'explode'; known: "),
        (b'{"id":2}', "bad_request", 2, "missing field `op` (the operation)"),
        (b"{bad", "bad_request", None, "invalid JSON: object keys must be strings"),
        (b"\xff\xfe garbage", "bad_request", None, "invalid JSON: invalid character"),
        (b"[1, 2]", "bad_request", None, "expected `object`, got `array`"),
        (b'{"id":3,"op":"runs.list","limit":"x"}', "bad_request", 3, "limit: expected `int`"),
        (b'{"id":4,"op":"runs.show","run_id":0}', "bad_request", 4, "run_id: expected `int` >= 1"),
        (b'{"id":5,"op":"status","force":true}', "bad_request", 5, "unknown field `force`"),
        (b'{"id":6,"op":"exceptions.resolve","exception_id":1}', "bad_request", 6, "`resolution`"),
        (b'{"id":"x","op":"status","v":2}', "unsupported", "x", "protocol version 2"),
    ],
)
def test_a_bad_line_is_refused_naming_the_problem(
    line: bytes, code: str, request_id: object, message: str
) -> None:
    with pytest.raises(p.RequestError) as raised:
        p.decode_request(line)

    assert raised.value.code == code
    assert raised.value.request_id == request_id
    assert message in raised.value.message


def test_unknown_op_lists_every_operation() -> None:
    with pytest.raises(p.RequestError) as raised:
        p.decode_request(b'{"op":"nope"}')

    for op in ("status", "drain", "runs.show", "exceptions.assign", "journal.backup"):
        assert op in raised.value.message


def test_requests_and_answers_are_one_line_each() -> None:
    request = p.encode_request("runs.list", 9, workflow="w", key=None)
    ok = p.encode_result(9, {"n": 1})
    error = p.encode_error(None, "not_found", "run 7 does not exist")

    assert request.endswith(b"\n")
    assert request.count(b"\n") == 1
    assert json.loads(request) == {"v": 1, "id": 9, "op": "runs.list", "workflow": "w"}
    assert json.loads(ok) == {"id": 9, "ok": True, "result": {"n": 1}}
    assert json.loads(error) == {
        "id": None,
        "ok": False,
        "error": {"code": "not_found", "message": "run 7 does not exist"},
    }
    assert p.decode_request(request) == p.RunsList(id=9, workflow="w")
