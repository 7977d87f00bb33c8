"""Kantata's response envelope and the few record fields the adapter's logic reads.

Every Kantata response is ``{"count", "meta", "results": [{"key", "id"}], "<plural>":
{id: object}, …side-loads}``. :func:`decode_page` walks ``results`` (the order that
counts; a map can also hold side-loaded objects of the same type) and returns the raw
objects; canonical values come from them through the TOML mapping, and the Structs here
type only what the adapter decides on (ids, times, references). Nothing else is read.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from actors.errors import PayloadError

__all__ = [
    "ExternalReference",
    "Page",
    "ProjectTemplate",
    "Story",
    "Workspace",
    "WorkspaceGroup",
    "WorkspaceResource",
    "as_typed",
    "decode_page",
    "fields_of",
    "same_text",
    "typed",
]

VENDOR = "kantata"
T = TypeVar("T")


class _Result(msgspec.Struct, frozen=True):
    key: str
    id: str


class _Meta(msgspec.Struct, frozen=True):
    count: int = 0
    page_count: int = 0
    page_number: int = 0
    page_size: int = 0


class _Envelope(msgspec.Struct, frozen=True):
    results: list[_Result]
    count: int = 0
    meta: _Meta | None = None


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded response: the ``results`` objects in order, the total and side-loads."""

    records: list[dict[str, Any]]
    count: int
    """Records matching the query across all pages (``meta.count``)."""
    page_count: int
    references: dict[str, dict[str, Any]]
    """Side-loaded ``external_references`` by id (present with ``include=external_references``)."""


class ExternalReference(msgspec.Struct, frozen=True, kw_only=True):
    """A foreign key Kantata keeps for an integration on one of its objects."""

    id: str
    subject_type: str
    subject_id: str
    service_name: str
    service_model: str
    service_model_ref: str


class Workspace(msgspec.Struct, frozen=True, kw_only=True):
    """A project; ``description`` carries pssync's creation marker."""

    id: str
    title: str
    description: str | None = None
    currency: str | None = None
    workspace_group_ids: list[str] = []
    external_reference_ids: list[str] = []


class WorkspaceGroup(msgspec.Struct, frozen=True, kw_only=True):
    """A client, in the sandbox's model (a group with ``company: true``)."""

    id: str
    name: str
    company: bool = False
    external_reference_ids: list[str] = []


class Story(msgspec.Struct, frozen=True, kw_only=True):
    """A task, deliverable (phase) or milestone of a workspace."""

    id: str
    title: str
    workspace_id: str
    story_type: str = "task"
    parent_id: str | None = None
    state: str = "not started"
    updated_at: str = ""


class WorkspaceResource(msgspec.Struct, frozen=True, kw_only=True):
    """A resource slot of a workspace: a role and its hours, named once staffed."""

    id: str
    workspace_id: str
    role_name: str | None = None


class ProjectTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """A project template a workspace can be created from."""

    id: str
    title: str


class Stamped(msgspec.Struct, frozen=True, kw_only=True):
    """What the change feeds order and version by."""

    id: str
    updated_at: str
    workspace_id: str | None = None
    external_reference_ids: list[str] = []


def decode_page(content: bytes, *, what: str) -> Page:
    """Decode one response envelope; ``what`` names the request in a PayloadError."""
    try:
        raw = msgspec.json.decode(content)
        envelope = msgspec.convert(raw, _Envelope)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(str(exc), where=f"{VENDOR} {what}") from exc
    records = []
    for result in envelope.results:
        table = raw.get(result.key)
        record = table.get(result.id) if isinstance(table, dict) else None
        if not isinstance(record, dict):
            raise PayloadError(
                "listed in results but missing from its map",
                where=f"{VENDOR} {what}: {result.key} {result.id}",
            )
        records.append(record)
    references = raw.get("external_references")
    meta = envelope.meta or _Meta(count=envelope.count)
    return Page(
        records=records,
        count=meta.count,
        page_count=meta.page_count,
        references=references if isinstance(references, dict) else {},
    )


def typed(record: dict[str, Any], kind: type[T], *, plural: str) -> T:
    """``record`` as ``kind``; a PayloadError naming the object and field otherwise."""
    try:
        return msgspec.convert(record, kind)
    except msgspec.ValidationError as exc:
        raise PayloadError(str(exc), where=f"{VENDOR} {plural} {record.get('id', '?')}") from exc


def references_of(
    record: dict[str, Any], page: Page, *, service_name: str
) -> list[ExternalReference]:
    """The side-loaded references of ``record`` that belong to ``service_name``."""
    found = []
    for ref_id in record.get("external_reference_ids") or ():
        raw = page.references.get(str(ref_id))
        if raw is None:
            continue
        ref = typed(raw, ExternalReference, plural="external_references")
        if ref.service_name == service_name:
            found.append(ref)
    return found


def as_typed(record: Any, kind: type[T], *, plural: str) -> T:
    """``record`` as ``kind``: raw vendor objects are decoded, typed ones pass through."""
    return record if isinstance(record, kind) else typed(record, kind, plural=plural)


def fields_of(struct: msgspec.Struct) -> dict[str, Any]:
    """A canonical Struct's fields as Python values, for ``EntityMapping.to_vendor``."""
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


def same_text(a: str | None, b: str | None) -> bool:
    """Names and titles compare without case and surrounding blanks."""
    return (a or "").strip().casefold() == (b or "").strip().casefold()
