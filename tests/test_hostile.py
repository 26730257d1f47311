"""Hostile children, each run through three paths: ``run()``, ``spawn()`` with a
live ``stream()``, and an ``OutputCapture`` on raw pipes fed by ``subprocess.Popen``.

Every case has a time bound and checks exact bytes, sizes, ``truncated`` and
the exit status. A watchdog SIGKILLs the test's children once a case runs past
its bound, so a hang fails the case instead of stalling the run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import outcap
from helpers import (
    child_pids,
    open_fd_count,
    outcap_thread_count,
    process_alive,
    wait_until,
    write_steps_command,
)
from outcap import OutputCapture, OutputCaptureConfig

MIB = 1024 * 1024
GIB = 1024 * MIB

PATHS = ["run", "spawn", "pipes"]

#: Seconds added to a computed bound for scheduling noise on a loaded machine.
SLACK = 1.5


def numbered(start: int, count: int) -> bytes:
    """Return the lines ``%08d\\n`` for ``start`` to ``start + count - 1``: 9 bytes each, all distinct."""
    return b"".join(b"%08d\n" % index for index in range(start, start + count))


def python_child(source: str) -> List[str]:
    return [sys.executable, "-c", textwrap.dedent(source)]


@dataclasses.dataclass
class Captured:
    """What one path produced for one command."""

    stdout: bytes
    stderr: bytes
    output: outcap.ProcessOutput
    returncode: Optional[int]
    timed_out: bool
    elapsed: float
    #: Bytes the live iterator delivered per stream (spawn path only).
    streamed: Dict[str, bytes] = dataclasses.field(default_factory=dict)
    #: Bytes the live iterator reported as skipped per stream (spawn path only).
    skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
    #: Whether the child was still running when the capture reached EOF, or
    #: when the live iterator ended (None on the run path, which cannot see it).
    alive_at_eof: Optional[bool] = None
    #: Per name, what each iterator from ``open_iterators`` yielded (spawn path only).
    iterated: Dict[str, list] = dataclasses.field(default_factory=dict)


class Watchdog:
    """SIGKILLs the process group of every child of this process after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        for pid in child_pids(os.getpid()):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __enter__(self) -> "Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


def capture_via_run(argv, config, timeout, kill_grace, input) -> Captured:
    started = time.monotonic()
    try:
        result = outcap.run(argv, config=config, timeout=timeout, kill_grace=kill_grace, input=input)
        raised = False
    except outcap.TimeoutExpired as error:
        assert error.result is not None
        result, raised = error.result, True
    elapsed = time.monotonic() - started

    assert result.timed_out == raised
    return Captured(result.get_stdout(), result.get_stderr(), result.output, result.returncode, raised, elapsed)


def capture_via_spawn(argv, config, timeout, kill_grace, input, open_iterators) -> Captured:
    config = config.copy(streaming_enabled=True)
    streamed = {"stdout": bytearray(), "stderr": bytearray()}
    skipped = {"stdout": 0, "stderr": 0}
    next_offset = {"stdout": 0, "stderr": 0}

    started = time.monotonic()
    with outcap.spawn(argv, config=config, timeout=timeout, kill_grace=kill_grace, input=input) as process:
        # wait() closes the capture, so every iterator is opened now and read at the end.
        iterators = open_iterators(process) if open_iterators is not None else {}
        for chunk in process.stream():
            # Each chunk starts where the last one of its stream ended, plus what was lost in between.
            assert chunk.offset == next_offset[chunk.stream] + chunk.skipped
            streamed[chunk.stream] += chunk.data
            skipped[chunk.stream] += chunk.skipped
            next_offset[chunk.stream] = chunk.offset + len(chunk.data)
        alive_at_eof = process.poll() is None
        try:
            result = process.wait()
            raised = False
        except outcap.TimeoutExpired as error:
            assert error.result is not None
            result, raised = error.result, True
    elapsed = time.monotonic() - started
    iterated = {name: list(iterator) for name, iterator in iterators.items()}

    assert result.timed_out == raised
    return Captured(
        result.get_stdout(),
        result.get_stderr(),
        result.output,
        result.returncode,
        raised,
        elapsed,
        {name: bytes(data) for name, data in streamed.items()},
        skipped,
        alive_at_eof,
        iterated,
    )


