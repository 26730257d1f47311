"""Live iteration with stream() and lines(): exact bytes, Chunk fields, text
decoding, flush timing, ring overflow, several iterators, Ctrl-C, read errors,
the Process context manager and the command line's live view.

Most tests run twice through the ``launch`` fixture: on a ``Process`` made by
``outcap.spawn()``, and on an ``OutputCapture`` reading two ``os.pipe()`` pairs
that a ``subprocess.Popen`` child writes into.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Dict, Iterator, List, Tuple

import pytest

import outcap
from helpers import (
    NUMBERED_LINES_SCRIPT,
    StreamingLauncher,
    Stopwatch,
    child_pids,
    numbered_lines,
    open_fd_targets,
    outcap_thread_count,
    process_name,
    process_state,
    python_command,
    wait_process_gone,
    wait_until,
    write_steps_command,
)
from outcap import OutputCapture, OutputCaptureConfig

MIB = 1024 * 1024


@pytest.fixture(params=["spawn", "pipes"])
def launch(request) -> Iterator[StreamingLauncher]:
    """Start a command with a streaming capture: ``launched = launch(argv, **config_fields)``."""
    launcher = StreamingLauncher(request.param)
    yield launcher
    launcher.close_all()


def joined(chunks: List[outcap.Chunk], stream: str) -> bytes:
    """Return the concatenated data of the chunks of ``stream``."""
    return b"".join(chunk.data for chunk in chunks if chunk.stream == stream)


def error_lines(count: int) -> bytes:
    """Return ``count`` lines ``E0000000\\n``, ``E0000001\\n``, ...: the stderr twin of ``numbered_lines``."""
    return b"".join(b"E%07d\n" % index for index in range(count))


def offset_gaps(chunks: List[outcap.Chunk]) -> List[Tuple[str, int, int]]:
    """Return (stream, expected offset, reported offset) for every chunk whose offset does
    not continue the previous chunk of its stream, after adding the chunk's ``skipped``."""
    next_offset: Dict[str, int] = {"stdout": 0, "stderr": 0}
    gaps = []
    for chunk in chunks:
        expected = next_offset[chunk.stream] + chunk.skipped
        if chunk.offset != expected:
            gaps.append((chunk.stream, expected, chunk.offset))
        next_offset[chunk.stream] = chunk.offset + len(chunk.data)
    return gaps


#: Writes ``out1\n`` and ``out2`` to stdout and ``err1\n`` to stderr, in separate reads.
OUT_ERR_STEPS = ((1, b"out1\n"), 0.05, (2, b"err1\n"), 0.05, (1, b"out2"))


# stream(): exact bytes


@pytest.mark.parametrize(
    ("which", "expected"), [("stdout", b"out1\nout2"), ("stderr", b"err1\n")]
)
def test_stream_one_stream_exact_bytes(launch, which, expected):
    launched = launch(write_steps_command(*OUT_ERR_STEPS))

    chunks = list(launched.source.stream(which))

    assert b"".join(chunk.data for chunk in chunks) == expected
    assert {chunk.stream for chunk in chunks} == {which}


def test_stream_both_exact_bytes(launch):
    launched = launch(write_steps_command(*OUT_ERR_STEPS))

    chunks = list(launched.source.stream("both"))

    assert joined(chunks, "stdout") == b"out1\nout2"
    assert joined(chunks, "stderr") == b"err1\n"


def test_stream_default_is_both(launch):
    launched = launch(write_steps_command(*OUT_ERR_STEPS))

    chunks = list(launched.source.stream())

    assert joined(chunks, "stdout") == b"out1\nout2"
    assert joined(chunks, "stderr") == b"err1\n"


def test_stream_large_output_exact_bytes(launch):
    launched = launch(python_command(NUMBERED_LINES_SCRIPT, "200000"))

    chunks = list(launched.source.stream("stdout"))

    assert b"".join(chunk.data for chunk in chunks) == numbered_lines(200000)
    assert offset_gaps(chunks) == []


def test_stream_empty_output_yields_nothing(launch):
    launched = launch(["true"])

    assert list(launched.source.stream()) == []


# Chunk fields


def test_chunk_fields_of_separate_reads(launch):
    launched = launch(
        write_steps_command((1, b"abc"), 0.05, (2, b"de"), 0.05, (1, b"fg")), flush_interval=0
    )

    chunks = list(launched.source.stream("both"))
    fields = [(chunk.stream, chunk.data, chunk.offset, chunk.skipped) for chunk in chunks]

    assert fields == [("stdout", b"abc", 0, 0), ("stderr", b"de", 0, 0), ("stdout", b"fg", 3, 0)]


