"""OutputCapture on raw pipes: bytes, waiting, ring truncation, ANSI stripping,
compression, cancel and close, and the threads and descriptors it releases."""

from __future__ import annotations

import datetime
import gc
import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import pytest

import outcap
from helpers import Stopwatch, open_fd_count, open_fd_targets, outcap_thread_count, wait_until
from outcap import OutputCapture, OutputCaptureConfig

#: 5000 bytes of text, every 4-byte group distinct, so a wrong tail shows.
TEXT_5000 = b"".join(b"%04d" % index for index in range(1250))

ANSI_INPUT = b"\x1b[31mred\x1b[0m\tx\r\n\x00"
ANSI_STRIPPED = b"red\tx\r\n\x00"


def capture_bytes(pipes, stdout: bytes = b"", stderr: bytes = b"", **config_fields):
    """Capture ``stdout`` and ``stderr`` written into two fresh pipes; return the closed capture."""
    capture = OutputCapture(OutputCaptureConfig(**config_fields))
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    capture.capture_streams(out_read, err_read)
    os.write(out_write, stdout)
    os.write(err_write, stderr)
    pipes.close(out_write)
    pipes.close(err_write)
    finished = capture.wait(5.0)
    capture.close()
    assert finished
    return capture


def decode_one_gzip_member(data: bytes) -> tuple:
    """Decode ``data`` as one gzip member; return (plain bytes, end of member reached, bytes after it)."""
    decoder = zlib.decompressobj(wbits=31)
    plain = decoder.decompress(data)
    return plain, decoder.eof, decoder.unused_data


# Bytes and sizes


def test_capture_exact_bytes_from_test(pipes):
    capture = capture_bytes(pipes, stdout=b"hello\n", stderr=b"oops")
    output = capture.get_output()

    assert output.stdout == b"hello\n"
    assert output.stderr == b"oops"
    assert output.stdout_size == 6
    assert output.stderr_size == 4


