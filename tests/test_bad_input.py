"""Invalid configuration values, arguments, descriptors, paths, size strings and
command-line options.

Each one raises the documented exception type (or, on the command line, exits
with status 2 and a usage message without a traceback), with a message that
names the value and states what is allowed. No case aborts the interpreter or
leaves a child process, a thread or a descriptor behind.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import math
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import outcap
from helpers import Stopwatch, child_pids, open_fd_targets, outcap_thread_count, wait_until
from outcap import OutputCapture, OutputCaptureConfig

STREAMING = OutputCaptureConfig(streaming_enabled=True)


@dataclasses.dataclass
class Context:
    """Values the table's calls need: descriptors and paths set up for one test."""

    tmp_path: Path
    #: A descriptor number that is not open in this process.
    closed_fd: int
    #: A file that exists but has no execute permission.
    not_executable: str


def unused_fd() -> int:
    """Return the highest descriptor number this process may use, checked to be closed."""
    fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
    try:
        os.fstat(fd)
    except OSError as error:
        assert error.errno == errno.EBADF
        return fd
    raise AssertionError(f"descriptor {fd} is open; expected a closed one")


@pytest.fixture
def context(tmp_path) -> Context:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    return Context(tmp_path=tmp_path, closed_fd=unused_fd(), not_executable=str(script))