def test_chunk_field_types(launch):
    launched = launch(write_steps_command((1, b"x")))

    chunk = next(iter(launched.source.stream()))

    assert type(chunk.stream) is str
    assert type(chunk.data) is bytes
    assert type(chunk.offset) is int
    assert type(chunk.skipped) is int
    assert type(chunk.timestamp) is float


@pytest.mark.parametrize("field", ["stream", "data", "offset", "skipped", "timestamp"])
def test_chunk_fields_read_only(launch, field):
    launched = launch(write_steps_command((1, b"x")))
    chunk = next(iter(launched.source.stream()))

    with pytest.raises(AttributeError):
        setattr(chunk, field, getattr(chunk, field))


def test_chunk_offset_after_ansi_stripping(launch):
    launched = launch(
        write_steps_command((1, b"\x1b[31mred\x1b[0m"), 0.05, (1, b"blue")), flush_interval=0
    )

    chunks = list(launched.source.stream("stdout"))

    assert [(chunk.data, chunk.offset) for chunk in chunks] == [(b"red", 0), (b"blue", 3)]


def test_chunk_timestamps_near_time_time(launch):
    before = time.time()
    launched = launch(write_steps_command(*OUT_ERR_STEPS))

    chunks = list(launched.source.stream())
    after = time.time()

    assert len(chunks) == 3
    # Timestamps have microsecond resolution, so allow 1 ms for rounding.
    assert min(chunk.timestamp for chunk in chunks) >= before - 0.001
    assert max(chunk.timestamp for chunk in chunks) <= after + 0.001


def test_chunk_timestamps_non_decreasing_per_stream(launch):
    steps = []
    for index in range(5):
        steps += [(1, b"out%d\n" % index), 0.02, (2, b"err%d\n" % index), 0.02]
    launched = launch(write_steps_command(*steps), flush_interval=0)

    chunks = list(launched.source.stream())

    for stream in ("stdout", "stderr"):
        stamps = [chunk.timestamp for chunk in chunks if chunk.stream == stream]
        assert len(stamps) == 5
        assert stamps == sorted(stamps)


def test_chunk_timestamp_is_read_time(launch):
    launched = launch(write_steps_command((1, b"a"), 0.3, (1, b"b")))
    assert launched.capture.wait(10.0)
    time.sleep(0.2)
    iterated_at = time.time()

    chunks = list(launched.source.stream("both"))

    assert [chunk.data for chunk in chunks] == [b"a", b"b"]
    assert chunks[0].timestamp < iterated_at - 0.4
    assert chunks[1].timestamp - chunks[0].timestamp > 0.25
    assert chunks[1].timestamp - chunks[0].timestamp < 1.0


def test_stats_count_delivered_chunks(launch):
    launched = launch(write_steps_command((1, b"abc"), 0.05, (2, b"de"), 0.05, (1, b"fg")), flush_interval=0)

    chunks = list(launched.source.stream())

    assert len(chunks) == 3
    assert launched.capture.stats().chunks_delivered == 3


# stream(): invalid arguments, disabled streaming, close()


@pytest.mark.parametrize("method", ["stream", "lines"])
def test_stream_invalid_which_raises_value_error(launch, method):
    launched = launch(["true"])

    with pytest.raises(ValueError, match="bogus"):
        next(iter(getattr(launched.source, method)("bogus")))


@pytest.mark.parametrize("method", ["stream", "lines"])
def test_stream_disabled_raises_streaming_disabled(launch, method):
    launched = launch(["true"], streaming_enabled=False)

    with pytest.raises(outcap.StreamingDisabledError, match="streaming_enabled"):
        next(iter(getattr(launched.source, method)()))


@pytest.mark.parametrize("method", ["stream", "lines"])
def test_stream_after_close_raises_closed(launch, method):
    launched = launch(write_steps_command((1, b"x")))
    assert launched.capture.wait(10.0)
    launched.close()

    with pytest.raises(outcap.CaptureClosedError, match="closed"):
        next(iter(getattr(launched.source, method)()))


def test_stream_running_iterator_finishes_after_close(launch):
    launched = launch(["sh", "-c", "printf 'one\\n'; sleep 0.2; printf 'two\\n'; exec sleep 30"])
    chunks = launched.source.stream("stdout")
    first = next(chunks)
    assert wait_until(lambda: launched.capture.stats().stdout_bytes_read == 8, timeout=5.0)

    with Stopwatch() as watch:
        launched.close()
        rest = list(chunks)

    assert first.data == b"one\n"
    assert b"".join(chunk.data for chunk in rest) == b"two\n"
    assert watch.elapsed < 2.0


