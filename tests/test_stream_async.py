"""astream() and alines(): the same bytes and lines as stream() and lines(), an
event loop that keeps running while they wait or work, cancellation, errors and
released resources.

Most tests run twice through the ``launch`` fixture: on a ``Process`` made by
``outcap.spawn()``, and on an ``OutputCapture`` reading two ``os.pipe()`` pairs
that a ``subprocess.Popen`` child writes into.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from typing import AsyncIterator, Iterator, List, Optional, TypeVar

import pytest

import outcap
from helpers import (
    NUMBERED_LINES_SCRIPT,
    StreamingLauncher,
    numbered_lines,
    open_fd_targets,
    outcap_thread_count,
    python_command,
    wait_until,
    write_steps_command,
)
from outcap import OutputCapture, OutputCaptureConfig

MIB = 1024 * 1024

Item = TypeVar("Item")


@pytest.fixture(params=["spawn", "pipes"])
def launch(request) -> Iterator[StreamingLauncher]:
    """Start a command with a streaming capture: ``launched = launch(argv, **config_fields)``."""
    launcher = StreamingLauncher(request.param)
    yield launcher
    launcher.close_all()


async def collect(items: AsyncIterator[Item]) -> List[Item]:
    return [item async for item in items]


def joined(chunks: List[outcap.Chunk], stream: str) -> bytes:
    """Return the concatenated data of the chunks of ``stream``."""
    return b"".join(chunk.data for chunk in chunks if chunk.stream == stream)


class Ticker:
    """A task that sleeps 10 ms in a loop and records the longest time between two wake-ups.

    A gap much longer than 10 ms means something blocked the event loop.
    """

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.worst_gap = 0.0
        self._last_wake_up = 0.0
        self._task: Optional[asyncio.Task] = None

    async def _run(self) -> None:
        self._last_wake_up = time.monotonic()
        while True:
            await asyncio.sleep(self.INTERVAL)
            self._record_gap()

    def _record_gap(self) -> None:
        now = time.monotonic()
        self.worst_gap = max(self.worst_gap, now - self._last_wake_up)
        self._last_wake_up = now

    async def __aenter__(self) -> "Ticker":
        self._task = asyncio.create_task(self._run())
        # Let the first wake-up happen, so the gaps measure only the block.
        await asyncio.sleep(self.INTERVAL * 2)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        # The block may have kept the task from waking up at all: count that gap too.
        self._record_gap()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


#: Output on both streams: a line split across reads, a character split across
#: reads, ``\r`` inside a line, invalid UTF-8 and a last line without newline.
MIXED_STEPS = (
    (2, b"err\n"),
    0.05,
    (1, b"one\r\ntw"),
    0.05,
    (1, b"o \xc3"),
    0.05,
    (1, b"\xa9\n\xffend"),
)


# Same bytes and lines as the sync iterators


@pytest.mark.parametrize("which", ["stdout", "stderr", "both"])
def test_astream_same_bytes_as_stream(launch, which):
    launched = launch(write_steps_command(*MIXED_STEPS))
    sync_chunks = launched.source.stream(which)

    async_chunks = asyncio.run(collect(launched.source.astream(which)))
    late_chunks = list(sync_chunks)

    for stream, expected in (("stdout", b"one\r\ntwo \xc3\xa9\n\xffend"), ("stderr", b"err\n")):
        if which in (stream, "both"):
            assert joined(async_chunks, stream) == expected
            assert joined(late_chunks, stream) == expected
        else:
            assert joined(async_chunks, stream) == b""


def test_astream_chunk_fields(launch):
    launched = launch(
        write_steps_command((1, b"abc"), 0.05, (2, b"de"), 0.05, (1, b"fg")), flush_interval=0
    )
    before = time.time()

    chunks = asyncio.run(collect(launched.source.astream()))
    after = time.time()

    fields = [(chunk.stream, chunk.data, chunk.offset, chunk.skipped) for chunk in chunks]
    assert fields == [("stdout", b"abc", 0, 0), ("stderr", b"de", 0, 0), ("stdout", b"fg", 3, 0)]
    # Timestamps have microsecond resolution, so allow 1 ms for rounding.
    assert min(chunk.timestamp for chunk in chunks) >= before - 0.001
    assert max(chunk.timestamp for chunk in chunks) <= after + 0.001


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", ["err\n", "one\r\n", "two \u00e9\n", "\ufffdend"]),
        ("latin-1", ["err\n", "one\r\n", "two \u00c3\u00a9\n", "\u00ffend"]),
    ],
)
def test_alines_same_lines_as_lines(launch, encoding, expected):
    launched = launch(write_steps_command(*MIXED_STEPS))
    sync_lines = launched.source.lines(encoding=encoding)

    async_lines = asyncio.run(collect(launched.source.alines(encoding=encoding)))

    assert async_lines == expected
    assert list(sync_lines) == expected


def test_alines_utf16(launch):
    data = "h\u00e9llo\nw\u00f6rld".encode("utf-16")
    launched = launch(write_steps_command((1, data[:3]), 0.05, (1, data[3:9]), 0.05, (1, data[9:])))

    lines = asyncio.run(collect(launched.source.alines("stdout", encoding="utf-16")))

    assert lines == ["h\u00e9llo\n", "w\u00f6rld"]


def test_alines_strict_errors_raise(launch):
    launched = launch(write_steps_command((1, b"a\xffb\n")))

    with pytest.raises(UnicodeDecodeError):
        asyncio.run(collect(launched.source.alines(errors="strict")))


def test_astream_two_consumers_see_every_byte(launch):
    expected = numbered_lines(100000)
    launched = launch(python_command(NUMBERED_LINES_SCRIPT, "100000"))

    async def consume_twice() -> List[List[outcap.Chunk]]:
        return await asyncio.gather(
            collect(launched.source.astream("stdout")), collect(launched.source.astream("stdout"))
        )

    results = asyncio.run(consume_twice())

    for chunks in results:
        assert b"".join(chunk.data for chunk in chunks) == expected


# Errors


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_invalid_which_raises_value_error(launch, method):
    launched = launch(["true"])

    async def iterate() -> None:
        await collect(getattr(launched.source, method)("bogus"))

    with pytest.raises(ValueError, match="bogus"):
        asyncio.run(iterate())


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_disabled_raises_streaming_disabled(launch, method):
    launched = launch(["true"], streaming_enabled=False)

    async def iterate() -> None:
        await collect(getattr(launched.source, method)())

    with pytest.raises(outcap.StreamingDisabledError, match="streaming_enabled"):
        asyncio.run(iterate())


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_after_close_raises_closed(launch, method):
    launched = launch(write_steps_command((1, b"x")))
    assert launched.capture.wait(10.0)
    launched.close()

    async def iterate() -> None:
        await collect(getattr(launched.source, method)())

    with pytest.raises(outcap.CaptureClosedError, match="closed"):
        asyncio.run(iterate())


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_read_error_raised(tmp_path, method):
    directory = os.open(tmp_path, os.O_RDONLY)
    try:
        with OutputCapture(OutputCaptureConfig(streaming_enabled=True)) as capture:
            capture.capture_streams(directory, None)
            with pytest.raises(OSError) as raised:
                asyncio.run(collect(getattr(capture, method)()))
    finally:
        os.close(directory)

    assert raised.value.errno == errno.EISDIR


# The event loop keeps running

#: Writes 20 MiB to stdout as 100-byte lines, 1 MiB per write with 20 ms
#: sleeps in between, so a consumer both waits and works.
TWENTY_MIB_SCRIPT = """
import os, sys, time
block = (b"x" * 99 + b"\\n") * (1024 * 1024 // 100)
remainder = (b"x" * 99 + b"\\n") * (20 * 1024 * 1024 // 100 - 20 * len(block) // 100)
for index in range(20):
    os.write(1, block)
    time.sleep(0.02)
os.write(1, remainder)
"""


def test_alines_20_mib_keeps_loop_running(launch):
    line_count = 20 * MIB // 100
    # The ring is large enough for all of it, so a slow consumer loses no line.
    launched = launch(python_command(TWENTY_MIB_SCRIPT), max_buffer_size=32 * MIB)

    async def consume() -> tuple:
        count = 0
        wrong_length = 0
        async with Ticker() as ticker:
            async for line in launched.source.alines("stdout"):
                count += 1
                if len(line) != 100:
                    wrong_length += 1
        return count, wrong_length, ticker.worst_gap

    count, wrong_length, worst_gap = asyncio.run(consume())
    print(f"{count} lines; worst event loop gap {worst_gap * 1000:.1f} ms")

    assert count == line_count
    assert wrong_length == 0
    assert worst_gap < 0.1


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_waiting_keeps_loop_running(launch, method):
    launched = launch(["sh", "-c", "sleep 1; echo done"])

    async def consume() -> tuple:
        async with Ticker() as ticker:
            items = await collect(getattr(launched.source, method)("stdout"))
        return items, ticker.worst_gap

    items, worst_gap = asyncio.run(consume())
    print(f"worst event loop gap {worst_gap * 1000:.1f} ms")

    if method == "alines":
        assert items == ["done\n"]
    else:
        assert b"".join(chunk.data for chunk in items) == b"done\n"
    assert worst_gap < 0.1


# Cancellation and resources


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_cancel_is_prompt(launch, method):
    threads_before = outcap_thread_count()
    launched = launch(["sh", "-c", "echo started; exec sleep 30"])
    received = []

    async def consume() -> None:
        async for item in getattr(launched.source, method)("stdout"):
            received.append(item)

    async def cancel_blocked_task() -> float:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        assert not task.done()
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - cancelled_at

    latency = asyncio.run(cancel_blocked_task())
    print(f"cancellation took {latency * 1000:.1f} ms")
    launched.close()

    assert len(received) == 1
    assert latency < 0.2
    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=2.0)


@pytest.mark.parametrize("method", ["astream", "alines"])
def test_astream_running_iterator_finishes_after_close(launch, method):
    launched = launch(["sh", "-c", "printf 'one\\n'; sleep 0.2; printf 'two\\n'; exec sleep 30"])

    async def close_while_iterating() -> tuple:
        items = getattr(launched.source, method)("stdout")
        first = await items.__anext__()
        while launched.capture.stats().stdout_bytes_read < 8:
            await asyncio.sleep(0.01)
        launched.close()
        rest = await asyncio.wait_for(collect(items), timeout=2.0)
        return first, rest

    first, rest = asyncio.run(close_while_iterating())

    if method == "alines":
        assert [first, *rest] == ["one\n", "two\n"]
    else:
        assert first.data + b"".join(chunk.data for chunk in rest) == b"one\ntwo\n"


def test_astream_stats_count_delivered_chunks(launch):
    launched = launch(write_steps_command((1, b"a\n"), 0.05, (2, b"b\n"), 0.05, (1, b"c\n")), flush_interval=0)

    chunks = asyncio.run(collect(launched.source.astream()))

    assert len(chunks) == 3
    assert launched.capture.stats().chunks_delivered == 3


def test_astream_abandoned_iterators_leak_nothing(launch):
    threads_before = outcap_thread_count()
    fds_before = open_fd_targets()
    launched = launch(["sh", "-c", "seq 1 100; exec sleep 30"])

    async def abandon() -> None:
        for index in range(50):
            items = launched.source.astream() if index % 2 == 0 else launched.source.alines()
            await items.__anext__()

    asyncio.run(abandon())
    launched.close()

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=2.0)
    assert open_fd_targets() == fds_before