def message_of(error: BaseException) -> str:
    """Return the text a user sees for ``error``: its message and any notes added to it."""
    return " ".join([str(error), *getattr(error, "__notes__", [])])


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fail a case that leaves a child process, an outcap thread or a descriptor behind."""
    fds_before = open_fd_targets()
    threads_before = outcap_thread_count()
    yield
    assert wait_until(lambda: not child_pids(os.getpid()), timeout=5.0)
    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=5.0)
    assert open_fd_targets() == fds_before


def assign(config: OutputCaptureConfig, name: str, value: Any) -> None:
    setattr(config, name, value)


def signal_running_process(signum: int) -> None:
    with outcap.spawn(["sleep", "10"]) as process:
        process.send_signal(signum)


def capture_streams(stdout: Any = None, stderr: Any = None) -> None:
    with OutputCapture() as capture:
        capture.capture_streams(stdout, stderr)


def capture_streams_twice() -> None:
    with OutputCapture() as capture:
        capture.capture_streams(None, None)
        capture.capture_streams(None, None)


def open_stream(which: Any) -> None:
    with OutputCapture(STREAMING) as capture:
        capture.stream(which)


def open_lines(**options: Any) -> None:
    with OutputCapture(STREAMING) as capture:
        capture.lines(**options)


def wait_on_capture(timeout: Any) -> None:
    with OutputCapture() as capture:
        capture.wait(timeout=timeout)


def wait_on_process(timeout: Any) -> None:
    with outcap.spawn(["true"]) as process:
        process.wait(timeout=timeout)


def case(call: Callable[[Context], Any], error: type, *fragments: str, id: str) -> Any:
    """One table row: ``call(context)`` raises ``error`` with every fragment in its message."""
    return pytest.param(call, error, fragments, id=id)


CASES = [
    # OutputCaptureConfig fields: each invalid kind of value
    case(
        lambda c: OutputCaptureConfig(max_buffer_size=0),
        ValueError,
        "max_buffer_size",
        "0",
        ">= 1",
        id="max_buffer_size-zero",
    ),
    case(
        lambda c: OutputCaptureConfig(max_buffer_size=-1),
        ValueError,
        "max_buffer_size",
        "-1",
        ">= 1",
        id="max_buffer_size-negative",
    ),
    case(
        lambda c: OutputCaptureConfig(max_buffer_size=2**63),
        ValueError,
        "max_buffer_size",
        str(2**63),
        str(2**63 - 1),
        id="max_buffer_size-above-max",
    ),
    case(
        lambda c: OutputCaptureConfig(max_buffer_size=1.5),
        TypeError,
        "max_buffer_size",
        "1.5",
        "int",
        id="max_buffer_size-float",
    ),
    case(
        lambda c: OutputCaptureConfig(max_buffer_size="10M"),
        TypeError,
        "max_buffer_size",
        "'10M'",
        "int",
        id="max_buffer_size-str",
    ),
    case(
        lambda c: OutputCaptureConfig(max_buffer_size=True),
        TypeError,
        "max_buffer_size",
        "True",
        "int",
        id="max_buffer_size-bool",
    ),
    case(
        lambda c: OutputCaptureConfig(max_buffer_size=None),
        TypeError,
        "max_buffer_size",
        "None",
        "int",
        id="max_buffer_size-none",
    ),
    case(
        lambda c: OutputCaptureConfig(streaming_enabled=1),
        TypeError,
        "streaming_enabled",
        "1",
        "True or False",
        id="streaming_enabled-int",
    ),
    case(
        lambda c: OutputCaptureConfig(streaming_enabled="yes"),
        TypeError,
        "streaming_enabled",
        "'yes'",
        "True or False",
        id="streaming_enabled-str",
    ),
    case(
        lambda c: OutputCaptureConfig(flush_interval=-1),
        ValueError,
        "flush_interval",
        "-1",
        ">= 0",
        id="flush_interval-negative",
    ),
    case(
        lambda c: OutputCaptureConfig(flush_interval=math.nan),
        ValueError,
        "flush_interval",
        "nan",
        "finite",
        id="flush_interval-nan",
    ),
    case(
        lambda c: OutputCaptureConfig(flush_interval=math.inf),
        ValueError,
        "flush_interval",
        "inf",
        "finite",
        id="flush_interval-inf",
    ),
    case(
        lambda c: OutputCaptureConfig(flush_interval=datetime.timedelta(seconds=-1)),
        ValueError,
        "flush_interval",
        "timedelta",
        ">= 0",
        id="flush_interval-negative-timedelta",
    ),
    case(
        lambda c: OutputCaptureConfig(flush_interval="0.1"),
        TypeError,
        "flush_interval",
        "'0.1'",
        "seconds",
        id="flush_interval-str",
    ),
    case(
        lambda c: OutputCaptureConfig(flush_interval=True),
        TypeError,
        "flush_interval",
        "True",
        "seconds",
        id="flush_interval-bool",
    ),
    case(
        lambda c: OutputCaptureConfig(compression_enabled=0),
        TypeError,
        "compression_enabled",
        "0",
        "True or False",
        id="compression_enabled-int",
    ),
    case(
        lambda c: OutputCaptureConfig(compression_threshold=-1),
        ValueError,
        "compression_threshold",
        "-1",
        ">= 0",
        id="compression_threshold-negative",
    ),
    case(
        lambda c: OutputCaptureConfig(compression_threshold=1.0),
        TypeError,
        "compression_threshold",
        "1.0",
        "int",
        id="compression_threshold-float",
    ),
    case(
        lambda c: OutputCaptureConfig(process_ansi="no"),
        TypeError,
        "process_ansi",
        "'no'",
        "True or False",
        id="process_ansi-str",
    ),
    case(lambda c: OutputCaptureConfig(max_buf=1), TypeError, "max_buf", id="config-unknown-field"),
    case(
        lambda c: assign(OutputCaptureConfig(), "max_buffer_size", 0),
        ValueError,
        "max_buffer_size",
        "0",
        ">= 1",
        id="config-assign-zero",
    ),
    case(
        lambda c: assign(OutputCaptureConfig(), "colour", True),
        AttributeError,
        "colour",
        "max_buffer_size",
        id="config-assign-unknown-field",
    ),
    case(
        lambda c: OutputCapture({"max_buffer_size": 1}),
        TypeError,
        "config",
        "OutputCaptureConfig",
        id="capture-config-dict",
    ),
    case(lambda c: outcap.run(["true"], config={}), TypeError, "config", "OutputCaptureConfig", id="run-config-dict"),
    # run() args
    case(lambda c: outcap.run(None), TypeError, "args", "None", "sequence", id="args-none"),
    case(lambda c: outcap.run([]), ValueError, "args", "empty", id="args-empty"),
    case(lambda c: outcap.run([""]), FileNotFoundError, "''", id="args-empty-program"),
    case(lambda c: outcap.run(5), TypeError, "args", "5", "sequence", id="args-int"),
    case(lambda c: outcap.run([5]), TypeError, "5", "str", id="args-int-item"),
    case(lambda c: outcap.run(["echo", None]), TypeError, "None", "str", id="args-none-item"),
    case(lambda c: outcap.run([b"\0"]), ValueError, "'\\x00'", "null byte", id="args-nul"),
    case(lambda c: outcap.run({"echo": "x"}), TypeError, "args", "dict", id="args-dict"),
    case(
        lambda c: outcap.run(["outcap-no-such-command"]),
        FileNotFoundError,
        "outcap-no-such-command",
        id="program-missing",
    ),
    case(lambda c: outcap.run([str(c.tmp_path)]), PermissionError, "Permission denied", id="program-directory"),
    case(lambda c: outcap.run([c.not_executable]), PermissionError, "script.sh", id="program-not-executable"),
    # cwd
    case(lambda c: outcap.run(["true"], cwd=c.tmp_path / "missing"), FileNotFoundError, "missing", id="cwd-missing"),
    case(lambda c: outcap.run(["true"], cwd=c.not_executable), NotADirectoryError, "script.sh", id="cwd-file"),
    case(lambda c: outcap.run(["true"], cwd=5), TypeError, "cwd", "5", id="cwd-int"),
    case(lambda c: outcap.run(["true"], cwd="/tmp\0x"), ValueError, "cwd", "null", id="cwd-nul"),
    # env
    case(lambda c: outcap.run(["true"], env={"A=B": "1"}), ValueError, "'A=B'", "'='", id="env-key-equals"),
    case(lambda c: outcap.run(["true"], env={"A\0": "1"}), ValueError, "'A\\x00'", "NUL", id="env-key-nul"),
    case(lambda c: outcap.run(["true"], env={"A": "1\0"}), ValueError, "'1\\x00'", "NUL", id="env-value-nul"),
    case(lambda c: outcap.run(["true"], env={"": "1"}), ValueError, "''", "non-empty", id="env-key-empty"),
    case(lambda c: outcap.run(["true"], env={"A": 1}), TypeError, "'A'", "int", id="env-value-int"),
    case(lambda c: outcap.run(["true"], env=[("A", "1")]), TypeError, "env", "list", id="env-list"),
    # input and stdin
    case(lambda c: outcap.run(["true"], input=5), TypeError, "input", "int", "bytes", id="input-int"),
    case(
        lambda c: outcap.run(["true"], input="x"),
        TypeError,
        "input",
        "str",
        "text=True",
        id="input-str-without-text",
    ),
    case(lambda c: outcap.run(["true"], input=b"x", stdin=0), ValueError, "input", "stdin", id="input-with-stdin"),
    case(lambda c: outcap.run(["true"], stdin=-5), ValueError, "stdin", "-5", id="stdin-negative"),
    case(
        lambda c: outcap.run(["true"], stdin=c.closed_fd),
        OSError,
        "stdin",
        "Bad file descriptor",
        id="stdin-closed-fd",
    ),
    case(lambda c: outcap.run(["true"], stdin=2**31), ValueError, "stdin", str(2**31), id="stdin-above-int-range"),
    case(lambda c: outcap.run(["true"], stdin="x"), TypeError, "stdin", "'x'", id="stdin-str"),
    # timeout and kill_grace
    case(lambda c: outcap.run(["true"], timeout="1"), TypeError, "timeout", "'1'", "seconds", id="timeout-str"),
    case(lambda c: outcap.run(["true"], timeout=math.nan), ValueError, "timeout", "nan", id="timeout-nan"),
    case(
        lambda c: outcap.run(["true"], kill_grace=-1),
        ValueError,
        "kill_grace",
        "-1",
        ">= 0",
        id="kill_grace-negative",
    ),
    case(
        lambda c: outcap.run(["true"], kill_grace=math.nan),
        ValueError,
        "kill_grace",
        "nan",
        "seconds",
        id="kill_grace-nan",
    ),
    case(
        lambda c: outcap.run(["true"], kill_grace=math.inf),
        ValueError,
        "kill_grace",
        "inf",
        "finite",
        id="kill_grace-inf",
    ),
    case(lambda c: outcap.run(["true"], kill_grace=None), TypeError, "kill_grace", "None", id="kill_grace-none"),
    # text mode
    case(
        lambda c: outcap.run(["echo", "x"], text=True, encoding="no-such-codec"),
        LookupError,
        "no-such-codec",
        id="encoding-unknown",
    ),
    case(
        lambda c: outcap.run(["true"], encoding="no-such-codec"),
        LookupError,
        "no-such-codec",
        id="encoding-unknown-no-output",
    ),
    case(
        lambda c: outcap.run(["cat"], input="x", text=True, encoding="no-such-codec"),
        LookupError,
        "no-such-codec",
        id="encoding-unknown-with-input",
    ),
    # capture_streams descriptors
    case(lambda c: capture_streams("x"), TypeError, "stdout", "'x'", id="capture-str"),
    case(lambda c: capture_streams(1.5), TypeError, "stdout", "1.5", id="capture-float"),
    case(lambda c: capture_streams(True), TypeError, "stdout", "True", id="capture-bool"),
    case(lambda c: capture_streams(c.closed_fd), OSError, "stdout", "Bad file descriptor", id="capture-closed-fd"),
    case(
        lambda c: capture_streams(None, c.closed_fd),
        OSError,
        "stderr",
        "Bad file descriptor",
        id="capture-closed-stderr-fd",
    ),
    case(lambda c: capture_streams(-3), ValueError, "stdout", "-3", ">= 0", id="capture-negative"),
    case(lambda c: capture_streams(None, -3), ValueError, "stderr", "-3", ">= 0", id="capture-negative-stderr"),
    case(lambda c: capture_streams(2**40), ValueError, "stdout", str(2**40), id="capture-above-int-range"),
    case(lambda c: capture_streams_twice(), outcap.CaptureError, "capture_streams", "already", id="capture-twice"),
    # waiting and streaming
    case(lambda c: wait_on_capture("x"), TypeError, "timeout", "'x'", id="capture-wait-str"),
    case(lambda c: wait_on_capture(math.nan), ValueError, "timeout", "nan", id="capture-wait-nan"),
    case(lambda c: wait_on_process("x"), TypeError, "timeout", "'x'", id="process-wait-str"),
    case(lambda c: open_stream("x"), ValueError, '"x"', '"both"', id="stream-which-unknown"),
    case(lambda c: open_stream(None), TypeError, "None", "str", id="stream-which-none"),
    case(
        lambda c: OutputCapture().stream(),
        outcap.StreamingDisabledError,
        "streaming_enabled=True",
        id="stream-disabled",
    ),
    case(lambda c: open_lines(encoding="no-such-codec"), LookupError, "no-such-codec", id="lines-encoding-unknown"),
    case(lambda c: open_lines(errors="no-such-handler"), LookupError, "no-such-handler", id="lines-errors-unknown"),
    case(lambda c: open_lines(which="x"), ValueError, '"x"', '"both"', id="lines-which-unknown"),
    case(lambda c: signal_running_process(999), ValueError, "999", id="send-signal-unknown"),
    case(lambda c: signal_running_process(2**40), ValueError, str(2**40), id="send-signal-above-int-range"),
    # ProcessOutput.from_json
    case(
        lambda c: outcap.ProcessOutput.from_json("{not json"),
        ValueError,
        "JSON",
        "line 1 column 2",
        id="json-syntax",
    ),
    case(lambda c: outcap.ProcessOutput.from_json(""), ValueError, "JSON", "EOF", id="json-empty"),
    case(lambda c: outcap.ProcessOutput.from_json("[]"), ValueError, "JSON", "object", id="json-array"),
    case(
        lambda c: outcap.ProcessOutput.from_json('{"exitCode": 0} x'),
        ValueError,
        "JSON",
        "trailing",
        id="json-trailing",
    ),
    case(
        lambda c: outcap.ProcessOutput.from_json('{"exitCode": "x"}'),
        ValueError,
        '"exitCode"',
        '"x"',
        "integer",
        id="json-exit-code-str",
    ),
    case(
        lambda c: outcap.ProcessOutput.from_json('{"stdout": "!!"}'),
        ValueError,
        '"stdout"',
        '"!!"',
        "base64",
        id="json-stdout-not-base64",
    ),
    case(
        lambda c: outcap.ProcessOutput.from_json('{"stdoutSize": -1}'),
        ValueError,
        '"stdoutSize"',
        "-1",
        "0",
        id="json-size-negative",
    ),
    case(
        lambda c: outcap.ProcessOutput.from_json('{"captureStarted": "yesterday"}'),
        ValueError,
        '"captureStarted"',
        '"yesterday"',
        "RFC 3339",
        id="json-time-not-rfc3339",
    ),
    case(lambda c: outcap.ProcessOutput.from_json(b"\xff"), ValueError, "0xff", "utf-8", id="json-not-utf8"),
    case(lambda c: outcap.ProcessOutput.from_json(5), TypeError, "int", "str", id="json-int"),
    # strip_ansi
    case(lambda c: outcap.strip_ansi("str"), TypeError, "str", "bytes", id="strip_ansi-str"),
    case(lambda c: outcap.strip_ansi(5), TypeError, "int", "bytes", id="strip_ansi-int"),
]


@pytest.mark.parametrize("call, error_type, fragments", CASES)
def test_invalid_input_raises(call, error_type, fragments, context):
    with pytest.raises(error_type) as raised:
        call(context)

    text = message_of(raised.value)
    for fragment in fragments:
        assert fragment in text


def test_timeout_negative_counts_as_zero():
    with Stopwatch() as watch:
        with pytest.raises(outcap.TimeoutExpired) as raised:
            outcap.run(["sleep", "10"], timeout=-1)

    assert watch.elapsed < 2.0
    assert raised.value.result.timed_out is True
    assert raised.value.result.returncode == -15


def test_encoding_unknown_does_not_start_command(tmp_path):
    marker = tmp_path / "marker"

    with pytest.raises(LookupError):
        outcap.run(["sh", "-c", f"touch {marker}; echo x"], text=True, encoding="no-such-codec")

    assert not marker.exists()


def test_capture_write_only_fd_raises(pipes):
    read_end, write_end = pipes()
    capture = OutputCapture()

    try:
        with pytest.raises(OSError) as raised:
            capture.capture_streams(write_end, None)
            capture.wait(2.0)
    finally:
        capture.close()

    assert raised.value.errno == errno.EBADF


@pytest.mark.parametrize("seconds", [1e10, 1.8e19, 1e300], ids=["1e10", "1.8e19", "1e300"])
def test_config_large_flush_interval_usable(seconds):
    # OutputCaptureConfig documents every finite flush_interval >= 0 as valid.
    config = OutputCaptureConfig(flush_interval=seconds, streaming_enabled=True)

    with outcap.spawn(["sh", "-c", "echo a; sleep 0.2; echo b"], config=config) as process:
        lines = list(process.lines())
        result = process.wait()

    assert lines == ["a\n", "b\n"]
    assert result.stdout == b"a\nb\n"


# Suspicious inputs again, each in a fresh interpreter: no abort, no Rust panic.
# Each entry is the source to run and the name of the exception it must raise,
# or None where the table above already checks the type and only a crash matters.

NO_EXCEPTION = "no exception"

SUSPICIOUS: Dict[str, Tuple[str, Optional[str]]] = {
    "stdin-closed-fd": ("outcap.run(['true'], stdin=CLOSED_FD)", "OSError"),
    "stdin-above-int-range": ("outcap.run(['true'], stdin=2**31)", None),
    "capture-closed-fd": ("outcap.OutputCapture().capture_streams(CLOSED_FD, CLOSED_FD)", "OSError"),
    "capture-negative": ("outcap.OutputCapture().capture_streams(-1, -1)", "ValueError"),
    "capture-above-int-range": ("outcap.OutputCapture().capture_streams(2**40, None)", None),
    "ring-of-2**45-bytes": (
        "outcap.OutputCapture(outcap.OutputCaptureConfig(max_buffer_size=2**45))",
        "MemoryError",
    ),
    "ring-of-2**62-bytes": (
        "outcap.OutputCapture(outcap.OutputCaptureConfig(max_buffer_size=2**62))",
        "MemoryError",
    ),
    "ring-of-max-bytes": (
        "outcap.run(['true'], config=outcap.OutputCaptureConfig(max_buffer_size=2**63 - 1))",
        "MemoryError",
    ),
    "send-signal-above-int-range": ("p = outcap.spawn(['sleep', '10']); p.send_signal(2**40)", None),
    "flush-interval-1.8e19": (
        "c = outcap.OutputCaptureConfig(flush_interval=1.8e19, streaming_enabled=True)\n"
        "p = outcap.spawn(['sh', '-c', 'echo a; sleep 0.2; echo b'], config=c)\n"
        "list(p.stream())",
        NO_EXCEPTION,
    ),
    "wait-huge-timeout": ("outcap.OutputCapture().wait(1e300)", NO_EXCEPTION),
    "wait-minus-infinity": (
        "import os; r, w = os.pipe(); c = outcap.OutputCapture(); c.capture_streams(r, None)\n"
        "assert c.wait(-math.inf) is False",
        NO_EXCEPTION,
    ),
    "run-huge-timeout": ("outcap.run(['true'], timeout=1e300)", NO_EXCEPTION),
}

#: Runs the source in ``sys.argv[1]`` and prints the name of the exception it
#: raised, or ``NO_EXCEPTION``. ``CLOSED_FD`` is the highest descriptor number
#: allowed, which nothing has open. A descriptor closed just before would not
#: do, because outcap's own eventfd may take its number.
SUSPICIOUS_SCRIPT = """
import math, resource, sys
import outcap
CLOSED_FD = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
try:
    exec(sys.argv[1])