def end_group(popen: "subprocess.Popen[bytes]", kill_grace: float) -> None:
    """End a child's process group the way ``run()`` does on timeout: SIGTERM (and
    SIGCONT for a stopped child), then SIGKILL after ``kill_grace`` seconds."""
    os.killpg(popen.pid, signal.SIGTERM)
    os.killpg(popen.pid, signal.SIGCONT)
    try:
        popen.wait(kill_grace)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()


def capture_via_pipes(argv, config, timeout, kill_grace) -> Captured:
    capture = OutputCapture(config)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    started = time.monotonic()
    try:
        capture.capture_streams(out_read, err_read)
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out_write, stderr=err_write, start_new_session=True
        )
    except BaseException:
        capture.close()
        raise
    finally:
        # The capture reads its own duplicates, so all four ends are ours to close.
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)

    with capture:
        deadline = None if timeout is None else started + timeout
        alive_at_eof = None
        while popen.poll() is None and (deadline is None or time.monotonic() < deadline):
            if alive_at_eof is None and capture.wait(0.02):
                alive_at_eof = popen.poll() is None
            elif alive_at_eof is not None:
                time.sleep(0.02)
        timed_out = popen.poll() is None
        if timed_out:
            end_group(popen, kill_grace)
        popen.wait()
        if alive_at_eof is None:
            alive_at_eof = False
        # Like run(): give a background grandchild EOF_GRACE, then keep what was read.
        if not capture.wait(outcap.EOF_GRACE):
            capture.cancel()
            assert capture.wait(5.0)
        output = capture.get_output()
    elapsed = time.monotonic() - started

    return Captured(
        output.get_stdout(),
        output.get_stderr(),
        output,
        popen.returncode,
        timed_out,
        elapsed,
        alive_at_eof=alive_at_eof,
    )