def test_stream_blocked_iterator_ends_on_close(launch):
    launched = launch(["sh", "-c", "printf 'one\\n'; exec sleep 30"])
    chunks = launched.source.stream("stdout")
    received: List[bytes] = []
    consumer = threading.Thread(target=lambda: received.extend(chunk.data for chunk in chunks))
    consumer.start()
    assert wait_until(lambda: received == [b"one\n"], timeout=5.0)
    time.sleep(0.1)

    with Stopwatch() as watch:
        launched.close()
        consumer.join(timeout=5.0)

    assert not consumer.is_alive()
    assert received == [b"one\n"]
    assert watch.elapsed < 2.0


# lines()


def test_lines_keep_newline(launch):
    launched = launch(write_steps_command((1, b"a\nbb\n\nccc\n")))

    assert list(launched.source.lines("stdout")) == ["a\n", "bb\n", "\n", "ccc\n"]


def test_lines_keep_carriage_return_inside_line(launch):
    launched = launch(write_steps_command((1, b"a\r\nb\rc\n")))

    assert list(launched.source.lines("stdout")) == ["a\r\n", "b\rc\n"]


def test_lines_yield_last_line_without_newline(launch):
    launched = launch(write_steps_command((1, b"one\ntwo")))

    assert list(launched.source.lines("stdout")) == ["one\n", "two"]


def test_lines_join_line_split_across_reads(launch):
    launched = launch(write_steps_command((1, b"he"), 0.05, (1, b"llo\nwor"), 0.05, (1, b"ld\n")))

    assert list(launched.source.lines("stdout")) == ["hello\n", "world\n"]


@pytest.mark.parametrize(
    ("encoding", "text", "split_at"),
    [
        ("utf-8", "x\u00e9y\n", 2),
        ("utf-8", "x\u20acy\n", 2),
        ("utf-8", "x\u20acy\n", 3),
        ("utf-8", "x\U0001f600y\n", 2),
        ("utf-8", "x\U0001f600y\n", 3),
        ("utf-8", "x\U0001f600y\n", 4),
        ("utf-16-le", "x\u00e9y\n", 3),
        ("utf-16-le", "x\U0001f600y\n", 4),
    ],
)
def test_lines_decode_character_split_across_reads(launch, encoding, text, split_at):
    data = text.encode(encoding)
    launched = launch(write_steps_command((1, data[:split_at]), 0.1, (1, data[split_at:])))

    lines = list(launched.source.lines("stdout", encoding=encoding))

    assert lines == [text]
    # The test only means something if the character really arrived in two reads.
    assert launched.capture.stats().read_calls == 2


def test_lines_invalid_utf8_replaced(launch):
    launched = launch(write_steps_command((1, b"a\xffb\n\xc3(\n")))

    assert list(launched.source.lines("stdout")) == ["a\ufffdb\n", "\ufffd(\n"]


def test_lines_truncated_utf8_at_end_replaced(launch):
    launched = launch(write_steps_command((1, b"ok\n\xe2\x82")))

    assert list(launched.source.lines("stdout")) == ["ok\n", "\ufffd"]


@pytest.mark.parametrize("data", [b"a\xffb\n", b"ok\n\xe2\x82"])
def test_lines_strict_errors_raise(launch, data):
    launched = launch(write_steps_command((1, data)))

    with pytest.raises(UnicodeDecodeError):
        list(launched.source.lines("stdout", errors="strict"))


def test_lines_latin1(launch):
    launched = launch(write_steps_command((1, b"caf\xe9\n"), 0.05, (1, b"\xff")))

    assert list(launched.source.lines("stdout", encoding="latin-1")) == ["caf\u00e9\n", "\u00ff"]


def test_lines_utf16_with_bom(launch):
    data = "h\u00e9llo\nw\u00f6rld\n".encode("utf-16")
    launched = launch(write_steps_command((1, data[:3]), 0.05, (1, data[3:9]), 0.05, (1, data[9:])))

    assert list(launched.source.lines("stdout", encoding="utf-16")) == ["h\u00e9llo\n", "w\u00f6rld\n"]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_lines_binary_output_never_raises(launch, encoding):
    data = bytes(range(256)) * 64
    pieces = [data[start:start + 1000] for start in range(0, len(data), 1000)]
    steps = []
    for piece in pieces:
        steps += [(1, piece), 0.002]
    launched = launch(write_steps_command(*steps), process_ansi=False)

    lines = list(launched.source.lines("stdout", encoding=encoding))

    assert "".join(lines) == data.decode(encoding, "replace")
    # Every line ends at a newline, plus the last line, which has none.
    assert len(lines) == data.count(b"\n") + 1


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_lines_both_keep_each_stream_whole(launch, encoding):
    launched = launch(
        write_steps_command((1, b"out-a"), 0.05, (2, b"err-a"), 0.05, (1, b"-rest\n"), 0.05, (2, b"-rest\n"))
    )

    lines = list(launched.source.lines("both", encoding=encoding))

    assert lines == ["out-a-rest\n", "err-a-rest\n"]


