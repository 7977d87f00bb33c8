"""Peer credentials and the mutation policy."""

from __future__ import annotations

import grp
import os
import socket

import pytest

from actors.errors import ConfigError
from daemon.control.peer import CredentialPolicy, Peer, peer_credentials


def test_peer_credentials_come_from_the_kernel() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        peer = peer_credentials(left)

    assert peer == Peer(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())


def policy(groups: set[int]) -> CredentialPolicy:
    return CredentialPolicy(
        uids=frozenset({0, 998}), gids=frozenset({998, 60}), groups_of=lambda uid, gid: groups
    )


@pytest.mark.parametrize(
    ("peer", "groups", "allowed"),
    [
        (Peer(pid=1, uid=0, gid=0), set(), True),  # root
        (Peer(pid=1, uid=998, gid=998), set(), True),  # the service user
        (Peer(pid=1, uid=1000, gid=60), set(), True),  # primary group is the operator group
        (Peer(pid=1, uid=1000, gid=1000), {1000, 60}, True),  # supplementary operator group
        (Peer(pid=1, uid=1234, gid=1234), {1234, 5678}, False),  # anyone else
    ],
)
def test_who_may_mutate(peer: Peer, groups: set[int], allowed: bool) -> None:
    assert policy(groups).may_mutate(peer) is allowed


def test_for_service_allows_root_this_uid_gid_and_the_operator_group() -> None:
    group = grp.getgrgid(os.getgid()).gr_name

    service = CredentialPolicy.for_service(group, uid=998, gid=997)

    assert service.uids == {0, 998}
    assert service.gids == {997, os.getgid()}
    assert CredentialPolicy.for_service("4242", uid=1, gid=1).gids == {1, 4242}


def test_an_unknown_operator_group_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no such group 'no-such-pssync-group'") as raised:
        CredentialPolicy.for_service("no-such-pssync-group")

    assert raised.value.path == "control.operator_group"
