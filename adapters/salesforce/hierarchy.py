"""Accounts with their parent chains, read in a few batched queries.

A won deal's account is read together with every account above it: one ``IN`` query per
level of the hierarchy (ids in chunks, so a URL never grows past Salesforce's limits), not
one query per account. The walk stops at ``max_depth`` levels and never loops on a cycle
(Salesforce refuses cycles, but a corrupt org or a half-finished reparenting may show one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import structlog

from ..governor import Lane
from .api import SalesforceApi
from .soql import id_list, select

__all__ = ["AccountChain", "chain_of", "load_accounts"]

_log = structlog.get_logger("pssync.adapters.salesforce")

# 200 quoted 18-character ids keep a query's URL near 5 kB, far below the REST limit.
_IDS_PER_QUERY = 200


class AccountChain(msgspec.Struct, frozen=True, kw_only=True):
    """One account's chain upwards: ``ids[0]`` the account, ``ids[-1]`` the highest reached."""

    ids: tuple[str, ...]
    problem: str = ""
    """Empty when the chain reached a top-level account; else why the walk stopped."""

    @property
    def root(self) -> str:
        return self.ids[-1]


async def load_accounts(
    api: SalesforceApi,
    fields: Iterable[str],
    account_ids: Iterable[str],
    *,
    max_depth: int,
    correlation_id: str,
) -> dict[str, dict[str, Any]]:
    """The records of ``account_ids`` and of every ancestor up to ``max_depth`` levels."""
    columns = select(fields)
    loaded: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(account_ids))
    for _level in range(max_depth + 1):
        if not wanted:
            break
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            chunk = wanted[start : start + _IDS_PER_QUERY]
            soql = f"SELECT {columns} FROM Account WHERE Id IN {id_list(chunk)}"
            for record in await api.query_all(
                soql, lane=Lane.ANALYTICS, correlation_id=correlation_id
            ):
                loaded[str(record["Id"])] = record
        parents = {record.get("ParentId") for record in loaded.values()}
        wanted = sorted(p for p in parents if isinstance(p, str) and p and p not in loaded)
    return loaded


def chain_of(
    account_id: str, accounts: Mapping[str, Mapping[str, Any]], *, max_depth: int
) -> AccountChain:
    """Walk ``ParentId`` from ``account_id`` through ``accounts``, guarding cycles and depth."""
    ids = [account_id]
    seen = {account_id}
    current = accounts.get(account_id)
    while current is not None:
        parent = current.get("ParentId")
        if not parent:
            return AccountChain(ids=tuple(ids))
        if parent in seen:
            return _stopped(ids, f"cycle at {parent}")
        if len(ids) > max_depth:
            return _stopped(ids, f"deeper than {max_depth} levels")
        ids.append(str(parent))
        seen.add(str(parent))
        current = accounts.get(str(parent))
    if len(ids) == 1:
        return _stopped(ids, "account not readable")
    return _stopped(ids[:-1], f"parent {ids[-1]} not readable")


def _stopped(ids: list[str], problem: str) -> AccountChain:
    _log.warning("salesforce.hierarchy_incomplete", account_id=ids[0], problem=problem)
    return AccountChain(ids=tuple(ids), problem=problem)