def capture_command(
    path: str,
    argv: List[str],
    *,
    bound: float,
    timeout: Optional[float] = None,
    kill_grace: float = 0.5,
    input: Optional[bytes] = None,
    open_iterators: Optional[Callable[[outcap.Process], Dict[str, Iterator[Any]]]] = None,
    **config_fields: Any,
) -> Captured:
    """Run ``argv`` through ``path`` and return what it captured.

    A watchdog kills the children once ``bound`` seconds pass, so a case that
    hangs ends and fails its ``elapsed`` check.
    """
    config = OutputCaptureConfig(**config_fields)
    with Watchdog(bound):
        if path == "run":
            return capture_via_run(argv, config, timeout, kill_grace, input)
        if path == "spawn":
            return capture_via_spawn(argv, config, timeout, kill_grace, input, open_iterators)
        assert input is None, "the pipes path feeds no stdin"
        return capture_via_pipes(argv, config, timeout, kill_grace)


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fail a case that leaves a child process or an outcap thread behind."""
    threads_before = outcap_thread_count()
    yield
    assert wait_until(lambda: not child_pids(os.getpid()), timeout=5.0)
    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=5.0)


# stderr filled first, then stdout

STDERR_FIRST_LINES = 700_000  # 6.3 MB, more than six times a 1 MiB pipe
STDERR_FIRST = python_child(
    f"""
    import sys
    sys.stderr.buffer.write(b"".join(b"%08d\\n" % index for index in range({STDERR_FIRST_LINES})))
    sys.stderr.buffer.flush()
    sys.stdout.buffer.write(b"done\\n")
    """
)


@pytest.mark.parametrize("path", PATHS)
def test_stderr_filled_before_stdout(path):
    expected_stderr = numbered(0, STDERR_FIRST_LINES)

    captured = capture_command(path, STDERR_FIRST, bound=20)

    assert captured.stdout == b"done\n"
    assert captured.stderr == expected_stderr
    assert captured.output.stdout_size == 5
    assert captured.output.stderr_size == len(expected_stderr)
    assert captured.output.truncated is False
    assert captured.returncode == 0
    assert captured.elapsed < 20
    if path == "spawn":
        assert captured.streamed == {"stdout": b"done\n", "stderr": expected_stderr}
        assert captured.skipped == {"stdout": 0, "stderr": 0}


# Large writes alternating between the streams

ALTERNATING_ROUNDS = 16
ALTERNATING_BLOCK = 50_000  # lines of 9 bytes: 450 KB per write, 7.2 MB per stream
ALTERNATING = python_child(
    f"""
    import sys
    block = {ALTERNATING_BLOCK}
    for round in range({ALTERNATING_ROUNDS}):
        first = 2 * round * block
        sys.stdout.buffer.write(b"".join(b"%08d\\n" % index for index in range(first, first + block)))
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(b"".join(b"%08d\\n" % index for index in range(first + block, first + 2 * block)))
        sys.stderr.buffer.flush()
    """
)


@pytest.mark.parametrize("path", PATHS)
def test_alternating_large_writes(path):
    block = ALTERNATING_BLOCK
    expected_stdout = b"".join(numbered(2 * round * block, block) for round in range(ALTERNATING_ROUNDS))
    expected_stderr = b"".join(numbered((2 * round + 1) * block, block) for round in range(ALTERNATING_ROUNDS))

    captured = capture_command(path, ALTERNATING, bound=20)

    assert captured.stdout == expected_stdout
    assert captured.stderr == expected_stderr
    assert captured.output.stdout_size == len(expected_stdout)
    assert captured.output.stderr_size == len(expected_stderr)
    assert captured.output.truncated is False
    assert captured.returncode == 0
    assert captured.elapsed < 20
    if path == "spawn":
        assert captured.streamed == {"stdout": expected_stdout, "stderr": expected_stderr}


# One huge line without a newline, kept in a small ring

HUGE_LINE_NUMBERS = 30 * MIB // 8  # 8 digits each: exactly 30 MiB
HUGE_LINE_RING = 64 * 1024
HUGE_LINE = python_child(
    f"""
    import sys
    sys.stdout.buffer.write(b"".join(b"%08d" % index for index in range({HUGE_LINE_NUMBERS})))
    """
)


def huge_line_tail() -> bytes:
    """The last ``HUGE_LINE_RING`` bytes of the huge line."""
    kept = HUGE_LINE_RING // 8
    return b"".join(b"%08d" % index for index in range(HUGE_LINE_NUMBERS - kept, HUGE_LINE_NUMBERS))


@pytest.mark.parametrize("path", PATHS)
def test_huge_line_keeps_tail(path):
    tail = huge_line_tail()

    captured = capture_command(
        path,
        HUGE_LINE,
        bound=30,
        max_buffer_size=HUGE_LINE_RING,
        open_iterators=lambda process: {"lines": process.lines("stdout")},
    )

    assert captured.stdout == tail
    assert captured.stderr == b""
    assert captured.output.stdout_size == 30 * MIB
    assert captured.output.stderr_size == 0
    assert captured.output.truncated is True
    assert captured.returncode == 0
    assert captured.elapsed < 30
    if path == "spawn":
        delivered = captured.streamed["stdout"]
        assert len(delivered) + captured.skipped["stdout"] == 30 * MIB
        assert delivered.endswith(tail)
        # A lines() iterator read only after the end yields the retained tail as one unfinished line.
        assert captured.iterated["lines"] == [tail.decode("ascii")]


# Binary output: NUL bytes, every byte value, invalid UTF-8

BINARY_STDOUT = (
    bytes(range(256)) * 16
    + b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xed\xa0\x80\n"
    + b"\x00\x00\x1b[31mred\x1b]0;title\x07\r\n\xe2\x82"
)
BINARY_STDERR = b"\x00" * 1000 + bytes(range(255, -1, -1)) + b"\xc0\xaf"


@pytest.mark.parametrize("path", PATHS)
def test_binary_output_exact(path):
    command = write_steps_command((1, BINARY_STDOUT), (2, BINARY_STDERR))

    def open_line_iterators(process: outcap.Process) -> Dict[str, Iterator[str]]:
        return {
            "replace": process.lines("stdout"),
            "surrogateescape": process.lines("stdout", errors="surrogateescape"),
            "latin-1": process.lines("stderr", encoding="latin-1"),
        }

    captured = capture_command(path, command, bound=15, process_ansi=False, open_iterators=open_line_iterators)

    assert captured.stdout == BINARY_STDOUT
    assert captured.stderr == BINARY_STDERR
    assert captured.output.stdout_size == len(BINARY_STDOUT)
    assert captured.output.stderr_size == len(BINARY_STDERR)
    assert captured.output.truncated is False
    assert captured.returncode == 0
    assert captured.elapsed < 15
    if path == "spawn":
        lines = captured.iterated
        assert captured.streamed == {"stdout": BINARY_STDOUT, "stderr": BINARY_STDERR}
        assert "".join(lines["replace"]) == BINARY_STDOUT.decode("utf-8", "replace")
        assert "".join(lines["surrogateescape"]).encode("utf-8", "surrogateescape") == BINARY_STDOUT
        assert "".join(lines["latin-1"]).encode("latin-1") == BINARY_STDERR


# A child that closes stdout and stderr early but keeps running

EARLY_CLOSE_SLEEP = 1.0
EARLY_CLOSE = ["sh", "-c", f"printf before; printf err >&2; exec >&- 2>&-; sleep {EARLY_CLOSE_SLEEP}"]


@pytest.mark.parametrize("path", PATHS)
def test_early_close_reaches_eof_before_exit(path):
    captured = capture_command(path, EARLY_CLOSE, bound=EARLY_CLOSE_SLEEP + 10)

    assert captured.stdout == b"before"
    assert captured.stderr == b"err"
    assert captured.output.stdout_size == 6
    assert captured.output.stderr_size == 3
    assert captured.returncode == 0
    # The capture ends only with the child: run() and wait() wait for the exit.
    assert captured.elapsed >= EARLY_CLOSE_SLEEP
    assert captured.elapsed < EARLY_CLOSE_SLEEP + 10
    if path != "run":
        assert captured.alive_at_eof is True


# A background grandchild that keeps the pipes open


@pytest.mark.parametrize("path", PATHS)
def test_grandchild_holding_pipes(path, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    command = ["sh", "-c", f"printf before; printf err >&2; sleep 30 & echo $! > {pid_file}; exit 0"]
    bound = outcap.EOF_GRACE + SLACK

    try:
        captured = capture_command(path, command, bound=bound + 5)
        grandchild = int(pid_file.read_text())
        grandchild_alive = process_alive(grandchild)
    finally:
        if pid_file.exists() and pid_file.read_text().strip():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass

    assert grandchild_alive
    assert captured.stdout == b"before"
    assert captured.stderr == b"err"
    assert captured.output.stdout_size == 6
    assert captured.output.stderr_size == 3
    assert captured.returncode == 0
    assert captured.elapsed < bound


# Exit by signal

EXIT_SIGNALS = ["HUP", "INT", "QUIT", "ABRT", "KILL", "SEGV", "PIPE", "TERM"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", EXIT_SIGNALS)
def test_exit_by_signal(path, name):
    number = signal.Signals[f"SIG{name}"].value
    # No core file for QUIT, ABRT and SEGV.
    command = ["sh", "-c", f"ulimit -c 0; printf before; printf err >&2; kill -{name} $$"]

    captured = capture_command(path, command, bound=10)

    assert captured.returncode == -number
    assert captured.stdout == b"before"
    assert captured.stderr == b"err"
    assert captured.elapsed < 10
    if path != "pipes":
        assert captured.output.exit_code == -number


# Timeouts: a child that ignores SIGTERM, and a stopped child

TIMEOUT = 0.5
KILL_GRACE = 0.3
CHILD_SLEEP = 4  # longer than every bound below, so only the timeout can end the child early


@pytest.mark.parametrize("path", PATHS)
def test_timeout_kills_child_ignoring_sigterm(path):
    # SIG_IGN survives exec, so the sleep ignores SIGTERM like the shell does.
    command = ["sh", "-c", f"trap '' TERM; printf ready; sleep {CHILD_SLEEP}"]
    bound = TIMEOUT + KILL_GRACE + SLACK

    captured = capture_command(path, command, bound=bound, timeout=TIMEOUT, kill_grace=KILL_GRACE)

    assert captured.elapsed < bound
    assert captured.elapsed >= TIMEOUT + KILL_GRACE
    assert captured.timed_out is True
    assert captured.returncode == -signal.SIGKILL
    assert captured.stdout == b"ready"


@pytest.mark.parametrize("path", PATHS)
def test_timeout_ends_stopped_child(path):
    command = ["sh", "-c", f"printf ready; kill -STOP $$; sleep {CHILD_SLEEP}"]
    kill_grace = 0.5
    bound = TIMEOUT + kill_grace + SLACK

    captured = capture_command(path, command, bound=bound, timeout=TIMEOUT, kill_grace=kill_grace)

    assert captured.elapsed < bound
    assert captured.elapsed >= TIMEOUT
    assert captured.timed_out is True
    assert captured.returncode in (-signal.SIGTERM, -signal.SIGKILL)
    assert captured.stdout == b"ready"


# 10 GiB of output in bounded memory, measured in a fresh interpreter.
# The peak comes from VmHWM in /proc/self/status, reset through
# /proc/self/clear_refs after the warm-up. resource.getrusage() would not do:
# getrusage(2) keeps ru_maxrss across execve, so a fresh interpreter started
# from this process can report this process's own, larger peak.

MEMORY_SCRIPT = """
import json, os, re, subprocess, sys, time
import outcap