# Progress output, ANSI sequences split across reads


def test_stream_progress_output_arrives_live(launch):
    launched = launch(
        write_steps_command((1, b"10%\r"), 0.3, (1, b"20%\r"), 0.3, (1, b"30%\r"), 0.3, (1, b"40%\r"), 0.3)
    )

    arrivals = []
    chunks = []
    for chunk in launched.source.stream("stdout"):
        arrivals.append(time.time())
        chunks.append(chunk)
    ended = time.time()
    print(f"first chunk arrived {ended - arrivals[0]:.3f} s before the end of the output")

    assert b"".join(chunk.data for chunk in chunks) == b"10%\r20%\r30%\r40%\r"
    assert chunks[0].data == b"10%\r"
    assert len(chunks) == 4
    # The child writes for 0.9 s after the first write and sleeps 0.3 s more.
    assert arrivals[0] < ended - 0.8
    assert chunks[0].timestamp < ended - 0.8


def test_lines_progress_output_is_one_line(launch):
    launched = launch(write_steps_command((1, b"10%\r"), 0.05, (1, b"20%\r"), 0.05, (1, b"done\n")))

    assert list(launched.source.lines("stdout")) == ["10%\r20%\rdone\n"]


def test_stream_strips_ansi_split_across_reads(launch):
    launched = launch(write_steps_command((1, b"\x1b[3"), 0.1, (1, b"1mred\x1b[0m\n")))

    chunks = list(launched.source.stream("stdout"))

    assert b"".join(chunk.data for chunk in chunks) == b"red\n"
    assert launched.capture.stats().ansi_bytes_removed == 9


# flush_interval

#: Writes ``int(argv[1])`` lines, each the time.time() of its write, ``float(argv[2])`` seconds apart.
TIMESTAMPS_SCRIPT = """
import os, sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2])
for index in range(count):
    if index:
        time.sleep(interval)
    os.write(1, b"%.6f\\n" % time.time())
"""


def stream_latencies(source) -> Tuple[List[float], List[outcap.Chunk]]:
    """Return, for every line that a TIMESTAMPS_SCRIPT child writes to stdout, the seconds
    from its write to the arrival of its chunk; return the chunks too."""
    latencies = []
    chunks = []
    for chunk in source.stream("stdout"):
        arrived = time.time()
        chunks.append(chunk)
        for line in chunk.data.splitlines():
            latencies.append(arrived - float(line))
    return latencies, chunks


def test_flush_interval_zero_delivers_each_read(launch):
    launched = launch(python_command(TIMESTAMPS_SCRIPT, "10", "0.05"), flush_interval=0)

    latencies, chunks = stream_latencies(launched.source)
    ordered = sorted(latencies)
    print("latencies in ms: " + ", ".join(f"{latency * 1000:.1f}" for latency in ordered))

    assert len(latencies) == 10
    # Judge the typical write and all but the worst one, so that one scheduling
    # hiccup of the busy test machine does not fail the test.
    assert ordered[5] < 0.01
    assert ordered[8] < 0.05
    assert ordered[9] < 0.25
    first_write = float(chunks[0].data.splitlines()[0])
    # Timestamps have microsecond resolution, so allow 1 ms for rounding.
    assert chunks[0].timestamp >= first_write - 0.001


def test_flush_interval_delivers_sparse_output(launch):
    launched = launch(python_command(TIMESTAMPS_SCRIPT, "3", "0.5"), flush_interval=0.2)

    latencies, _ = stream_latencies(launched.source)
    print(f"latency: max {max(latencies) * 1000:.1f} ms over {len(latencies)} writes")

    assert len(latencies) == 3
    assert max(latencies) < 0.2 + 0.15


