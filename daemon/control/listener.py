"""Binding the control socket: mode 0660 from the start, never stealing a live one.

- The directory is created 0750 if missing (under systemd, ``RuntimeDirectory=`` has
  made it already).
- An existing file at the path is removed only if it is a socket that refuses a test
  connection (a stale socket from a crash). A daemon answering on it means another
  pssync is running: we refuse to start rather than take its socket away.
- ``os.umask`` is process-wide, so changing it around ``bind`` would race with other
  threads (the journal's writer creates files). Instead the socket is bound to a
  temporary name in the same directory, chmod'ed to 0660 (and chgrp'ed to the operator
  group when that is allowed), and only then renamed onto the real path; nobody can
  reach it under the final name with looser permissions, and under the temporary name it
  is not listening yet.
- On exit the path is unlinked only if it is still our socket (same inode), so a
  successor's socket is never removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import stat
from pathlib import Path

import structlog
import trio

from actors.errors import ConfigError, ControlError

SOCKET_MODE = 0o660
DIRECTORY_MODE = 0o750
# Pending connections the kernel queues before accept; operators are few.
BACKLOG = 64
# sun_path is 108 bytes including the terminating NUL (unix(7)).
MAX_PATH_BYTES = 107

log = structlog.get_logger("daemon.control")


class ControlSocket:
    """A bound, listening control socket; :meth:`close` removes it."""

    def __init__(self, path: str, listener: trio.SocketListener, inode: int) -> None:
        self.path = path
        self.listener = listener
        self._inode = inode

    async def close(self) -> None:
        """Stop listening and unlink the path if it is still ours."""
        try:
            current = os.stat(self.path)
        except OSError:
            current = None
        if current is not None and current.st_ino == self._inode:
            try:
                os.unlink(self.path)
            except OSError as exc:
                log.warning("control.unlink_failed", path=self.path, error=str(exc))
        await self.listener.aclose()


async def open_control_socket(path: str, *, group: int | None = None) -> ControlSocket:
    """Bind and listen on ``path``; see the module docstring.

    Raises ConfigError for an unusable path and ControlError(``in_use``) when another
    daemon answers on it.
    """
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ConfigError(
            f"{path!r} is longer than {MAX_PATH_BYTES} bytes (unix(7) limit)",
            path="control.socket_path",
        )
    target = Path(path)
    try:
        target.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create {target.parent}: {exc.strerror or exc}", path="control.socket_path"
        ) from None
    await _remove_stale(path)

    temporary = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}"
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(temporary))
        try:
            os.chmod(temporary, SOCKET_MODE)
            if group is not None:
                _chgrp(temporary, group)
            os.rename(temporary, target)
        except BaseException:
            _unlink_quietly(temporary)
            raise
        inode = os.stat(target).st_ino
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ControlError(
            "failed", f"cannot bind the control socket {path}: {exc.strerror or exc}"
        ) from None
    except BaseException:
        sock.close()
        raise
    return ControlSocket(path, trio.SocketListener(sock), inode)


async def _remove_stale(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError("failed", f"{path} exists and is not a socket; not touching it")
    probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with trio.fail_after(5):
            await probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("control.stale_socket_removed", path=path)
        _unlink_quietly(Path(path))
        return
    except trio.TooSlowError:
        pass  # a full backlog: someone is listening
    except OSError as exc:
        raise ControlError("failed", f"cannot probe {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise ControlError("in_use", f"another pssync daemon is answering on {path}; refusing to start")


def _chgrp(path: Path, group: int) -> None:
    try:
        os.chown(path, -1, group)
    except OSError as exc:
        # Only root or a member of the group may do this; without it the operators
        # reach the socket through the directory's group instead.
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise
        log.warning("control.chgrp_failed", path=str(path), gid=group, error=exc.strerror)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
