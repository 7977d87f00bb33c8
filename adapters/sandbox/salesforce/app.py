"""The simulated Salesforce REST API (one org, one integration user).

Routes (``vNN.N`` is any version from 20.0 up; the sandbox speaks one behaviour for all
except the upsert-update status, see :func:`_upsert`):

- ``POST /services/oauth2/token`` — ``client_credentials`` (form-encoded); the JWT bearer
  grant answers ``unsupported_grant_type`` because verifying RS256 needs ``cryptography``,
  which pssync does not depend on. ``POST /services/oauth2/revoke``.
- ``GET /services/data/`` — versions (no auth, not counted).
- ``GET /services/data/vNN.N/`` resources, ``/limits``, ``/sobjects``.
- ``GET /query?q=`` (and ``/queryAll``, same rows: nothing is soft-deleted here) and
  ``GET /query/<locator>-<offset>`` for ``nextRecordsUrl`` paging; batch size 2000 unless
  ``Sforce-Query-Options: batchSize=N`` (clamped to 200-2000).
- ``POST /sobjects/{Type}``; ``GET /sobjects/{Type}/describe`` (a subset);
  ``GET|PATCH|DELETE /sobjects/{Type}/{Id}``;
  ``GET|PATCH /sobjects/{Type}/{ExtField}/{value}`` (upsert);
  ``GET /sobjects/{Type}/updated/?start=&end=`` and ``/deleted/`` (getUpdated/getDeleted).
- ``POST|PATCH|DELETE /composite/sobjects`` and ``PATCH /composite/sobjects/{Type}/{ExtField}``.

Every ``/services/data/vNN.N/`` response carries ``Sforce-Limit-Info: api-usage=N/M``; each
authenticated call counts against a rolling 24-hour budget and, once it is spent, calls
answer 403 ``REQUEST_LIMIT_EXCEEDED`` until the window rolls. Calls refused for a bad
session are not counted; faults injected in front of the app never reach it, so they are
not counted either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..clock import SandboxClock
from ..limits import RollingQuota
from . import soql
from .errors import SalesforceError, invalid_session, not_found, request_limit_exceeded
from .ids import is_id, to_18
from .schema import SOBJECTS, SObject, sobject
from .state import INTEGRATION_USER_ID, ORG_ID, SalesforceState, format_datetime, parse_datetime

DEFAULT_CREDENTIALS = {
    "client_id": "3MVG9pssync.sandbox.consumer.key",
    "client_secret": "pssync-sandbox-consumer-secret",
    "username": "integration@pssync.example",
}
_VERSION = re.compile(r"^v(\d{2,3})\.(\d)$")
_MAX_COLLECTION = 200
_MAX_CHUNKS = 10
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}
_encoder = msgspec.json.Encoder()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(data),
        status_code=status,
        headers=headers,
        media_type="application/json;charset=UTF-8",
    )


class _Rollback(Exception):
    """Raised inside an allOrNone transaction to undo it after a record failed."""


class SalesforceApp:
    """ASGI app over a :class:`SalesforceState`."""

    def __init__(
        self,
        state: SalesforceState,
        clock: SandboxClock,
        *,
        credentials: dict[str, str],
        daily_api_limit: int = 100_000,
        session_timeout_s: float = 7200.0,
        max_version: float = 66.0,
    ) -> None:
        self.state = state
        self.clock = clock
        self.credentials = credentials
        self.quota = RollingQuota(daily_api_limit, 86_400.0, clock)
        self.session_timeout_s = session_timeout_s
        self.max_version = max_version

    def limit_info(self) -> str:
        return f"api-usage={self.quota.used}/{self.quota.limit}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    # -- dispatch ----------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        segments = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        method = request.method
        if segments[:2] == ["services", "oauth2"] and method == "POST":
            if segments[2:] == ["token"]:
                return await self.token(request)
            if segments[2:] == ["revoke"]:
                return await self.revoke(request)
        if segments[:2] != ["services", "data"]:
            return not_found().response()
        if len(segments) == 2 or segments[2] == "":
            return self.versions(request)
        version = segments[2]
        match = _VERSION.match(version)
        if match is None or not 20.0 <= float(version[1:]) <= self.max_version:
            return not_found().response()
        try:
            self.authenticate(request)
        except SalesforceError as error:
            return error.response()
        if not self.quota.try_use():
            return request_limit_exceeded().response({"Sforce-Limit-Info": self.limit_info()})
        try:
            response = await self.route(request, version, segments[3:])
        except SalesforceError as error:
            response = error.response()
        response.headers["Sforce-Limit-Info"] = self.limit_info()
        return response

    async def route(self, request: Request, version: str, rest: list[str]) -> Response:
        method = request.method
        match rest:
            case [] | [""]:
                return self.resources(version)
            case ["limits"]:
                return _json(
                    {
                        "DailyApiRequests": {
                            "Max": self.quota.limit,
                            "Remaining": self.quota.limit - self.quota.used,
                        }
                    }
                )
            case ["query" | "queryAll"] if method == "GET":
                return self.query(request, version)
            case ["query" | "queryAll", locator] if method == "GET":
                return self.query_more(locator, version)
            case ["sobjects"] | ["sobjects", ""] if method == "GET":
                return _json({"sobjects": [{"name": name} for name in SOBJECTS]})
            case ["sobjects", type_name] | ["sobjects", type_name, ""] if method == "POST":
                return await self.create(request, _object(type_name))
            case ["sobjects", type_name, "describe"] if method == "GET":
                return _json(_describe(_object(type_name)))
            case ["sobjects", type_name, "updated" | "deleted" as kind, *_] if method == "GET":
                return self.replication(request, _object(type_name), kind)
            case ["sobjects", type_name, record_id]:
                return await self.record(request, _object(type_name), record_id, version)
            case ["sobjects", type_name, field_name, value] if method in ("GET", "PATCH"):
                return await self.by_external_id(
                    request, _object(type_name), field_name, value, version
                )
            case ["composite", "sobjects"]:
                return await self.collection(request)
            case ["composite", "sobjects", type_name, field_name] if method == "PATCH":
                return await self.collection_upsert(request, _object(type_name), field_name)
        raise not_found()

    # -- OAuth -------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        grant_type = str(form.get("grant_type", ""))
        if grant_type != "client_credentials":
            return _json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        if (
            form.get("client_id") != self.credentials["client_id"]
            or form.get("client_secret") != self.credentials["client_secret"]
        ):
            return _json(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                400,
            )
        token = self.state.new_token()
        now = self.clock.now()
        self.state.sessions[token] = {"issued_at": now, "last_used": now, "revoked": False}
        instance_url = str(request.base_url).rstrip("/")
        identity = f"{instance_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        issued_at = str(int(now * 1000))
        signature = hmac.new(
            self.credentials["client_secret"].encode(),
            (identity + issued_at).encode(),
            hashlib.sha256,
        ).digest()
        return _json(
            {
                "access_token": token,
                "signature": base64.b64encode(signature).decode(),
                "token_format": "opaque",
                "scope": "api",
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )

    async def revoke(self, request: Request) -> Response:
        form = await _form(request)
        session = self.state.sessions.get(str(form.get("token", "")))
        if session is None:
            return _json(
                {"error": "unsupported_token_type", "error_description": "Invalid token"}, 400
            )
        session["revoked"] = True
        return Response(status_code=200)

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        session = self.state.sessions.get(token) if scheme.lower() in ("bearer", "oauth") else None
        now = self.clock.now()
        if (
            session is None
            or session["revoked"]
            or now - session["last_used"] > self.session_timeout_s
        ):
            raise invalid_session()
        session["last_used"] = now

    def expire_sessions(self, token: str | None = None) -> int:
        """Invalidate one session (or all): the next call with it answers 401."""
        expired = 0
        for key, session in self.state.sessions.items():
            if token is None or key == token:
                session["revoked"] = True
                expired += 1
        return expired

    # -- metadata ----------------------------------------------------------------------

    def versions(self, request: Request) -> Response:
        major = int(self.max_version)
        return _json(
            [
                {
                    "label": f"v{number}",
                    "url": f"/services/data/v{number}.0",
                    "version": f"{number}.0",
                }
                for number in range(major - 2, major + 1)
            ]
        )

    def resources(self, version: str) -> Response:
        base = f"/services/data/{version}"
        names = ("sobjects", "query", "queryAll", "composite", "limits")
        return _json({name: f"{base}/{name}" for name in names})

    # -- queries -----------------------------------------------------------------------

    def query(self, request: Request, version: str) -> Response:
        text = request.query_params.get("q")
        if text is None:
            raise SalesforceError(400, "MALFORMED_QUERY", "Missing query parameter 'q'")
        parsed = soql.parse(text)
        total, rows = soql.execute(self.state, parsed, version)
        batch = _batch_size(request.headers.get("sforce-query-options", ""))
        if parsed.count_only or len(rows) <= batch:
            return _json({"totalSize": total, "done": True, "records": rows})
        locator = self.state.new_cursor(rows, batch)
        return _json(
            {
                "totalSize": total,
                "done": False,
                "nextRecordsUrl": f"/services/data/{version}/query/{locator}-{batch}",
                "records": rows[:batch],
            }
        )

    def query_more(self, locator: str, version: str) -> Response:
        cursor, _, offset_text = locator.rpartition("-")
        stored = self.state.cursors.get(cursor)
        if stored is None or not offset_text.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, batch = stored
        offset = int(offset_text)
        page = rows[offset : offset + batch]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + batch >= len(rows)}
        # The cursor outlives its last page (a client may retry a page whose answer it
        # lost); the oldest cursors are evicted instead, as Salesforce expires idle ones.
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor}-{offset + batch}"
        body["records"] = page
        return _json(body)

    def replication(self, request: Request, obj: SObject, kind: str) -> Response:
        try:
            start = parse_datetime(request.query_params["start"])
            end = parse_datetime(request.query_params["end"])
        except (KeyError, ValueError):
            raise SalesforceError(
                400, "MALFORMED_QUERY", "start and end must be ISO 8601 datetimes"
            ) from None
        now = self.clock.now()
        if start > end or end - start > 30 * 86_400 or start < now - 30 * 86_400:
            raise SalesforceError(
                400,
                "INVALID_REPLICATION_DATE",
                "startDate must chronologically precede endDate and be within the last 30 days",
            )
        start, end = start - start % 60, min(end, now) - min(end, now) % 60
        low, high = format_datetime(start), format_datetime(end)
        covered = format_datetime(end)
        if kind == "updated":
            ids = [
                record_id
                for record_id, record in self.state.records[obj.name].items()
                if low <= record["SystemModstamp"] < high
            ]
            return _json({"ids": ids, "latestDateCovered": covered})
        deleted = [
            {"id": entry["id"], "deletedDate": entry["deletedDate"]}
            for entry in self.state.deleted
            if entry["type"] == obj.name and low <= entry["deletedDate"] < high
        ]
        return _json(
            {
                "deletedRecords": deleted,
                "earliestDateAvailable": format_datetime(now - 30 * 86_400),
                "latestDateCovered": covered,
            }
        )

    # -- single records ----------------------------------------------------------------

    async def create(self, request: Request, obj: SObject) -> Response:
        body = await _body(request, dict)
        record_id = self.state.insert(obj.name, body)
        return _json({"id": record_id, "success": True, "errors": []}, 201)

    async def record(
        self, request: Request, obj: SObject, record_id: str, version: str
    ) -> Response:
        if not is_id(record_id) or self.state.type_of(to_18(record_id)) != obj.name:
            raise not_found()
        match request.method:
            case "GET":
                record = self.state.get(obj.name, record_id)
                if record is None:
                    raise not_found()
                return _json(_render(obj, record, version, request.query_params.get("fields")))
            case "PATCH":
                body = await _body(request, dict)
                self.state.update(obj.name, record_id, body)
                return Response(status_code=204)
            case "DELETE":
                self.state.delete(obj.name, record_id)
                return Response(status_code=204)
        raise SalesforceError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{request.method}' not allowed. Allowed are GET,PATCH,DELETE",
        )

    async def by_external_id(
        self, request: Request, obj: SObject, field_name: str, value: str, version: str
    ) -> Response:
        field = _external_field(obj, field_name)
        matches = self.state.find(obj.name, field, value)
        if request.method == "GET":
            if not matches:
                raise not_found()
            if len(matches) > 1:
                return _json([_url(obj.name, record_id, version) for record_id in matches], 300)
            record = self.state.records[obj.name][matches[0]]
            return _json(_render(obj, record, version, request.query_params.get("fields")))
        body = await _body(request, dict)
        return self._upsert(request, obj, field, value, body, matches, version)

    def _upsert(
        self,
        request: Request,
        obj: SObject,
        field: str,
        value: str,
        body: dict[str, Any],
        matches: list[str],
        version: str,
    ) -> Response:
        """Create (201), update (200 with ``created: false``) or refuse (300) by external id.

        Salesforce answered 204 No Content to an upsert that updated before API 46.0 and
        200 with a body from 46.0 on (systems.md marks the split [mem]); the sandbox does
        the same by version.
        """
        if any(key.lower() == field.lower() for key in body):
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"The external ID field {field} must not be set in the request body",
                [field],
            )
        if len(matches) > 1:
            return _json([_url(obj.name, record_id, version) for record_id in matches], 300)
        if matches:
            self.state.update(obj.name, matches[0], body)
            if float(version[1:]) < 46.0:
                return Response(status_code=204)
            return _json({"id": matches[0], "success": True, "errors": [], "created": False})
        if request.query_params.get("updateOnly", "").lower() == "true":
            raise not_found()
        record_id = self.state.insert(obj.name, {**body, field: value})
        return _json({"id": record_id, "success": True, "errors": [], "created": True}, 201)

    # -- sObject Collections -----------------------------------------------------------

    async def collection(self, request: Request) -> Response:
        if request.method == "DELETE":
            ids = [part for part in request.query_params.get("ids", "").split(",") if part]
            all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
            _check_size(len(ids))
            return self._batch(ids, all_or_none, self._delete_one)
        body = await _body(request, dict)
        records = body.get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records must be a list of objects")
        _check_size(len(records))
        _check_chunks(records)
        all_or_none = bool(body.get("allOrNone", False))
        if request.method == "POST":
            return self._batch(records, all_or_none, self._create_one)
        if request.method == "PATCH":
            return self._batch(records, all_or_none, self._update_one)
        raise not_found()

    async def collection_upsert(self, request: Request, obj: SObject, field_name: str) -> Response:
        field = _external_field(obj, field_name)
        body = await _body(request, dict)
        records = body.get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records must be a list of objects")
        _check_size(len(records))
        all_or_none = bool(body.get("allOrNone", False))

        def upsert_one(record: dict[str, Any]) -> dict[str, Any]:
            values = {key: value for key, value in record.items() if key != "attributes"}
            declared = (record.get("attributes") or {}).get("type", obj.name)
            if sobject(str(declared)) is not obj:
                raise SalesforceError(
                    400, "INVALID_TYPE", f"Record type {declared} does not match {obj.name}"
                )
            key = next((k for k in values if k.lower() == field.lower()), None)
            if key is None or values[key] in (None, ""):
                raise SalesforceError(400, "MISSING_ARGUMENT", f"{field} not specified", [field])
            value = values.pop(key)
            matches = self.state.find(obj.name, field, value)
            if len(matches) > 1:
                raise SalesforceError(
                    300,
                    "DUPLICATE_EXTERNAL_ID",
                    f"{field}: more than one record found for external id field: {matches}",
                    [field],
                )
            if matches:
                self.state.update(obj.name, matches[0], values)
                return {"id": matches[0], "success": True, "errors": [], "created": False}
            record_id = self.state.insert(obj.name, {**values, field: value})
            return {"id": record_id, "success": True, "errors": [], "created": True}

        return self._batch(records, all_or_none, upsert_one)

    def _create_one(self, record: dict[str, Any]) -> dict[str, Any]:
        obj = _record_type(record)
        values = {key: value for key, value in record.items() if key != "attributes"}
        record_id = self.state.insert(obj.name, values)
        return {"id": record_id, "success": True, "errors": []}

    def _update_one(self, record: dict[str, Any]) -> dict[str, Any]:
        obj = _record_type(record)
        values = {key: value for key, value in record.items() if key != "attributes"}
        record_id = values.pop("id", None) or values.pop("Id", None)
        if not isinstance(record_id, str) or not is_id(record_id):
            raise SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
        self.state.update(obj.name, record_id, values)
        return {"id": to_18(record_id), "success": True, "errors": []}

    def _delete_one(self, record_id: str) -> dict[str, Any]:
        type_name = self.state.type_of(to_18(record_id)) if is_id(record_id) else None
        if type_name is None:
            raise SalesforceError(400, "MALFORMED_ID", f"malformed id {record_id}")
        self.state.delete(type_name, record_id)
        return {"id": to_18(record_id), "success": True, "errors": []}

    def _batch(
        self, items: list[Any], all_or_none: bool, operation: Callable[[Any], dict[str, Any]]
    ) -> Response:
        """Per-record results in request order; allOrNone undoes everything on one failure."""
        results: list[dict[str, Any] | None] = [None] * len(items)
        failed = False

        def run(index: int, item: Any) -> None:
            nonlocal failed
            try:
                with self.state.transaction():
                    results[index] = operation(item)
            except SalesforceError as error:
                failed = True
                results[index] = {"success": False, "errors": [error.record_error()]}

        if not all_or_none:
            for index, item in enumerate(items):
                run(index, item)
            return _json(results)
        try:
            with self.state.transaction():
                for index, item in enumerate(items):
                    run(index, item)
                if failed:
                    raise _Rollback
        except _Rollback:
            rolled_back = {"success": False, "errors": [dict(_ROLLED_BACK)]}
            results = [
                result if result is not None and not result["success"] else rolled_back
                for result in results
            ]
        return _json(results)


# -- helpers -----------------------------------------------------------------------------


def _object(type_name: str) -> SObject:
    obj = sobject(type_name)
    if obj is None:
        raise not_found()
    return obj


def _record_type(record: dict[str, Any]) -> SObject:
    type_name = (record.get("attributes") or {}).get("type")
    obj = sobject(str(type_name)) if type_name else None
    if obj is None:
        raise SalesforceError(400, "INVALID_TYPE", "Must send a concrete entity type.")
    return obj


def _external_field(obj: SObject, field_name: str) -> str:
    spec = obj.field(field_name)
    if spec is None or not spec.external_id:
        raise SalesforceError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field_name}",
        )
    return spec.name


def _check_size(count: int) -> None:
    if count > _MAX_COLLECTION:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {_MAX_COLLECTION} records into "
            "this call",
        )


def _check_chunks(records: list[dict[str, Any]]) -> None:
    chunks = 0
    previous = None
    for record in records:
        current = (record.get("attributes") or {}).get("type")
        if current != previous:
            chunks += 1
            previous = current
    if chunks > _MAX_CHUNKS:
        raise SalesforceError(
            400,
            "EXCEEDED_MAX_TYPES_LIMIT",
            f"Cannot have more than {_MAX_CHUNKS} chunks in a single operation. Please rearrange "
            "the data to reduce chunking.",
        )


def _batch_size(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return min(2000, max(200, int(value)))
    return 2000


async def _form(request: Request) -> dict[str, str]:
    """A form-encoded body (parsed here: starlette's parser needs python-multipart)."""
    pairs = urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace"))
    return dict(pairs)


async def _body(request: Request, expected: type) -> Any:
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None
    if not isinstance(body, expected):
        raise SalesforceError(
            400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {expected.__name__}"
        )
    return body


def _describe(obj: SObject) -> dict[str, Any]:
    """A small subset of the describe result: enough to check field names and rules."""
    return {
        "name": obj.name,
        "keyPrefix": obj.key_prefix,
        "fields": [
            {
                "name": spec.name,
                "type": spec.type,
                "nillable": not spec.required,
                "createable": spec.writable,
                "updateable": spec.writable,
                "externalId": spec.external_id,
                "referenceTo": [spec.reference_to] if spec.reference_to else [],
                "relationshipName": spec.relationship,
                "picklistValues": [{"value": value, "active": True} for value in spec.picklist],
            }
            for spec in obj.fields.values()
        ],
        "childRelationships": [
            {"relationshipName": child.name, "childSObject": child.child, "field": child.field}
            for child in obj.children.values()
        ],
    }


def _url(type_name: str, record_id: str, version: str) -> str:
    return f"/services/data/{version}/sobjects/{type_name}/{record_id}"


def _render(
    obj: SObject, record: dict[str, Any], version: str, fields: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": _url(obj.name, record["Id"], version)}
    }
    if fields:
        for name in fields.split(","):
            spec = obj.field(name.strip())
            if spec is None:
                raise SalesforceError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}"
                )
            body[spec.name] = record.get(spec.name)
        return body
    body.update(record)
    return body
