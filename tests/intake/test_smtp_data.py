"""DATA read in large pieces gives exactly what aiosmtpd's line-by-line reading gives."""

from __future__ import annotations

import asyncio

import pytest

from mailbeacon.intake.smtp_data import DataRead, read_data

LINE_LIMIT = 1001


def read(
    stream: bytes, *, size_limit: int | None = None, reader_limit: int = 2**16, pieces: int = 0
) -> DataRead:
    async def run() -> DataRead:
        reader = asyncio.StreamReader(limit=reader_limit)
        if pieces:
            for start in range(0, len(stream), pieces):
                reader.feed_data(stream[start : start + pieces])
        else:
            reader.feed_data(stream)
        found = await read_data(reader, size_limit, LINE_LIMIT)
        reader.feed_eof()
        assert await reader.read() == b"NEXT\r\n"  # nothing after the end marker was taken
        return found

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("stream", "content"),
    [
        (b".\r\n", b""),
        (b"one line\r\n.\r\n", b"one line\r\n"),
        (b"Subject: x\r\n\r\nbody.\r\nend.\r\n.\r\n", b"Subject: x\r\n\r\nbody.\r\nend.\r\n"),
        (b"..leading dot\r\n.\r\n", b".leading dot\r\n"),
        (b"a\r\n..\r\n...x\r\n.\r\n", b"a\r\n.\r\n..x\r\n"),
        (b"a\r\n.b\r\n.\r\n", b"a\r\nb\r\n"),
        (b"bare\n.\r\nstill in\r\n.\r\n", b"bare\n.\r\nstill in\r\n"),
        (b"dot at end.\r\n\r\n.\r\n", b"dot at end.\r\n\r\n"),
    ],
)
def test_content_and_transparency(stream: bytes, content: bytes) -> None:
    for reader_limit in (2**16, 8, 5):
        for pieces in (0, 1, 3):
            assert read(stream + b"NEXT\r\n", reader_limit=reader_limit, pieces=pieces) == DataRead(content)


def test_a_large_message_read_through_a_small_reader_limit() -> None:
    lines = [f"line {i} of the message, some of them ending in a dot.".encode() for i in range(2000)]
    body = b"".join(b"." + line + b"\r\n" if i % 7 == 0 else line + b"\r\n" for i, line in enumerate(lines))
    expected = b"".join(line + b"\r\n" for line in lines)
    assert read(body + b".\r\nNEXT\r\n", reader_limit=1001) == DataRead(expected)


def test_too_much_data_is_refused_after_the_end() -> None:
    stream = b"x" * 100 + b"\r\n" + b"y" * 100 + b"\r\n.\r\nNEXT\r\n"
    assert read(stream, size_limit=150) == DataRead(None, "552 Error: Too much mail data")
    assert read(stream, size_limit=204) == DataRead(stream[:204])


def test_a_line_over_the_limit_is_refused() -> None:
    assert read(b"x" * 999 + b"\r\n.\r\nNEXT\r\n").content == b"x" * 999 + b"\r\n"
    long = read(b"x" * 1000 + b"\r\n.\r\nNEXT\r\n", reader_limit=64)
    assert long == DataRead(None, "500 Line too long (see RFC5321 4.5.3.1.6)")