def test_flush_interval_batches_frequent_writes(launch):
    launched = launch(python_command(TIMESTAMPS_SCRIPT, "200", "0.005"), flush_interval=0.2)

    latencies, chunks = stream_latencies(launched.source)
    read_calls = launched.capture.stats().read_calls
    print(f"{read_calls} reads in {len(chunks)} chunks; latency: max {max(latencies) * 1000:.1f} ms")

    assert len(latencies) == 200
    # The writes are 5 ms apart, so the reader reads them one by one...
    assert read_calls >= 100
    # ...and the iterator hands them out about once per 0.2 s of the ~1.2 s run.
    assert len(chunks) <= 20
    assert max(latencies) < 0.2 + 0.15


def test_flush_interval_long_still_delivers_at_end(launch):
    launched = launch(write_steps_command((1, b"a"), 0.05, (1, b"b"), 0.05, (2, b"c")), flush_interval=5)

    with Stopwatch() as watch:
        chunks = list(launched.source.stream())

    assert joined(chunks, "stdout") == b"ab"
    assert joined(chunks, "stderr") == b"c"
    # The child exits after about 0.1 s, and its last bytes must not wait out the 5 s interval.
    assert watch.elapsed < 2.0


# A consumer that does not keep up


def test_stream_idle_consumer_does_not_slow_child():
    command = ["head", "-c", str(50 * MIB), "/dev/zero"]
    plain = OutputCaptureConfig(compression_enabled=False)
    streaming = OutputCaptureConfig(streaming_enabled=True, compression_enabled=False)
    outcap.run(command, config=plain)

    with Stopwatch() as plain_watch:
        outcap.run(command, config=plain)
    with Stopwatch() as run_watch:
        run_result = outcap.run(command, config=streaming)
    with Stopwatch() as spawn_watch:
        with outcap.spawn(command, config=streaming) as process:
            chunks = process.stream("stdout")
            first = next(chunks)
            spawn_result = process.wait()
            resumed = next(chunks)
    print(
        f"50 MiB: {plain_watch.elapsed:.3f} s without streaming, {run_watch.elapsed:.3f} s with run(), "
        f"{spawn_watch.elapsed:.3f} s with an idle iterator"
    )

    assert run_result.output.stdout_size == 50 * MIB
    assert spawn_result.output.stdout_size == 50 * MIB
    assert run_watch.elapsed < 3 * plain_watch.elapsed + 0.5
    assert spawn_watch.elapsed < 3 * plain_watch.elapsed + 0.5
    # The idle iterator resumes at the oldest byte of the 10 MiB ring.
    assert resumed.offset == 40 * MIB
    assert first.offset + len(first.data) + resumed.skipped == 40 * MIB


#: Writes numbered_lines(argv[1]) to stdout and error_lines(argv[1]) to stderr,
#: ``argv[2]`` bytes of each at a time, with 1 ms sleeps.
INTERLEAVED_PATTERN_SCRIPT = """
import os, sys, time
count, piece = int(sys.argv[1]), int(sys.argv[2])
out = b"".join(b"%08d\\n" % index for index in range(count))
err = b"".join(b"E%07d\\n" % index for index in range(count))
for start in range(0, len(out), piece):
    os.write(1, out[start:start + piece])
    os.write(2, err[start:start + piece])
    time.sleep(0.001)
"""


def test_stream_lagging_consumer_skips_exactly(launch):
    count = 20000
    patterns = {"stdout": numbered_lines(count), "stderr": error_lines(count)}
    launched = launch(python_command(INTERLEAVED_PATTERN_SCRIPT, str(count), "900"), max_buffer_size=4096)

    chunks = []
    for chunk in launched.source.stream("both"):
        chunks.append(chunk)
        time.sleep(0.01)
    misplaced = [
        (chunk.stream, chunk.offset)
        for chunk in chunks
        if chunk.data != patterns[chunk.stream][chunk.offset:chunk.offset + len(chunk.data)]
    ]
    print(f"{len(chunks)} chunks, {sum(chunk.skipped for chunk in chunks)} bytes skipped")

    assert misplaced == []
    assert offset_gaps(chunks) == []
    for stream, pattern in patterns.items():
        own = [chunk for chunk in chunks if chunk.stream == stream]
        assert sum(len(chunk.data) + chunk.skipped for chunk in own) == len(pattern)
        assert sum(chunk.skipped for chunk in own) > 0
        assert max(len(chunk.data) for chunk in own) <= 4096
        stamps = [chunk.timestamp for chunk in own]
        assert stamps == sorted(stamps)


def test_stats_count_dropped_bytes(launch):
    count = 20000
    launched = launch(python_command(INTERLEAVED_PATTERN_SCRIPT, str(count), "900"), max_buffer_size=4096)

    assert launched.capture.wait(20.0)
    stats = launched.capture.stats()

    assert stats.stdout_bytes_read == 9 * count
    assert stats.stdout_bytes_dropped == 9 * count - 4096
    assert stats.stderr_bytes_dropped == 9 * count - 4096


