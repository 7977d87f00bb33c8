"""sObject Collections: many record writes in calls of at most 200, results per record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.errors import PermanentError

from ..governor import Lane
from .api import SalesforceApi
from .wire import SaveResult

__all__ = ["BatchWriteError", "write_in_collections"]


class BatchWriteError(PermanentError):
    """Some records of a batched write failed; the others were written.

    ``failed`` maps each failed record's label (a command's id, an external id) to the
    vendor's reason; ``succeeded`` maps the rest to their results.
    """

    def __init__(
        self,
        message: str,
        *,
        failed: dict[str, str],
        succeeded: dict[str, SaveResult],
        system: str = "",
    ) -> None:
        super().__init__(message, system=system, code="PARTIAL_FAILURE")
        self.failed = failed
        self.succeeded = succeeded


async def write_in_collections(
    api: SalesforceApi,
    path_suffix: str,
    records: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    size: int,
    lane: Lane,
    correlation_id: str,
    what: str,
) -> dict[str, SaveResult]:
    """Write labelled ``records`` ``size`` at a time; raise BatchWriteError on any failure.

    ``path_suffix`` is ``""`` for updates by id or ``/{Type}/{ExternalIdField}`` for
    upserts. Every call is made, even after one with failures, so one bad record never
    holds back the others; the error lists every failure.
    """
    succeeded: dict[str, SaveResult] = {}
    failed: dict[str, str] = {}
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        results = await api.collection(
            path_suffix, [record for _, record in chunk], lane=lane, correlation_id=correlation_id
        )
        for (label, _), result in zip(chunk, results, strict=True):
            if result.success:
                succeeded[label] = result
            else:
                failed[label] = result.describe_errors()
    if failed:
        listing = "; ".join(f"{label}: {reason}" for label, reason in failed.items())
        raise BatchWriteError(
            f"{what}: {len(failed)} of {len(records)} records failed — {listing}",
            failed=failed,
            succeeded=succeeded,
            system=api.system,
        )
    return succeeded
