"""A bounded line reader for trio byte streams (trio has none of its own).

``receive_some`` hands back whatever arrived; this buffers it and yields complete lines.
The buffer never grows past ``max_line_bytes`` plus one chunk: a line that long without
its newline raises :class:`LineTooLong` instead of being buffered further, so a client
sending 10 MB costs the daemon about 1 MiB, once.
"""

from __future__ import annotations

import trio

DEFAULT_CHUNK_BYTES = 64 * 1024


class LineTooLong(Exception):
    """A line exceeded the reader's limit; the stream is no longer in step."""


class LineReader:
    """Reads ``\\n``-terminated lines (``\\r\\n`` tolerated) from ``stream``."""

    def __init__(
        self,
        stream: trio.abc.ReceiveStream,
        *,
        max_line_bytes: int,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        if max_line_bytes < 1 or chunk_bytes < 1:
            raise ValueError("max_line_bytes and chunk_bytes must be positive")
        self._stream = stream
        self._max = max_line_bytes
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        # Bytes of the buffer already searched for a newline (so each byte is scanned once).
        self._scanned = 0
        self._eof = False

    async def next_line(self) -> bytes | None:
        """The next line without its terminator; None at end of stream.

        A last line without a newline is returned as a line. Raises LineTooLong when a
        line exceeds ``max_line_bytes``.
        """
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline >= 0:
                if newline > self._max:
                    raise LineTooLong(f"line longer than {self._max} bytes")
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                self._scanned = 0
                return line.removesuffix(b"\r")
            if len(self._buffer) > self._max:
                raise LineTooLong(f"line longer than {self._max} bytes")
            self._scanned = len(self._buffer)
            if self._eof:
                if not self._buffer:
                    return None
                line = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return line.removesuffix(b"\r")
            chunk = await self._stream.receive_some(self._chunk)
            if not chunk:
                self._eof = True
            self._buffer += chunk
