"""The gateway's stdio byte streams over real pipes and files (what ``serve_stdio`` uses)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from lictor.mcp_proxy.proxy import _FdSink, _FdSource

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(params=["pipe", "socketpair"])
def pipe(request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    """A one-way byte channel, as MCP clients connect stdio (Node.js uses socket pairs)."""
    if request.param == "pipe":
        read, write = os.pipe()
    else:
        reader, writer = socket.socketpair()
        read, write = reader.detach(), writer.detach()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):  # the test closed it to signal the end
            os.close(fd)


async def read_all(source: _FdSource) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(await source.receive())
        except anyio.EndOfStream:
            return b"".join(chunks)


async def test_lines_of_any_size_arrive_whole_and_in_order(pipe: tuple[int, int]) -> None:
    read, write = pipe
    small = b'{"jsonrpc":"2.0","id":1,"result":{}}\n'
    # Larger than the pipe's buffer: the write can only finish while the loop reads.
    large = b'{"text":"' + b"x" * 300_000 + b'"}\n'
    assert len(small) <= select.PIPE_BUF < len(large)
    messages = [small, large, small, large, small]
    sink, source = _FdSink(write), _FdSource(read)

    async def send_all() -> None:
        for message in messages:
            await sink.send(message)
        os.close(write)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(send_all)
            received = await read_all(source)
    assert received == b"".join(messages)


async def test_stdin_redirected_from_a_file_is_read_to_its_end(tmp_path: Path) -> None:
    data = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % i for i in range(5000))
    path = tmp_path / "requests.jsonl"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        with anyio.fail_after(5):
            assert await read_all(_FdSource(fd)) == data
    finally:
        os.close(fd)


async def test_output_to_a_file_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        sink = _FdSink(fd)
        for size in (10, 100_000, 10):
            await sink.send(b"y" * size + b"\n")
    finally:
        os.close(fd)
    assert [len(line) for line in path.read_bytes().splitlines()] == [10, 100_000, 10]