def test_capture_exact_bytes_from_child(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    capture.capture_streams(out_read, err_read)

    child = subprocess.Popen(
        ["sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2; printf 'more'"],
        stdout=out_write,
        stderr=err_write,
        stdin=subprocess.DEVNULL,
    )
    pipes.close(out_write)
    pipes.close(err_write)
    assert child.wait(10) == 0
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == b"out\nmore"
    assert capture.get_output().stderr == b"err\n"


def test_capture_binary_bytes_kept_without_ansi(pipes):
    data = bytes(range(256)) * 4
    capture = capture_bytes(pipes, stdout=data, process_ansi=False)

    assert capture.get_output().stdout == data


def test_capture_exit_code_none_for_raw_capture(pipes):
    capture = capture_bytes(pipes, stdout=b"x")

    assert capture.get_output().exit_code is None


def test_capture_times_utc_and_ordered(pipes):
    before = datetime.datetime.now(datetime.timezone.utc)
    capture = capture_bytes(pipes, stdout=b"x")
    after = datetime.datetime.now(datetime.timezone.utc)
    output = capture.get_output()

    assert output.capture_started.utcoffset() == datetime.timedelta(0)
    assert output.capture_ended.utcoffset() == datetime.timedelta(0)
    assert output.capture_ended >= output.capture_started
    assert output.duration == output.capture_ended - output.capture_started
    assert output.capture_started >= before - datetime.timedelta(seconds=1)
    assert output.capture_ended <= after + datetime.timedelta(seconds=1)


def test_capture_streaming_flag_false_by_default(pipes):
    output = capture_bytes(pipes, stdout=b"x").get_output()

    assert output.streaming is False
    assert output.stream_channel is None


# wait()


def test_capture_wait_true_after_writers_closed(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    capture.capture_streams(out_read, err_read)
    pipes.close(out_write)
    pipes.close(err_write)
    try:
        assert capture.wait(5.0) is True
    finally:
        capture.close()


def test_capture_wait_times_out_while_writer_open(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    capture.capture_streams(out_read, err_read)
    pipes.close(err_write)
    try:
        with Stopwatch() as watch:
            finished = capture.wait(0.1)

        assert finished is False
        assert watch.elapsed >= 0.09
        assert watch.elapsed < 1.0
    finally:
        capture.close()


def test_capture_wait_negative_timeout_returns_at_once(pipes):
    capture = OutputCapture()
    out_read, _ = pipes()
    capture.capture_streams(out_read, None)
    try:
        with Stopwatch() as watch:
            finished = capture.wait(-5)

        assert finished is False
        assert watch.elapsed < 0.5
    finally:
        capture.close()


def test_capture_wait_negative_timeout_true_when_done(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    capture.capture_streams(out_read, None)
    pipes.close(out_write)
    try:
        assert capture.wait(5.0) is True
        assert capture.wait(-1) is True
    finally:
        capture.close()


def test_capture_wait_returns_soon_after_last_writer_closes(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    capture.capture_streams(out_read, None)
    try:
        assert capture.wait(0.05) is False
        pipes.close(out_write)

        with Stopwatch() as watch:
            finished = capture.wait(5.0)

        assert finished is True
        assert watch.elapsed < 1.0
    finally:
        capture.close()


# capture_streams() arguments


def test_capture_streams_accepts_file_objects(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    with open(out_read, "rb", closefd=False) as out_file, open(err_read, "rb", closefd=False) as err_file:
        capture.capture_streams(out_file, err_file)
    os.write(out_write, b"from file object")
    os.write(err_write, b"err")
    pipes.close(out_write)
    pipes.close(err_write)
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == b"from file object"
    assert capture.get_output().stderr == b"err"


def test_capture_streams_accepts_none_for_stderr(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    capture.capture_streams(out_read, None)
    os.write(out_write, b"only stdout")
    pipes.close(out_write)
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == b"only stdout"
    assert capture.get_output().stderr == b""


def test_capture_streams_accepts_none_for_stdout(pipes):
    capture = OutputCapture()
    err_read, err_write = pipes()
    capture.capture_streams(None, err_read)
    os.write(err_write, b"only stderr")
    pipes.close(err_write)
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == b""
    assert capture.get_output().stderr == b"only stderr"


def test_capture_streams_both_none_finishes_at_once():
    with OutputCapture() as capture:
        capture.capture_streams(None, None)

        assert capture.wait(1.0) is True


def test_capture_caller_fd_stays_open_after_close(pipes):
    out_read, out_write = pipes()
    capture = OutputCapture()
    capture.capture_streams(out_read, None)
    os.write(out_write, b"captured")
    assert wait_until(lambda: capture.get_output().stdout == b"captured")
    capture.close()

    os.fstat(out_read)
    os.write(out_write, b"after close")

    assert os.read(out_read, 100) == b"after close"


def test_capture_keeps_caller_fd_blocking(pipes):
    out_read, _ = pipes()
    with OutputCapture() as capture:
        capture.capture_streams(out_read, None)

        assert os.get_blocking(out_read) is True


def test_capture_caller_file_object_stays_open(pipes):
    out_read, out_write = pipes()
    with open(out_read, "rb", buffering=0, closefd=False) as out_file:
        with OutputCapture() as capture:
            capture.capture_streams(out_file, None)
        os.write(out_write, b"still mine")

        assert out_file.read(100) == b"still mine"


def test_capture_second_capture_streams_raises(pipes):
    out_read, _ = pipes()
    other_read, _ = pipes()
    with OutputCapture() as capture:
        capture.capture_streams(out_read, None)

        with pytest.raises(outcap.CaptureError):
            capture.capture_streams(other_read, None)


def test_capture_streams_rejects_str():
    with OutputCapture() as capture:
        with pytest.raises(TypeError):
            capture.capture_streams("stdout", None)  # type: ignore[arg-type]


def test_capture_streams_rejects_negative_fd():
    with OutputCapture() as capture:
        with pytest.raises(ValueError):
            capture.capture_streams(-1, None)


def test_capture_streams_rejects_closed_fd():
    with OutputCapture() as capture:
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.close(write_end)

        with pytest.raises(OSError):
            capture.capture_streams(read_end, None)


def test_capture_streams_works_after_rejected_argument(pipes):
    out_read, out_write = pipes()
    with OutputCapture() as capture:
        with pytest.raises(ValueError):
            capture.capture_streams(out_read, -1)
        capture.capture_streams(out_read, None)
        os.write(out_write, b"ok")
        pipes.close(out_write)

        assert capture.wait(5.0) is True
        assert capture.get_output().stdout == b"ok"


def test_capture_rejected_argument_leaks_no_fd(pipes):
    out_read, _ = pipes()
    with OutputCapture() as capture:
        before = open_fd_count()

        with pytest.raises(ValueError):
            capture.capture_streams(out_read, -1)

        assert open_fd_count() == before


# Ring buffer truncation


def test_capture_ring_keeps_newest_bytes(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, max_buffer_size=1000)
    output = capture.get_output()

    assert output.stdout == TEXT_5000[-1000:]
    assert output.truncated is True
    assert output.stdout_size == 5000


def test_capture_ring_counts_dropped_bytes(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, max_buffer_size=1000)
    stats = capture.stats()

    assert stats.stdout_bytes_dropped == 4000
    assert stats.stdout_bytes_read == 5000
    assert stats.stderr_bytes_dropped == 0


def test_capture_ring_keeps_newest_bytes_over_many_writes(pipes):
    capture = OutputCapture(OutputCaptureConfig(max_buffer_size=1000))
    out_read, out_write = pipes()
    capture.capture_streams(out_read, None)
    for start in range(0, 5000, 700):
        os.write(out_write, TEXT_5000[start : start + 700])
        time.sleep(0.005)
    pipes.close(out_write)
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == TEXT_5000[-1000:]
    assert capture.stats().stdout_bytes_dropped == 4000


def test_capture_exact_capacity_not_truncated(pipes):
    data = TEXT_5000[:1000]
    capture = capture_bytes(pipes, stdout=data, max_buffer_size=1000)
    output = capture.get_output()

    assert output.stdout == data
    assert output.truncated is False
    assert capture.stats().stdout_bytes_dropped == 0


def test_capture_stderr_truncation_sets_flag(pipes):
    capture = capture_bytes(pipes, stdout=b"short", stderr=TEXT_5000, max_buffer_size=1000)
    output = capture.get_output()

    assert output.truncated is True
    assert output.stderr == TEXT_5000[-1000:]
    assert output.stdout == b"short"
    assert capture.stats().stderr_bytes_dropped == 4000


# ANSI stripping


def test_capture_strips_ansi(pipes):
    capture = capture_bytes(pipes, stdout=ANSI_INPUT, stderr=ANSI_INPUT)
    output = capture.get_output()

    assert output.stdout == ANSI_STRIPPED
    assert output.stderr == ANSI_STRIPPED
    assert output.stdout_size == len(ANSI_INPUT)


def test_capture_counts_removed_ansi_bytes(pipes):
    capture = capture_bytes(pipes, stdout=ANSI_INPUT)

    assert capture.stats().ansi_bytes_removed == len(ANSI_INPUT) - len(ANSI_STRIPPED)


def test_capture_keeps_ansi_when_disabled(pipes):
    capture = capture_bytes(pipes, stdout=ANSI_INPUT, process_ansi=False)

    assert capture.get_output().stdout == ANSI_INPUT
    assert capture.stats().ansi_bytes_removed == 0


def test_capture_strips_sequence_split_across_writes(pipes):
    capture = OutputCapture()
    out_read, out_write = pipes()
    capture.capture_streams(out_read, None)
    os.write(out_write, b"a\x1b[3")
    assert wait_until(lambda: capture.stats().stdout_bytes_read == 4)
    os.write(out_write, b"1mb")
    pipes.close(out_write)
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == b"ab"
    assert capture.stats().ansi_bytes_removed == 5
    assert capture.stats().read_calls >= 2


def test_capture_strip_matches_strip_ansi(pipes):
    data = b"\x1b]0;title\x07plain\x1b(Bmore\x1bPdcs\x1b\\end\x1b[1;2;3Hz"
    capture = capture_bytes(pipes, stdout=data)

    assert capture.get_output().stdout == outcap.strip_ansi(data)
    assert capture.get_output().stdout == b"plainmoreendz"


# Compression


def test_capture_compresses_above_threshold(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, compression_threshold=1000)
    output = capture.get_output()

    assert output.compressed is True
    assert output.stdout != TEXT_5000
    assert gzip.decompress(output.stdout) == TEXT_5000
    assert output.get_stdout() == TEXT_5000


def test_capture_compressed_stream_is_one_gzip_member(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, stderr=TEXT_5000[:3000], compression_threshold=1000)
    output = capture.get_output()

    for stored, plain in ((output.stdout, TEXT_5000), (output.stderr, TEXT_5000[:3000])):
        decoded, eof, unused = decode_one_gzip_member(stored)
        assert decoded == plain
        assert eof is True
        assert unused == b""


def test_capture_compressed_stream_decodes_with_gzip_command(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, compression_threshold=1000)

    decoded = subprocess.run(
        ["gzip", "-d", "-c"], input=capture.get_output().stdout, capture_output=True, check=True, timeout=10
    )

    assert decoded.stdout == TEXT_5000
    assert decoded.stderr == b""


def test_capture_empty_stderr_stays_empty_when_compressed(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, compression_threshold=1000)
    output = capture.get_output()

    assert output.compressed is True
    assert output.stderr == b""
    assert output.get_stderr() == b""


@pytest.mark.parametrize("size", [999, 1000])
def test_capture_not_compressed_at_or_below_threshold(pipes, size):
    capture = capture_bytes(pipes, stdout=TEXT_5000[:size], compression_threshold=1000)
    output = capture.get_output()

    assert output.compressed is False
    assert output.stdout == TEXT_5000[:size]


def test_capture_threshold_counts_both_streams(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000[:600], stderr=TEXT_5000[:401], compression_threshold=1000)
    output = capture.get_output()

    assert output.compressed is True
    assert output.get_stdout() == TEXT_5000[:600]
    assert output.get_stderr() == TEXT_5000[:401]


def test_capture_threshold_counts_retained_bytes(pipes):
    capture = capture_bytes(
        pipes, stdout=TEXT_5000, max_buffer_size=500, compression_threshold=1000
    )
    output = capture.get_output()

    assert output.compressed is False
    assert output.stdout == TEXT_5000[-500:]


def test_capture_compression_disabled_never_compresses(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, compression_enabled=False, compression_threshold=0)
    output = capture.get_output()

    assert output.compressed is False
    assert output.stdout == TEXT_5000


def test_capture_zero_threshold_leaves_empty_output_uncompressed(pipes):
    capture = capture_bytes(pipes, compression_threshold=0)
    output = capture.get_output()

    assert output.compressed is False
    assert output.stdout == b""


def test_capture_compression_ratio_none_when_not_compressed(pipes):
    capture = capture_bytes(pipes, stdout=b"small")
    capture.get_output()

    assert capture.stats().compression_ratio is None


def test_capture_compression_ratio_above_one_for_text(pipes):
    capture = capture_bytes(pipes, stdout=TEXT_5000, compression_threshold=1000)
    capture.get_output()

    assert capture.stats().compression_ratio is not None
    assert capture.stats().compression_ratio > 1


# get_output() at any time


def test_capture_get_output_before_capture_streams():
    with OutputCapture() as capture:
        output = capture.get_output()

        assert output.stdout == b""
        assert output.stderr == b""
        assert output.stdout_size == 0
        assert output.exit_code is None


def test_capture_get_output_while_running(pipes):
    out_read, out_write = pipes()
    with OutputCapture() as capture:
        capture.capture_streams(out_read, None)
        os.write(out_write, b"partial")

        assert wait_until(lambda: capture.get_output().stdout == b"partial")
        assert capture.get_output().stdout_size == 7
        assert capture.wait(0) is False


def test_capture_get_output_after_close(pipes):
    capture = capture_bytes(pipes, stdout=b"kept")

    assert capture.get_output().stdout == b"kept"


def test_capture_final_output_stable(pipes):
    capture = capture_bytes(pipes, stdout=b"kept")
    first = capture.get_output()
    time.sleep(0.02)

    assert capture.get_output() == first


# cancel() and close()


def test_capture_cancel_stops_open_writer(pipes):
    out_read, out_write = pipes()
    capture = OutputCapture()
    capture.capture_streams(out_read, None)
    os.write(out_write, b"kept")
    assert wait_until(lambda: capture.get_output().stdout_size == 4)

    with Stopwatch() as watch:
        capture.cancel()
        finished = capture.wait(2.0)

    capture.close()
    assert finished is True
    assert watch.elapsed < 1.0
    assert capture.get_output().stdout == b"kept"


def test_capture_close_is_idempotent(pipes):
    out_read, _ = pipes()
    capture = OutputCapture()
    capture.capture_streams(out_read, None)

    capture.close()
    capture.close()

    assert capture.closed is True


def test_capture_close_without_start():
    capture = OutputCapture()

    capture.close()

    assert capture.closed is True


def test_capture_closed_error_is_capture_error():
    assert issubclass(outcap.CaptureClosedError, outcap.CaptureError)


@pytest.mark.parametrize(
    "call",
    [
        lambda capture: capture.capture_streams(None, None),
        lambda capture: capture.wait(),
        lambda capture: capture.wait(0.1),
        lambda capture: capture.cancel(),
    ],
    ids=["capture_streams", "wait", "wait_timeout", "cancel"],
)
def test_capture_call_after_close_raises_closed(call):
    capture = OutputCapture()
    capture.close()

    with pytest.raises(outcap.CaptureClosedError) as raised:
        call(capture)

    assert "closed" in str(raised.value)


def test_capture_output_stats_close_work_after_close(pipes):
    capture = capture_bytes(pipes, stdout=b"abc")

    assert capture.get_output().stdout == b"abc"
    assert capture.stats().stdout_bytes_read == 3
    capture.close()


def test_capture_context_manager_closes(pipes):
    out_read, _ = pipes()
    with OutputCapture() as capture:
        capture.capture_streams(out_read, None)

    assert capture.closed is True


def test_capture_context_manager_closes_on_error(pipes):
    out_read, _ = pipes()
    with pytest.raises(RuntimeError):
        with OutputCapture() as capture:
            capture.capture_streams(out_read, None)
            raise RuntimeError("boom")

    assert capture.closed is True


# Threads and descriptors


def test_capture_runs_one_reader_thread_per_stream(pipes):
    before = outcap_thread_count()
    out_read, _ = pipes()
    err_read, _ = pipes()
    with OutputCapture() as capture:
        capture.capture_streams(out_read, err_read)

        assert wait_until(lambda: outcap_thread_count() == before + 2, timeout=1.0)


def test_capture_close_stops_reader_threads(pipes):
    threads_before = outcap_thread_count()
    out_read, _ = pipes()
    err_read, _ = pipes()
    capture = OutputCapture()
    capture.capture_streams(out_read, err_read)
    assert wait_until(lambda: outcap_thread_count() == threads_before + 2, timeout=1.0)

    capture.close()

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=1.0)


def test_capture_close_releases_fds(pipes):
    """close() releases every descriptor the capture opened, while the object is still referenced."""
    fds_before = open_fd_targets()
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    capture = OutputCapture()
    capture.capture_streams(out_read, err_read)

    capture.close()
    pipes.close_all()

    assert capture.closed is True
    assert open_fd_targets() == fds_before


def test_capture_dropped_after_finish_releases_fds(pipes):
    fds_before = open_fd_count()
    capture_bytes(pipes, stdout=b"x" * 100, stderr=b"y")
    pipes.close_all()

    assert open_fd_count() == fds_before


def test_capture_drop_unclosed_releases_threads_and_fds(pipes):
    threads_before = outcap_thread_count()
    fds_before = open_fd_count()
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    capture = OutputCapture()
    capture.capture_streams(out_read, err_read)
    os.write(out_write, b"x")
    assert wait_until(lambda: outcap_thread_count() == threads_before + 2, timeout=1.0)

    del capture
    gc.collect()
    pipes.close_all()

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=2.0)
    assert open_fd_count() == fds_before


def test_capture_many_captures_leak_nothing(pipes):
    threads_before = outcap_thread_count()
    fds_before = open_fd_count()

    for _ in range(50):
        capture_bytes(pipes, stdout=b"out", stderr=b"err")
    pipes.close_all()

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=1.0)
    assert open_fd_count() == fds_before


def test_capture_reads_child_output_larger_than_pipe(pipes):
    """A child writing 1 MiB into a 64 KiB pipe finishes: the reader drains it while it runs."""
    out_read, out_write = pipes()
    capture = OutputCapture(OutputCaptureConfig(compression_enabled=False))
    capture.capture_streams(out_read, None)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'z' * 1048576)"],
        stdout=out_write,
        stdin=subprocess.DEVNULL,
    )
    pipes.close(out_write)
    try:
        assert child.wait(20) == 0
    finally:
        child.kill()
        child.wait()
    finished = capture.wait(5.0)
    capture.close()

    assert finished
    assert capture.get_output().stdout == b"z" * 1048576


WAIT_CTRL_C_SCRIPT = textwrap.dedent(
    """
    import os
    import signal
    import outcap

    # A shell that starts pytest in the background makes it, and so this
    # interpreter, inherit SIGINT as ignored; install Python's usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    read_end, write_end = os.pipe()
    capture = outcap.OutputCapture()
    capture.capture_streams(read_end, None)
    print("ready", flush=True)
    capture.wait()
    print("wait returned", flush=True)
    """
)


def test_capture_wait_ctrl_c_raises_keyboard_interrupt():
    with subprocess.Popen(
        [sys.executable, "-c", WAIT_CTRL_C_SCRIPT],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as interpreter:
        try:
            assert interpreter.stdout.readline() == b"ready\n"
            time.sleep(0.2)

            with Stopwatch() as watch:
                interpreter.send_signal(signal.SIGINT)
                try:
                    stdout, stderr = interpreter.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    interpreter.kill()
                    _, stderr = interpreter.communicate()
                    pytest.fail(f"the interpreter still ran 10 s after SIGINT; its stderr: {stderr!r}")
        finally:
            interpreter.kill()

    assert watch.elapsed < 1.0
    assert b"KeyboardInterrupt" in stderr
    assert stdout == b""
