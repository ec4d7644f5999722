"""Framing is independent of chunking: whole, byte by byte, or cut anywhere (h11's ``tr``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lictor.mcp_proxy.translate import LineFramer, Oversized

lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8)


def frame(chunks: list[bytes], limit: int) -> list[bytes | Oversized]:
    framer = LineFramer(max_line_bytes=limit)
    out: list[bytes | Oversized] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    out.extend(framer.close())
    return out


@given(lines, st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), st.data())
def test_any_chunking_gives_the_same_frames(
    body: list[bytes], trailing: bytes, data: st.DataObject
) -> None:
    stream = b"".join(line + b"\n" for line in body) + trailing
    whole = frame([stream], 24)
    byte_by_byte = frame([stream[i : i + 1] for i in range(len(stream))], 24)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert whole == byte_by_byte == frame(pieces, 24)


@given(lines)
def test_lines_within_the_cap_come_out_unchanged(body: list[bytes]) -> None:
    stream = b"".join(line + b"\n" for line in body)
    assert frame([stream], 64) == body


@given(lines)
def test_oversized_lines_never_leak_through(body: list[bytes]) -> None:
    stream = b"".join(line + b"\n" for line in body)
    for item in frame([stream], 10):
        assert isinstance(item, Oversized) or len(item) <= 10