def status_kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\\s+(\\d+) kB", status.read()).group(1))

path, size = sys.argv[1], sys.argv[2]
command = ["head", "-c", size, "/dev/zero"]
# Warm up: load the native module and start and join reader threads once.
outcap.run(["true"])
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")  # resets VmHWM to the current resident size
resident_before = status_kib("VmRSS")
started = time.monotonic()
streamed = 0
if path == "run":
    output = outcap.run(command).output
elif path == "spawn":
    config = outcap.OutputCaptureConfig(streaming_enabled=True)
    with outcap.spawn(command, config=config) as process:
        for chunk in process.stream():
            streamed += len(chunk.data) + chunk.skipped
        output = process.wait().output
else:
    capture = outcap.OutputCapture()
    read_end, write_end = os.pipe()
    capture.capture_streams(read_end, None)
    child = subprocess.Popen(command, stdout=write_end, stdin=subprocess.DEVNULL)
    os.close(read_end)
    os.close(write_end)
    child.wait()
    capture.wait()
    output = capture.get_output()
    capture.close()
kept = output.get_stdout()
elapsed = time.monotonic() - started
print(json.dumps({
    "seconds": elapsed,
    "peak_growth_kib": status_kib("VmHWM") - resident_before,
    "stdout_size": output.stdout_size,
    "truncated": output.truncated,
    "kept": len(kept),
    "kept_zeros": kept.count(0),
    "streamed": streamed,
}))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_ten_gib_in_bounded_memory(path):
    completed = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, path, "10G"], capture_output=True, timeout=110, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    figures = json.loads(completed.stdout)
    print(f"10 GiB via {path}: {figures['seconds']:.1f} s, peak RSS growth {figures['peak_growth_kib'] / 1024:.1f} MiB")

    assert figures["peak_growth_kib"] < 64 * 1024
    assert figures["stdout_size"] == 10 * GIB
    assert figures["truncated"] is True
    assert figures["kept"] == OutputCaptureConfig().max_buffer_size
    assert figures["kept_zeros"] == figures["kept"]
    if path == "spawn":
        assert figures["streamed"] == 10 * GIB