#: Writes ``count`` lines ``<00000000>\n``, ``<00000001>\n``, ... to stdout,
#: ``argv[2]`` bytes at a time, with 3 ms sleeps.
MARKED_LINES_SCRIPT = """
import os, sys, time
count, piece = int(sys.argv[1]), int(sys.argv[2])
out = b"".join(b"<%08d>\\n" % index for index in range(count))
for start in range(0, len(out), piece):
    os.write(1, out[start:start + piece])
    time.sleep(0.003)
"""


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_lines_lagging_never_join_two_lines(launch, encoding):
    count = 12000
    launched = launch(python_command(MARKED_LINES_SCRIPT, str(count), "1000"), max_buffer_size=4096)
    written = {"<%08d>\n" % index for index in range(count)}
    # After skipped bytes a line may start in the middle of a written line; such
    # a tail has no "<". A line that starts with "<" but was never written
    # joins the start of one line to the end of another.
    tails = {line[start:] for line in written for start in range(1, len(line))}

    lines = []
    for line in launched.source.lines("stdout", encoding=encoding):
        lines.append(line)
        time.sleep(0.0002)
    joined_lines = [line for line in lines if line not in written and line not in tails]
    print(f"{len(lines)} lines, {len(joined_lines)} made of two written lines: {joined_lines[:3]}")

    assert len(lines) < count
    assert joined_lines == []


# Several iterators


def test_stream_late_iterator_sees_every_byte(launch):
    expected = numbered_lines(1000)
    launched = launch(python_command(NUMBERED_LINES_SCRIPT, "1000"))
    live = list(launched.source.stream("stdout"))
    assert launched.capture.wait(10.0)

    late = list(launched.source.stream("stdout"))

    assert b"".join(chunk.data for chunk in live) == expected
    assert b"".join(chunk.data for chunk in late) == expected
    assert late[0].offset == 0
    assert offset_gaps(late) == []


def test_stream_late_iterator_starts_at_oldest(launch):
    expected = numbered_lines(1000)
    launched = launch(python_command(NUMBERED_LINES_SCRIPT, "1000"), max_buffer_size=4096)
    assert launched.capture.wait(10.0)

    late = list(launched.source.stream("stdout"))

    assert b"".join(chunk.data for chunk in late) == expected[-4096:]
    assert late[0].offset == len(expected) - 4096


def test_stream_two_threads_see_every_byte(launch):
    expected = numbered_lines(100000)
    launched = launch(python_command(NUMBERED_LINES_SCRIPT, "100000"))
    iterators = [launched.source.stream("stdout"), launched.source.stream("stdout")]
    results: List[List[outcap.Chunk]] = [[], []]

    def consume(index: int) -> None:
        for chunk in iterators[index]:
            results[index].append(chunk)

    threads = [threading.Thread(target=consume, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20.0)

    assert not any(thread.is_alive() for thread in threads)
    for chunks in results:
        assert b"".join(chunk.data for chunk in chunks) == expected
        assert offset_gaps(chunks) == []


MERGED_STEPS = ((1, b"out1"), 0.05, (2, b"err1"), 0.05, (1, b"out2"), 0.05, (2, b"err2"))
MERGED_ORDER = [("stdout", b"out1"), ("stderr", b"err1"), ("stdout", b"out2"), ("stderr", b"err2")]


def test_stream_both_keeps_write_order(launch):
    launched = launch(write_steps_command(*MERGED_STEPS))

    chunks = list(launched.source.stream("both"))

    assert [(chunk.stream, chunk.data) for chunk in chunks] == MERGED_ORDER


def test_stream_late_both_keeps_write_order(launch):
    launched = launch(write_steps_command(*MERGED_STEPS))
    assert launched.capture.wait(10.0)

    chunks = list(launched.source.stream("both"))

    assert [(chunk.stream, chunk.data) for chunk in chunks] == MERGED_ORDER


def test_stream_abandoned_iterators_leak_nothing(launch):
    threads_before = outcap_thread_count()
    fds_before = open_fd_targets()
    launched = launch(["sh", "-c", "seq 1 100; exec sleep 30"])

    for index in range(50):
        iterator = launched.source.stream() if index % 2 == 0 else launched.source.lines()
        next(iterator)
    del iterator
    launched.close()

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=2.0)
    assert open_fd_targets() == fds_before


# Read errors