except Exception as error:
    print(type(error).__name__)
else:
    print("no exception")
"""


@pytest.mark.parametrize("source, expected", list(SUSPICIOUS.values()), ids=list(SUSPICIOUS))
def test_suspicious_input_in_fresh_interpreter(source, expected):
    completed = subprocess.run(
        [sys.executable, "-c", SUSPICIOUS_SCRIPT, source], capture_output=True, timeout=30, check=False
    )

    assert completed.returncode >= 0, f"killed by signal {-completed.returncode}"
    assert b"panicked" not in completed.stderr
    assert b"PanicException" not in completed.stderr
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    raised = completed.stdout.decode().strip()
    assert raised != ""
    if expected is not None:
        assert raised == expected


# Command line


def outcap_cli(args: List[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``python -m outcap ARGS`` and return the finished process with its bytes."""
    return subprocess.run(
        [sys.executable, "-m", "outcap", *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
    )


CLI_CASES = [
    pytest.param(["run", "--max-buffer-size", "0", "--", "true"], ["0", ">= 1"], id="max-buffer-size-zero"),
    pytest.param(["run", "--max-buffer-size", "-1", "--", "true"], ["'-1'", "integer"], id="max-buffer-size-negative"),
    pytest.param(["run", "--max-buffer-size", "1Q", "--", "true"], ["'1Q'", "K, M, G or T"], id="max-buffer-size-unit"),
    pytest.param(
        ["run", "--max-buffer-size", "99999999T", "--", "true"], ["99999999T"], id="max-buffer-size-too-large"
    ),
    pytest.param(["run", "--compression-threshold", "1Q", "--", "true"], ["'1Q'", "K, M, G or T"], id="threshold-unit"),
    pytest.param(["run", "--flush-interval", "-1", "--", "true"], ["'-1'", ">= 0"], id="flush-interval-negative"),
    pytest.param(["run", "--flush-interval", "nan", "--", "true"], ["'nan'", "finite"], id="flush-interval-nan"),
    pytest.param(["run", "--timeout", "abc", "--", "true"], ["'abc'", "number"], id="timeout-text"),
    pytest.param(["run", "--kill-grace", "-1", "--", "true"], ["'-1'", ">= 0"], id="kill-grace-negative"),
    pytest.param(["run", "--bogus", "--", "true"], ["--bogus"], id="unknown-option"),
    pytest.param(["frobnicate"], ["'frobnicate'", "run", "show"], id="unknown-subcommand"),
    pytest.param([], ["required", "{run,show}"], id="no-subcommand"),
    pytest.param(["run"], ["COMMAND"], id="run-without-command"),
    pytest.param(["run", "--"], ["COMMAND"], id="run-dash-dash-only"),
    pytest.param(["show"], ["RECORD.json"], id="show-without-record"),
]


@pytest.mark.parametrize("args, fragments", CLI_CASES)
def test_cli_invalid_option_usage_error(args, fragments):
    completed = outcap_cli(args)

    assert completed.returncode == 2
    assert b"usage:" in completed.stderr
    assert b"Traceback" not in completed.stderr
    for fragment in fragments:
        assert fragment.encode() in completed.stderr


def test_cli_json_into_missing_dir(tmp_path):
    record = tmp_path / "missing" / "record.json"
    marker = tmp_path / "marker"

    completed = outcap_cli(["run", "--json", str(record), "--", "sh", "-c", f"touch {marker}"])

    assert completed.returncode == 2
    assert b"usage:" in completed.stderr
    assert b"Traceback" not in completed.stderr
    assert str(record).encode() in completed.stderr
    assert b"No such file or directory" in completed.stderr
    assert not marker.exists()


def test_cli_show_missing_file(tmp_path):
    record = tmp_path / "missing.json"

    completed = outcap_cli(["show", str(record)])

    # A record that cannot be read is a runtime failure (status 1), not a usage error.
    assert completed.returncode == 1
    assert b"Traceback" not in completed.stderr
    assert str(record).encode() in completed.stderr
    assert b"No such file or directory" in completed.stderr


def test_cli_huge_flush_interval_no_traceback():
    completed = outcap_cli(["run", "--flush-interval", "1e300", "--", "echo", "hi"])

    assert b"Traceback" not in completed.stderr
    assert completed.returncode in (0, 2)
