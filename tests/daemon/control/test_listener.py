"""Binding the control socket: mode, stale sockets, a live daemon, cleanup."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import trio

from actors.errors import ConfigError, ControlError
from daemon.control import open_control_socket

from .conftest import TIMEOUT_S


async def test_socket_is_0660_in_a_new_0750_directory(tmp_path: Path) -> None:
    path = tmp_path / "run" / "control.sock"

    control = await open_control_socket(str(path))
    try:
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
        assert os.listdir(path.parent) == ["control.sock"]  # no temporary name left
        with trio.fail_after(TIMEOUT_S):
            stream = await trio.open_unix_socket(str(path))
            await stream.aclose()
    finally:
        await control.close()

    assert not path.exists()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening: what a crashed daemon leaves

    control = await open_control_socket(str(path))
    await control.close()


async def test_a_live_daemon_is_never_displaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    first = await open_control_socket(str(path))
    try:
        with pytest.raises(ControlError, match="another pssync daemon is answering") as raised:
            await open_control_socket(str(path))
        assert raised.value.code == "in_use"
        assert path.exists()
    finally:
        await first.close()


async def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("precious")

    with pytest.raises(ControlError, match="is not a socket"):
        await open_control_socket(str(path))

    assert path.read_text() == "precious"


async def test_close_leaves_a_successors_socket(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    control = await open_control_socket(str(path))
    os.unlink(path)
    successor = await open_control_socket(str(path))

    await control.close()

    assert path.exists()
    await successor.close()


async def test_a_path_longer_than_sun_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="longer than 107 bytes"):
        await open_control_socket(str(tmp_path / ("x" * 120)))
