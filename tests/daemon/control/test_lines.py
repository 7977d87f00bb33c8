"""The bounded line reader."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from daemon.control.lines import LineReader, LineTooLong


class Chunks(trio.abc.ReceiveStream):
    """Hands out the given chunks one per receive_some, then EOF; counts bytes read."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.read = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if max_bytes is not None and len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self.chunks.insert(0, rest)
        self.read += len(chunk)
        return chunk

    async def aclose(self) -> None:
        pass


async def read_all(reader: LineReader) -> list[bytes]:
    lines = []
    while (line := await reader.next_line()) is not None:
        lines.append(line)
    return lines


async def test_lines_split_across_chunks_and_crlf() -> None:
    stream = Chunks(b'{"a"', b':1}\r\n{"b":2}\n\n{"c"', b":3}")

    lines = await read_all(LineReader(stream, max_line_bytes=100))

    assert lines == [b'{"a":1}', b'{"b":2}', b"", b'{"c":3}']


async def test_a_line_at_the_limit_is_fine() -> None:
    stream = Chunks(b"x" * 10 + b"\n")

    assert await read_all(LineReader(stream, max_line_bytes=10)) == [b"x" * 10]


async def test_an_oversized_line_raises_without_buffering_the_rest() -> None:
    stream = Chunks(b"y" * 10_000_000 + b"\n")
    reader = LineReader(stream, max_line_bytes=1000, chunk_bytes=512)

    with pytest.raises(LineTooLong):
        await reader.next_line()

    assert stream.read <= 1000 + 512


async def test_an_oversized_line_in_one_chunk_raises() -> None:
    reader = LineReader(Chunks(b"z" * 50 + b"\nok\n"), max_line_bytes=10)

    with pytest.raises(LineTooLong):
        await reader.next_line()
