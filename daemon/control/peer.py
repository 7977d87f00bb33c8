"""Who is on the other end of a control connection, and may they change anything?

The kernel reports a Unix socket peer's pid, uid and gid as of ``connect()``
(``SO_PEERCRED``, unix(7)); nothing the client sends is trusted for this. Reading is
allowed to any peer that could connect at all — the socket file is mode 0660 in a 0750
directory, so the filesystem already limits who can. Mutating operations are allowed to:

- uid 0;
- the daemon's own uid;
- members of the daemon's own group or of ``[control] operator_group`` — by the peer's
  gid or by the supplementary groups of the peer uid's user (``os.getgrouplist``).

:class:`CredentialPolicy` holds these sets; tests build one with other uids and gids (and
their own group lookup) to play an unprivileged peer.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass

from actors.errors import ConfigError

_UCRED = struct.Struct("3i")  # struct ucred: pid_t pid, uid_t uid, gid_t gid


@dataclass(frozen=True)
class Peer:
    """A connected client's credentials, from the kernel."""

    pid: int
    uid: int
    gid: int

    def describe(self) -> str:
        """``uid 1000 (alice), pid 4242`` for audit trails (``resolved_by``)."""
        try:
            name = pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return f"uid {self.uid}, pid {self.pid}"
        return f"uid {self.uid} ({name}), pid {self.pid}"


def peer_credentials(sock: socket.socket | object) -> Peer:
    """``SO_PEERCRED`` of a connected AF_UNIX socket (a stdlib or trio socket)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)  # type: ignore[attr-defined]
    pid, uid, gid = _UCRED.unpack(raw)
    return Peer(pid=pid, uid=uid, gid=gid)


def user_groups(uid: int, gid: int) -> frozenset[int]:
    """Every group of the user with ``uid`` (primary ``gid`` included); just ``gid`` if
    the uid has no passwd entry (e.g. a DynamicUser of another unit)."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return frozenset({gid})
    return frozenset(os.getgrouplist(name, gid))


# (uid, gid) → the user's groups; may block on NSS, so the server calls it on a thread.
GroupLookup = Callable[[int, int], Collection[int]]


@dataclass(frozen=True, kw_only=True)
class CredentialPolicy:
    """Which peers may run mutating operations."""

    uids: frozenset[int]
    gids: frozenset[int]
    groups_of: GroupLookup = user_groups

    @classmethod
    def for_service(
        cls,
        operator_group: str | None,
        *,
        uid: int | None = None,
        gid: int | None = None,
    ) -> CredentialPolicy:
        """root, this process's uid, its gid and ``operator_group`` (a name or a number).

        Raises ConfigError (``control.operator_group``) if the group does not exist.
        """
        uid = os.getuid() if uid is None else uid
        gid = os.getgid() if gid is None else gid
        gids = {gid}
        if operator_group:
            gids.add(group_id(operator_group))
        return cls(uids=frozenset({0, uid}), gids=frozenset(gids))

    def may_mutate(self, peer: Peer) -> bool:
        """True if ``peer`` may run mutating operations (may call ``groups_of``)."""
        if peer.uid in self.uids or peer.gid in self.gids:
            return True
        return not self.gids.isdisjoint(self.groups_of(peer.uid, peer.gid))


def group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ConfigError(
            f"no such group {group!r} on this host", path="control.operator_group"
        ) from None