def test_capture_read_error_raised_by_wait(tmp_path):
    directory = os.open(tmp_path, os.O_RDONLY)
    try:
        with OutputCapture(OutputCaptureConfig(streaming_enabled=True)) as capture:
            capture.capture_streams(directory, None)
            with pytest.raises(OSError) as raised:
                capture.wait(5.0)
    finally:
        os.close(directory)

    assert raised.value.errno == errno.EISDIR


@pytest.mark.parametrize("method", ["stream", "lines"])
def test_stream_read_error_raised_by_iteration(tmp_path, method):
    directory = os.open(tmp_path, os.O_RDONLY)
    try:
        with OutputCapture(OutputCaptureConfig(streaming_enabled=True)) as capture:
            capture.capture_streams(directory, None)
            with pytest.raises(OSError) as raised:
                list(getattr(capture, method)())
    finally:
        os.close(directory)

    assert raised.value.errno == errno.EISDIR


def test_stream_read_error_raised_after_earlier_bytes(tmp_path, pipes):
    directory = os.open(tmp_path, os.O_RDONLY)
    read_end, write_end = pipes()
    os.write(write_end, b"hello")
    pipes.close(write_end)
    received = []
    try:
        with OutputCapture(OutputCaptureConfig(streaming_enabled=True)) as capture:
            capture.capture_streams(read_end, directory)
            with pytest.raises(OSError) as raised:
                for chunk in capture.stream("both"):
                    received.append(chunk.data)
    finally:
        os.close(directory)

    assert b"".join(received) == b"hello"
    assert raised.value.errno == errno.EISDIR


# Ctrl-C

CTRL_C_SCRIPT = textwrap.dedent(
    """
    import os
    import signal
    import sys
    import time

    import outcap

    # A shell that starts pytest in the background makes it, and so this
    # interpreter, inherit SIGINT as ignored, so install Python's usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode = sys.argv[1]
    config = outcap.OutputCaptureConfig(streaming_enabled=True)


    def report_interrupt():
        print("interrupted at %.6f" % time.time(), flush=True)


    if mode == "run":
        print("ready", flush=True)
        try:
            outcap.run(["sleep", "30"])
        except KeyboardInterrupt:
            report_interrupt()
            raise
    elif mode == "pipe":
        read_end, write_end = os.pipe()
        with outcap.OutputCapture(config) as capture:
            capture.capture_streams(read_end, None)
            print("ready", flush=True)
            try:
                for chunk in capture.stream():
                    pass
            except KeyboardInterrupt:
                report_interrupt()
                raise
    else:
        with outcap.spawn(["sleep", "30"], config=config) as process:
            print(process.pid, flush=True)
            items = process.stream() if mode == "stream" else process.lines()
            try:
                for item in items:
                    pass
            except KeyboardInterrupt:
                report_interrupt()
                raise
    print("returned", flush=True)
    """
)


def find_sleep_child(parent: int) -> int:
    """Return the pid of the ``sleep`` child of ``parent``, waiting up to 10 s for it."""
    found: List[int] = []

    def search() -> bool:
        found[:] = [pid for pid in child_pids(parent) if process_name(pid) == "sleep"]
        return bool(found)

    assert wait_until(search, timeout=10.0)
    return found[0]


@pytest.mark.parametrize("mode", ["stream", "lines", "pipe", "run"])
def test_ctrl_c_interrupts_blocked_iteration(mode):
    with subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, mode],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as interpreter:
        try:
            first_line = interpreter.stdout.readline()
            child = None
            if mode in ("stream", "lines"):
                child = int(first_line)
                assert wait_until(lambda: process_name(child) == "sleep", timeout=10.0)
            elif mode == "run":
                assert first_line == b"ready\n"
                child = find_sleep_child(interpreter.pid)
            else:
                assert first_line == b"ready\n"
            # Let the interpreter block in the iteration.
            time.sleep(0.3)

            sent_at = time.time()
            interpreter.send_signal(signal.SIGINT)
            try:
                stdout, stderr = interpreter.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                interpreter.kill()
                _, stderr = interpreter.communicate()
                pytest.fail(f"the interpreter still ran 10 s after SIGINT; its stderr: {stderr!r}")
        finally:
            interpreter.kill()

    report = stdout.decode().split()
    assert report[:2] == ["interrupted", "at"]
    latency = float(report[2]) - sent_at
    print(f"Ctrl-C latency ({mode}): {latency * 1000:.1f} ms")
    assert latency < 0.5
    assert b"KeyboardInterrupt" in stderr
    assert interpreter.returncode == -signal.SIGINT
    if child is not None:
        assert wait_process_gone(child, timeout=1.0)


