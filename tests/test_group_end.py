"""Ending a command's whole process group: on timeout, and when outcap run itself is signalled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

import outcap
from helpers import wait_process_gone

#: A shell whose background job ignores SIGTERM; it prints the job's PID and
#: then waits, so the shell itself exits on SIGTERM while the job lives on.
JOB_IGNORING_TERM = ["sh", "-c", "(trap '' TERM; sleep 33) & echo $!; wait"]


def test_run_timeout_kills_job_ignoring_term():
    began = time.monotonic()
    with pytest.raises(outcap.TimeoutExpired) as raised:
        outcap.run(JOB_IGNORING_TERM, timeout=0.5, kill_grace=5)
    elapsed = time.monotonic() - began
    job = int(raised.value.result.stdout)

    assert wait_process_gone(job, timeout=1.0)
    # SIGKILL follows as soon as the shell exits, not after the 5 s grace.
    assert elapsed < 3.0


def test_spawn_exit_kills_job_ignoring_term():
    config = outcap.OutputCaptureConfig(streaming_enabled=True)
    with outcap.spawn(JOB_IGNORING_TERM, config=config) as process:
        first_line = next(iter(process.lines("stdout")))
    job = int(first_line)

    assert wait_process_gone(job, timeout=1.0)


def _start_cli(*args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "outcap", "run", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_cli_signal_ends_command_group(signum):
    with _start_cli("--", "sh", "-c", "echo $$; exec sleep 34") as cli:
        assert cli.stdout is not None
        child = int(cli.stdout.readline())
        cli.send_signal(signum)
        cli.communicate(timeout=10)

    assert cli.returncode == 128 + signum
    assert wait_process_gone(child, timeout=1.0)


def test_cli_passes_its_stdin_to_command():
    completed = subprocess.run(
        [sys.executable, "-m", "outcap", "run", "--", "cat"],
        input=b"piped bytes\n",
        capture_output=True,
        timeout=30,
    )

    assert completed.returncode == 0
    assert completed.stdout == b"piped bytes\n"


def test_cli_json_keeps_old_record_when_command_missing(tmp_path):
    record = tmp_path / "record.json"
    record.write_text('{"old": true}\n')

    completed = subprocess.run(
        [sys.executable, "-m", "outcap", "run", "--json", str(record), "--", "no-such-command-here"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )

    assert completed.returncode == 127
    assert json.loads(record.read_text()) == {"old": True}


def test_cli_json_not_created_when_command_missing(tmp_path):
    record = tmp_path / "record.json"

    subprocess.run(
        [sys.executable, "-m", "outcap", "run", "--json", str(record), "--", "no-such-command-here"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )

    assert not record.exists()


def test_cli_live_view_reports_skipped_bytes():
    # A reader that waits before reading makes the live view fall more than
    # the 4 KiB ring behind a command writing 1 MiB.
    with _start_cli("--max-buffer-size", "4K", "--", "head", "-c", "1048576", "/dev/zero") as cli:
        time.sleep(0.5)
        data, stderr = cli.communicate(timeout=30)

    assert cli.returncode == 0
    assert len(data) < 1048576
    assert b"skipped" in stderr
