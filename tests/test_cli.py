"""The ``outcap`` command line, run as a real subprocess: ``outcap run`` and ``outcap show``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from helpers import Stopwatch
from outcap import ProcessOutput

#: The console script that installing the package puts next to the interpreter.
SCRIPT = Path(sys.executable).parent / "outcap"

OUT_ERR_EXIT_7 = ["sh", "-c", "echo out; echo err >&2; exit 7"]

#: A command writing 5000 distinct bytes to stdout (lines "0000\n" to "0999\n").
FIVE_THOUSAND_BYTES = [sys.executable, "-c", "import sys; sys.stdout.write(''.join('%04d\\n' % i for i in range(1000)))"]
FIVE_THOUSAND_EXPECTED = b"".join(b"%04d\n" % index for index in range(1000))


def outcap_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``python -m outcap ARGS`` and return the finished process with its bytes."""
    return subprocess.run(
        [sys.executable, "-m", "outcap", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )


def summary_lines(stderr: bytes) -> List[bytes]:
    return [line for line in stderr.splitlines() if line.startswith(b"outcap:")]


def assert_usage_error(completed: subprocess.CompletedProcess, value: str) -> None:
    assert completed.returncode == 2
    assert b"usage:" in completed.stderr
    assert value.encode() in completed.stderr
    assert b"Traceback" not in completed.stderr


# outcap run: output, summary, exit status


@pytest.mark.parametrize("launcher", ["module", "script"])
def test_cli_run_shows_output_and_exit_code(launcher):
    prefix = [sys.executable, "-m", "outcap"] if launcher == "module" else [str(SCRIPT)]
    completed = subprocess.run(
        [*prefix, "run", "--", *OUT_ERR_EXIT_7], stdin=subprocess.DEVNULL, capture_output=True, timeout=30
    )

    assert completed.returncode == 7
    assert completed.stdout == b"out\n"
    assert completed.stderr.startswith(b"err\n")
    assert b"Traceback" not in completed.stderr


def test_cli_run_prints_one_summary_line():
    completed = outcap_cli("run", "--", *OUT_ERR_EXIT_7)
    lines = completed.stderr.splitlines()

    assert len(summary_lines(completed.stderr)) == 1
    assert lines[-1].startswith(b"outcap:")
    assert completed.stderr == b"err\n" + lines[-1] + b"\n"


def test_cli_run_zero_exit():
    completed = outcap_cli("run", "--", "true")

    assert completed.returncode == 0
    assert completed.stdout == b""


@pytest.mark.parametrize("signal_name, signal_number", [("TERM", signal.SIGTERM), ("KILL", signal.SIGKILL)])
def test_cli_run_signal_exit_is_128_plus_n(signal_name, signal_number):
    completed = outcap_cli("run", "--", "sh", "-c", f"kill -{signal_name} $$")

    assert completed.returncode == 128 + signal_number


def test_cli_run_missing_command_exits_127():
    completed = outcap_cli("run", "--", "outcap-no-such-program")

    assert completed.returncode == 127
    assert b"outcap-no-such-program" in completed.stderr
    assert b"Traceback" not in completed.stderr


def test_cli_run_non_executable_exits_126(tmp_path):
    path = tmp_path / "script.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o644)

    completed = outcap_cli("run", "--", str(path))

    assert completed.returncode == 126
    assert str(path).encode() in completed.stderr
    assert b"Traceback" not in completed.stderr


def test_cli_run_timeout_exits_124():
    with Stopwatch() as watch:
        completed = outcap_cli("run", "--timeout", "0.3", "--", "sleep", "30")

    assert completed.returncode == 124
    assert watch.elapsed < 2.0
    assert b"Traceback" not in completed.stderr


def test_cli_run_timeout_keeps_partial_output():
    completed = outcap_cli("run", "--timeout", "0.3", "--", "sh", "-c", "echo started; sleep 30")

    assert completed.returncode == 124
    assert completed.stdout == b"started\n"


# --json


def test_cli_run_json_path_writes_record(tmp_path):
    path = tmp_path / "record.json"

    completed = outcap_cli("run", "--json", str(path), "--", *OUT_ERR_EXIT_7)
    output = ProcessOutput.from_json(path.read_text())

    assert completed.returncode == 7
    assert output.get_stdout() == b"out\n"
    assert output.get_stderr() == b"err\n"
    assert output.exit_code == 7


def test_cli_run_json_record_uses_go_keys(tmp_path):
    path = tmp_path / "record.json"

    outcap_cli("run", "--json", str(path), "--", *OUT_ERR_EXIT_7)
    record = json.loads(path.read_text())

    assert record["exitCode"] == 7
    assert record["stdoutSize"] == 4
    assert record["stderrSize"] == 4


def test_cli_run_json_stdout_prints_only_json():
    completed = outcap_cli("run", "--json", "-", "--", *OUT_ERR_EXIT_7)
    output = ProcessOutput.from_json(completed.stdout.decode("utf-8"))

    assert completed.returncode == 7
    assert output.get_stdout() == b"out\n"
    assert output.get_stderr() == b"err\n"
    assert completed.stderr.startswith(b"outcap:")


def test_cli_run_json_record_of_signal_exit(tmp_path):
    path = tmp_path / "record.json"

    outcap_cli("run", "--json", str(path), "--", "sh", "-c", "kill -TERM $$")

    assert ProcessOutput.from_json(path.read_text()).exit_code == -signal.SIGTERM


# Sizes and config options


def test_cli_run_max_buffer_size_truncates(tmp_path):
    path = tmp_path / "record.json"

    completed = outcap_cli("run", "--quiet", "--max-buffer-size", "1K", "--json", str(path), "--", *FIVE_THOUSAND_BYTES)
    output = ProcessOutput.from_json(path.read_text())

    assert completed.returncode == 0
    assert output.get_stdout() == FIVE_THOUSAND_EXPECTED[-1024:]
    assert output.truncated is True
    assert output.stdout_size == 5000


@pytest.mark.parametrize("size", ["10M", "512K", "1048576"])
def test_cli_run_accepts_size(size):
    completed = outcap_cli("run", "--max-buffer-size", size, "--compression-threshold", size, "--", "true")

    assert completed.returncode == 0
    assert b"Traceback" not in completed.stderr


@pytest.mark.parametrize("size", ["10X", "-5", "", "1.5M"])
def test_cli_run_rejects_bad_size(size):
    completed = outcap_cli("run", f"--max-buffer-size={size}", "--", "true")

    assert_usage_error(completed, repr(size))


def test_cli_run_rejects_zero_buffer_size():
    completed = outcap_cli("run", "--max-buffer-size", "0", "--", "true")

    assert_usage_error(completed, "--max-buffer-size: 0")


def test_cli_run_rejects_bad_compression_threshold():
    completed = outcap_cli("run", "--compression-threshold", "lots", "--", "true")

    assert_usage_error(completed, "'lots'")


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_cli_run_rejects_bad_timeout(value):
    completed = outcap_cli("run", f"--timeout={value}", "--", "true")

    assert_usage_error(completed, repr(value))


def test_cli_run_rejects_bad_flush_interval():
    completed = outcap_cli("run", "--flush-interval", "soon", "--", "true")

    assert_usage_error(completed, "'soon'")


def test_cli_run_rejects_unknown_option():
    completed = outcap_cli("run", "--no-such-option", "--", "true")

    assert_usage_error(completed, "--no-such-option")


def test_cli_run_rejects_missing_command():
    completed = outcap_cli("run", "--")

    assert completed.returncode == 2
    assert b"usage:" in completed.stderr
    assert b"COMMAND" in completed.stderr
    assert b"Traceback" not in completed.stderr


def test_cli_run_rejects_no_arguments():
    completed = outcap_cli("run")

    assert completed.returncode == 2
    assert b"Traceback" not in completed.stderr


def test_cli_run_unallocatable_buffer_size_reports_error():
    completed = outcap_cli("run", "--max-buffer-size", "100000T", "--", "true")

    assert completed.returncode != 0
    assert re.search(rb"max.buffer.size", completed.stderr)
    assert b"Traceback" not in completed.stderr


def test_cli_run_json_unwritable_path_reports_error(tmp_path):
    path = tmp_path / "missing-directory" / "record.json"

    completed = outcap_cli("run", "--json", str(path), "--", "true")

    assert completed.returncode != 0
    assert str(path).encode() in completed.stderr
    assert b"Traceback" not in completed.stderr


def test_cli_rejects_unknown_subcommand():
    completed = outcap_cli("frobnicate")

    assert_usage_error(completed, "frobnicate")


def test_cli_run_strips_ansi_by_default():
    completed = outcap_cli("run", "--", "printf", "\\033[31mred\\033[0m\\n")

    assert completed.stdout == b"red\n"


def test_cli_run_keep_ansi_keeps_escapes():
    completed = outcap_cli("run", "--keep-ansi", "--", "printf", "\\033[31mred\\033[0m\\n")

    assert completed.stdout == b"\x1b[31mred\x1b[0m\n"


def test_cli_run_compresses_above_threshold(tmp_path):
    path = tmp_path / "record.json"

    outcap_cli("run", "--quiet", "--compression-threshold", "100", "--json", str(path), "--", *FIVE_THOUSAND_BYTES)
    output = ProcessOutput.from_json(path.read_text())

    assert output.compressed is True
    assert output.get_stdout() == FIVE_THOUSAND_EXPECTED


def test_cli_run_no_compression(tmp_path):
    path = tmp_path / "record.json"

    outcap_cli(
        "run", "--quiet", "--no-compression", "--compression-threshold", "100", "--json", str(path),
        "--", *FIVE_THOUSAND_BYTES,
    )
    output = ProcessOutput.from_json(path.read_text())

    assert output.compressed is False
    assert output.stdout == FIVE_THOUSAND_EXPECTED


def test_cli_run_quiet_shows_no_output():
    completed = outcap_cli("run", "--quiet", "--", *OUT_ERR_EXIT_7)

    assert completed.returncode == 7
    assert completed.stdout == b""
    assert completed.stderr.startswith(b"outcap:")
    assert len(completed.stderr.splitlines()) == 1


def test_cli_run_quiet_still_records(tmp_path):
    path = tmp_path / "record.json"

    outcap_cli("run", "--quiet", "--json", str(path), "--", *OUT_ERR_EXIT_7)

    assert ProcessOutput.from_json(path.read_text()).get_stdout() == b"out\n"


def test_cli_run_passes_command_options_through():
    completed = outcap_cli("run", "--", "sh", "-c", "echo $1 $2", "sh", "--quiet", "-x")

    assert completed.stdout == b"--quiet -x\n"


# outcap show


def test_cli_show_prints_record(tmp_path):
    path = tmp_path / "record.json"
    outcap_cli("run", "--quiet", "--json", str(path), "--", *OUT_ERR_EXIT_7)

    completed = outcap_cli("show", str(path))

    assert completed.returncode == 0
    assert completed.stdout == b"out\n"
    assert completed.stderr.startswith(b"err\n")
    assert len(summary_lines(completed.stderr)) == 1


def test_cli_show_decompresses(tmp_path):
    path = tmp_path / "record.json"
    outcap_cli("run", "--quiet", "--compression-threshold", "100", "--json", str(path), "--", *FIVE_THOUSAND_BYTES)

    completed = outcap_cli("show", str(path))

    assert completed.returncode == 0
    assert completed.stdout == FIVE_THOUSAND_EXPECTED


def test_cli_show_go_record(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(
        '{"stdout":"aGVsbG8K","exitCode":0,"duration":1500000,"stdoutSize":6,"stderrSize":0,'
        '"truncated":false,"compressed":false,"captureStarted":"2024-06-01T12:00:00.123456789+02:00",'
        '"captureEnded":"2024-06-01T10:00:00.125Z","streaming":false}'
    )

    completed = outcap_cli("show", str(path))

    assert completed.returncode == 0
    assert completed.stdout == b"hello\n"


def test_cli_show_missing_file(tmp_path):
    path = tmp_path / "missing.json"

    completed = outcap_cli("show", str(path))

    assert completed.returncode != 0
    assert str(path).encode() in completed.stderr
    assert b"Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "content",
    [b"not json", b'{"exitCode": "zero"}', b"\xff\xfe\x00", b""],
    ids=["not_json", "bad_field", "not_utf8", "empty"],
)
def test_cli_show_invalid_file(tmp_path, content):
    path = tmp_path / "record.json"
    path.write_bytes(content)

    completed = outcap_cli("show", str(path))

    assert completed.returncode != 0
    assert str(path).encode() in completed.stderr
    assert b"Traceback" not in completed.stderr


def test_cli_show_corrupt_compressed_record(tmp_path):
    path = tmp_path / "record.json"
    path.write_text('{"stdout":"aGVsbG8K","compressed":true}')

    completed = outcap_cli("show", str(path))

    assert completed.returncode != 0
    assert str(path).encode() in completed.stderr
    assert b"Traceback" not in completed.stderr


def test_cli_show_directory(tmp_path):
    completed = outcap_cli("show", str(tmp_path))

    assert completed.returncode != 0
    assert b"Traceback" not in completed.stderr


def test_cli_script_installed():
    assert os.access(SCRIPT, os.X_OK)