# Process as a context manager, wait() and timeouts


def test_process_block_exit_kills_and_reaps_child():
    with Stopwatch() as watch:
        with outcap.spawn(["sleep", "30"]) as process:
            pid = process.pid
            assert wait_until(lambda: process_name(pid) == "sleep", timeout=5.0)

    assert process_state(pid) is None
    assert process.poll() == -signal.SIGTERM
    assert watch.elapsed < 2.0


def test_process_block_exit_kills_after_grace():
    with Stopwatch() as watch:
        with outcap.spawn(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"], kill_grace=0.2) as process:
            pid = process.pid
            assert wait_until(lambda: process.capture.stats().stdout_bytes_read == 6, timeout=5.0)

    assert process_state(pid) is None
    assert process.poll() == -signal.SIGKILL
    assert watch.elapsed >= 0.2
    assert watch.elapsed < 3.0


def test_process_block_exit_kills_whole_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = 'sleep 30 & echo $! > "$0.tmp" && mv "$0.tmp" "$0"; wait'
    with outcap.spawn(["sh", "-c", script, str(pid_file)]):
        assert wait_until(pid_file.exists, timeout=5.0)
        grandchild = int(pid_file.read_text())
        assert wait_until(lambda: process_name(grandchild) == "sleep", timeout=5.0)

    assert wait_process_gone(grandchild, timeout=2.0)


def test_process_wait_in_block_returns_result():
    with outcap.spawn(["sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 3"]) as process:
        result = process.wait()

    assert isinstance(result, outcap.ProcessResult)
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err"
    assert result.timed_out is False


def test_process_wait_after_streaming():
    config = OutputCaptureConfig(streaming_enabled=True)
    with outcap.spawn(["sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 3"], config=config) as process:
        chunks = list(process.stream())
        result = process.wait()

    assert joined(chunks, "stdout") == b"out\n"
    assert result.stdout == b"out\n"
    assert result.stderr == b"err"
    assert result.returncode == 3


def test_spawn_timeout_wait_raises_timeout_expired():
    with Stopwatch() as watch:
        with outcap.spawn(["sleep", "30"], timeout=0.3) as process:
            with pytest.raises(outcap.TimeoutExpired) as raised:
                process.wait()

    assert isinstance(raised.value, subprocess.TimeoutExpired)
    assert raised.value.result is not None
    assert raised.value.result.timed_out is True
    assert raised.value.result.returncode == -signal.SIGTERM
    assert watch.elapsed >= 0.3
    assert watch.elapsed < 2.0


def test_process_wait_timeout_leaves_child_running():
    with outcap.spawn(["sleep", "30"]) as process:
        with Stopwatch() as watch:
            with pytest.raises(outcap.TimeoutExpired):
                process.wait(timeout=0.2)
        still_running = process.poll()
        alive = process_name(process.pid)
        process.terminate()
        result = process.wait(timeout=5.0)

    assert still_running is None
    assert alive == "sleep"
    assert watch.elapsed >= 0.2
    assert watch.elapsed < 1.5
    assert result.returncode == -signal.SIGTERM
    assert result.timed_out is False


# Command line live view


def outcap_run_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "outcap", "run", *args]


def test_cli_run_shows_output_live():
    command = outcap_run_command("--", "sh", "-c", "echo one; echo warn >&2; sleep 1; echo two; exit 3")
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as cli:
        first_line: List[bytes] = []
        reader = threading.Thread(target=lambda: first_line.append(cli.stdout.readline()))
        reader.start()
        reader.join(timeout=10.0)
        first_line_at = time.monotonic()
        if reader.is_alive():
            cli.kill()
            reader.join()
            pytest.fail("no line arrived on stdout within 10 s")
        rest, stderr = cli.communicate(timeout=30)
        ended_at = time.monotonic()

    print(f"first line arrived {ended_at - first_line_at:.3f} s before the command ended")
    assert first_line == [b"one\n"]
    assert ended_at - first_line_at > 0.5
    assert rest == b"two\n"
    assert stderr.splitlines()[0] == b"warn"
    assert stderr.splitlines()[1].startswith(b"outcap: exit 3 ")
    assert len(stderr.splitlines()) == 2
    assert cli.returncode == 3


def test_cli_run_quiet_shows_only_summary():
    completed = subprocess.run(
        outcap_run_command("--quiet", "--", "sh", "-c", "echo one; echo warn >&2; exit 3"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )

    assert completed.stdout == b""
    assert completed.stderr.startswith(b"outcap: exit 3 ")
    assert len(completed.stderr.splitlines()) == 1
    assert completed.returncode == 3