# 64 MiB of input for a child that never reads stdin


@pytest.mark.parametrize("path", ["run", "spawn"])
@pytest.mark.parametrize("command", [["true"], ["sleep", "0.2"]], ids=["exits", "sleeps"])
def test_unread_input_returns_promptly(path, command):
    captured = capture_command(path, command, bound=10, input=b"x" * (64 * MIB))

    assert captured.returncode == 0
    assert captured.stdout == b""
    assert captured.stderr == b""
    assert captured.elapsed < 10


# Programs that cannot be started


@pytest.fixture
def not_executable(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return str(script)


@pytest.mark.parametrize("path", ["run", "spawn"])
@pytest.mark.parametrize(
    "kind, error_type",
    [("missing", FileNotFoundError), ("directory", PermissionError), ("not_executable", PermissionError)],
)
def test_unstartable_program(path, kind, error_type, tmp_path, not_executable):
    program = {
        "missing": "outcap-no-such-command",
        "directory": str(tmp_path),
        "not_executable": not_executable,
    }[kind]
    fds_before = open_fd_count()
    start = outcap.run if path == "run" else outcap.spawn

    with pytest.raises(error_type) as raised:
        start([program, "arg"])

    assert raised.value.filename == program
    assert program in str(raised.value)
    assert child_pids(os.getpid()) == []
    assert open_fd_count() == fds_before
