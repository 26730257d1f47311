"""outcap.run(): bytes and exit codes, stdin, text mode, environment, errors,
timeouts, process groups, signal dispositions, Ctrl-C and resource use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import outcap
from helpers import (
    NUMBERED_LINES_SCRIPT,
    Stopwatch,
    numbered_lines,
    open_fd_count,
    outcap_thread_count,
    process_alive,
    process_name,
    wait_process_gone,
    wait_until,
)
from outcap import OutputCaptureConfig

MIB = 1024 * 1024


def kill_group_quietly(pgid: int) -> None:
    """SIGKILL a process group that a test left behind, if it still exists."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Output and exit codes


def test_run_exact_stdout_stderr_returncode():
    result = outcap.run(["sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 3"])

    assert result.stdout == b"out\n"
    assert result.stderr == b"err"
    assert result.returncode == 3
    assert result.output.exit_code == 3


def test_run_returncode_zero():
    result = outcap.run(["true"])

    assert result.returncode == 0
    assert result.stdout == b""
    assert result.stderr == b""


def test_run_keeps_args():
    args = ["sh", "-c", "exit 0"]

    assert outcap.run(args).args == args


@pytest.mark.parametrize(
    "command, returncode",
    [("kill -TERM $$", -signal.SIGTERM), ("kill -9 $$", -signal.SIGKILL), ("kill -INT $$", -signal.SIGINT)],
)
def test_run_signal_exit_is_negative(command, returncode):
    result = outcap.run(["sh", "-c", command])

    assert result.returncode == returncode
    assert result.output.exit_code == returncode


def test_run_drains_both_pipes_at_once():
    script = (
        "import sys\n"
        "sys.stderr.buffer.write(b'e' * 1048576)\n"
        "sys.stderr.flush()\n"
        "sys.stdout.buffer.write(b'o' * 1048576)\n"
    )
    result = outcap.run([sys.executable, "-c", script], timeout=30)

    assert result.returncode == 0
    assert result.output.stdout_size == MIB
    assert result.output.stderr_size == MIB
    assert result.stdout == b"o" * MIB
    assert result.stderr == b"e" * MIB


def test_run_large_output_keeps_newest_bytes():
    config = OutputCaptureConfig(max_buffer_size=64 * 1024)
    expected = numbered_lines(200_000)

    result = outcap.run([sys.executable, "-c", NUMBERED_LINES_SCRIPT, "200000"], config=config, timeout=30)

    assert result.returncode == 0
    assert result.stdout == expected[-64 * 1024 :]
    assert result.output.truncated is True
    assert result.output.stdout_size == len(expected)


def test_run_output_at_capacity_not_truncated():
    expected = numbered_lines(1000)
    config = OutputCaptureConfig(max_buffer_size=len(expected))

    result = outcap.run([sys.executable, "-c", NUMBERED_LINES_SCRIPT, "1000"], config=config)

    assert result.stdout == expected
    assert result.output.truncated is False


def test_run_large_output_compressed_and_decompressed():
    config = OutputCaptureConfig(compression_threshold=1000)
    expected = numbered_lines(10_000)

    result = outcap.run([sys.executable, "-c", NUMBERED_LINES_SCRIPT, "10000"], config=config)

    assert result.output.compressed is True
    assert result.stdout == expected
    assert result.get_stdout() == expected


def test_run_strips_ansi_by_default():
    result = outcap.run(["printf", "\\033[1;32mgreen\\033[0m\\n"])

    assert result.stdout == b"green\n"
    assert result.output.stdout_size == len(b"\x1b[1;32mgreen\x1b[0m\n")


# stdin and input


def test_run_stdin_is_dev_null_by_default():
    with Stopwatch() as watch:
        result = outcap.run(["cat"], timeout=10)

    assert result.stdout == b""
    assert result.returncode == 0
    assert watch.elapsed < 2.0


def test_run_stdin_links_to_dev_null():
    result = outcap.run(["sh", "-c", "readlink /proc/$$/fd/0"])

    assert result.stdout == b"/dev/null\n"


def test_run_input_round_trip_one_mib():
    data = os.urandom(MIB)
    config = OutputCaptureConfig(process_ansi=False)

    result = outcap.run(["cat"], input=data, config=config, timeout=30)

    assert result.returncode == 0
    assert result.output.stdout_size == MIB
    assert result.stdout == data


def test_run_input_empty_bytes_gives_eof():
    result = outcap.run(["cat"], input=b"", timeout=10)

    assert result.stdout == b""
    assert result.returncode == 0


def test_run_input_to_child_not_reading_returns_promptly():
    with Stopwatch() as watch:
        result = outcap.run(["true"], input=b"x" * (8 * MIB), timeout=10)

    assert result.returncode == 0
    assert watch.elapsed < 2.0


def test_run_stdin_file_object(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"from a file\n")

    with open(path, "rb") as stdin:
        result = outcap.run(["cat"], stdin=stdin, timeout=10)

        assert stdin.closed is False

    assert result.stdout == b"from a file\n"


def test_run_stdin_fd(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"from an fd\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        result = outcap.run(["cat"], stdin=fd, timeout=10)

        os.fstat(fd)
    finally:
        os.close(fd)

    assert result.stdout == b"from an fd\n"


def test_run_stdin_pipe_read_end():
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"piped")
        os.close(write_end)
        result = outcap.run(["cat"], stdin=read_end, timeout=10)
    finally:
        os.close(read_end)

    assert result.stdout == b"piped"


def test_run_input_and_stdin_together_raise():
    with pytest.raises(ValueError):
        outcap.run(["cat"], input=b"x", stdin=0)


def test_run_str_input_without_text_raises():
    with pytest.raises(TypeError):
        outcap.run(["cat"], input="text")  # type: ignore[arg-type]


# Text mode


def test_run_text_mode_str_input_and_output():
    result = outcap.run(["cat"], input="h\u00e9llo\n", text=True, encoding="utf-8")

    assert result.stdout == "h\u00e9llo\n"
    assert result.stderr == ""


def test_run_text_mode_universal_newlines():
    result = outcap.run(["printf", "a\\r\\nb\\rc\\n"], text=True)

    assert result.stdout == "a\nb\nc\n"


def test_run_text_mode_get_stdout_keeps_bytes():
    result = outcap.run(["printf", "a\\r\\nb\\rc\\n"], text=True)

    assert result.get_stdout() == b"a\r\nb\rc\n"
    assert result.output.stdout == b"a\r\nb\rc\n"


def test_run_text_mode_encoding():
    result = outcap.run(["printf", "caf\\351\\n"], text=True, encoding="latin-1")

    assert result.stdout == "caf\u00e9\n"


def test_run_text_mode_errors_replace():
    result = outcap.run(["printf", "a\\377b"], encoding="utf-8", errors="replace")

    assert result.stdout == "a\ufffdb"


def test_run_text_mode_stderr_decoded():
    result = outcap.run(["sh", "-c", "printf 'x\\r\\ny' >&2"], text=True)

    assert result.stderr == "x\ny"


# cwd and env


def test_run_cwd(tmp_path):
    result = outcap.run(["pwd"], cwd=tmp_path)

    assert result.stdout == os.fsencode(os.path.realpath(tmp_path)) + b"\n"


def test_run_cwd_str(tmp_path):
    result = outcap.run(["sh", "-c", "pwd -P"], cwd=str(tmp_path))

    assert result.stdout == os.fsencode(os.path.realpath(tmp_path)) + b"\n"


def test_run_missing_cwd_raises_file_not_found(tmp_path):
    missing = tmp_path / "no-such-directory"

    with pytest.raises(FileNotFoundError) as raised:
        outcap.run(["true"], cwd=missing)

    assert raised.value.filename == str(missing)
    assert str(missing) in str(raised.value)


def test_run_env_replaces_environment():
    result = outcap.run(["/usr/bin/env", "-0"], env={"FOO": "bar", "EMPTY": ""})

    entries = sorted(result.stdout.split(b"\0")[:-1])
    assert entries == [b"EMPTY=", b"FOO=bar"]


def test_run_env_empty_mapping_gives_empty_environment():
    result = outcap.run(["/usr/bin/env"], env={})

    assert result.stdout == b""


def test_run_inherits_environment_by_default(monkeypatch):
    monkeypatch.setenv("OUTCAP_TEST_VARIABLE", "inherited")

    result = outcap.run(["sh", "-c", "printf %s \"$OUTCAP_TEST_VARIABLE\""])

    assert result.stdout == b"inherited"


# shell=True


def test_run_shell_pipeline():
    result = outcap.run("printf 'b\\na\\n' | sort", shell=True)

    assert result.stdout == b"a\nb\n"
    assert result.returncode == 0


def test_run_shell_exit_code():
    result = outcap.run("exit 5", shell=True)

    assert result.returncode == 5


# Argument and start errors


def test_run_missing_program_raises_file_not_found():
    with pytest.raises(FileNotFoundError) as raised:
        outcap.run(["outcap-no-such-program"])

    assert raised.value.filename == "outcap-no-such-program"
    assert "outcap-no-such-program" in str(raised.value)


def test_run_missing_program_leaks_nothing():
    threads_before = outcap_thread_count()
    fds_before = open_fd_count()

    for _ in range(5):
        with pytest.raises(FileNotFoundError):
            outcap.run(["outcap-no-such-program"])

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=1.0)
    assert open_fd_count() == fds_before


def test_run_non_executable_file_raises_permission_error(tmp_path):
    path = tmp_path / "script.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o644)

    with pytest.raises(PermissionError) as raised:
        outcap.run([str(path)])

    assert raised.value.filename == str(path)


def test_run_empty_args_raises_value_error():
    with pytest.raises(ValueError):
        outcap.run([])


def test_run_nul_in_args_raises_value_error():
    with pytest.raises(ValueError):
        outcap.run(["echo", "a\0b"])


def test_run_nul_in_program_raises_value_error():
    with pytest.raises(ValueError):
        outcap.run(["ec\0ho"])


def test_run_path_like_args(tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\nprintf hello\n")
    script.chmod(0o755)

    assert outcap.run([script]).stdout == b"hello"


# check=True and ProcessResult


def test_run_check_raises_called_process_error():
    with pytest.raises(outcap.CalledProcessError) as raised:
        outcap.run(["sh", "-c", "printf out; printf err >&2; exit 4"], check=True)

    error = raised.value
    assert isinstance(error, subprocess.CalledProcessError)
    assert error.returncode == 4
    assert error.result.returncode == 4
    assert error.result.stdout == b"out"
    assert error.stdout == b"out"
    assert error.stderr == b"err"


def test_run_check_zero_does_not_raise():
    result = outcap.run(["sh", "-c", "printf ok"], check=True)

    assert result.stdout == b"ok"


def test_run_result_is_completed_process():
    result = outcap.run(["true"])

    assert isinstance(result, subprocess.CompletedProcess)
    assert isinstance(result, outcap.ProcessResult)
    assert result.timed_out is False


def test_run_result_check_returncode_raises_for_nonzero():
    result = outcap.run(["sh", "-c", "exit 2"])

    with pytest.raises(subprocess.CalledProcessError) as raised:
        result.check_returncode()

    assert raised.value.returncode == 2


def test_run_result_check_returncode_passes_for_zero():
    assert outcap.run(["true"]).check_returncode() is None


# Timeouts


def test_run_timeout_raises_with_partial_result():
    with Stopwatch() as watch:
        with pytest.raises(outcap.TimeoutExpired) as raised:
            outcap.run(["sh", "-c", "echo started; sleep 30"], timeout=0.3)

    error = raised.value
    assert isinstance(error, subprocess.TimeoutExpired)
    assert watch.elapsed < 1.5
    assert error.timeout == 0.3
    assert error.result.timed_out is True
    assert error.result.stdout == b"started\n"
    assert error.result.returncode == -signal.SIGTERM


def test_run_timeout_not_raised_for_fast_child():
    result = outcap.run(["true"], timeout=10)

    assert result.timed_out is False


def test_run_timeout_kills_child_ignoring_sigterm():
    with Stopwatch() as watch:
        with pytest.raises(outcap.TimeoutExpired) as raised:
            outcap.run(["sh", "-c", "trap '' TERM; echo ready; sleep 30"], timeout=0.3, kill_grace=0.3)

    assert watch.elapsed < 2.0
    assert watch.elapsed >= 0.6
    assert raised.value.result.returncode == -signal.SIGKILL
    assert raised.value.result.stdout == b"ready\n"


def test_run_timeout_kills_whole_process_group():
    with pytest.raises(outcap.TimeoutExpired) as raised:
        outcap.run(["sh", "-c", "sleep 30 & echo $!; sleep 30"], timeout=0.3)

    grandchild = int(raised.value.result.stdout)
    try:
        assert wait_process_gone(grandchild, timeout=1.0)
    finally:
        if process_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


# Process group and signal dispositions


def test_run_child_has_default_signal_dispositions():
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN

    result = outcap.run(["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"])

    assert result.stdout == b"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"


def test_run_child_dies_by_sigpipe():
    result = outcap.run('{ yes; echo "yes=$?" >&2; } | head -c 10', shell=True, timeout=10)

    assert result.returncode == 0
    assert result.stdout == b"y\n" * 5
    assert result.stderr == b"yes=%d\n" % (128 + signal.SIGPIPE)


def test_run_child_in_own_process_group():
    result = outcap.run(["sh", "-c", "set -- $(cat /proc/$$/stat); echo $1 $5"])

    pid, pgid = result.stdout.split()
    assert pgid == pid
    assert int(pgid) != os.getpgrp()


def test_spawn_pid_is_process_group():
    with outcap.spawn(["sh", "-c", "set -- $(cat /proc/$$/stat); echo $5"]) as process:
        result = process.wait(timeout=10)

    assert int(result.stdout) == process.pid


# Background grandchildren holding the pipes


def test_run_returns_while_grandchild_holds_pipes():
    with Stopwatch() as watch:
        result = outcap.run(["sh", "-c", "echo before; (sleep 5; echo late) & echo $$ >&2; exit 0"])

    kill_group_quietly(int(result.stderr))
    assert watch.elapsed < outcap.EOF_GRACE + 1.0
    assert result.stdout == b"before\n"
    assert result.returncode == 0


def test_run_keeps_grandchild_bytes_written_in_grace():
    with Stopwatch() as watch:
        result = outcap.run(["sh", "-c", "(echo fast; exec sleep 5) & echo $$ >&2; exit 0"])

    kill_group_quietly(int(result.stderr))
    assert watch.elapsed < outcap.EOF_GRACE + 1.0
    assert result.stdout == b"fast\n"


def test_run_keeps_output_of_exited_grandchild():
    result = outcap.run(["sh", "-c", "(echo fast) & exit 0"])

    assert result.stdout == b"fast\n"


# Ctrl-C


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import signal
    import sys
    import outcap

    # A shell that starts pytest in the background makes it, and so this
    # interpreter, inherit SIGINT as ignored; install Python's usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pid_file = sys.argv[1]
    print("ready", flush=True)
    outcap.run(["sh", "-c", 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec sleep 30', pid_file])
    print("run returned", flush=True)
    """
)


def test_run_ctrl_c_kills_child(tmp_path):
    pid_file = tmp_path / "child.pid"
    with subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(pid_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as interpreter:
        try:
            assert interpreter.stdout.readline() == b"ready\n"
            assert wait_until(pid_file.exists, timeout=10.0)
            child = int(pid_file.read_text())
            assert wait_until(lambda: process_name(child) == "sleep", timeout=10.0)

            interrupted_at = time.monotonic()
            interpreter.send_signal(signal.SIGINT)
            try:
                stdout, stderr = interpreter.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                interpreter.kill()
                _, stderr = interpreter.communicate()
                pytest.fail(f"the interpreter still ran 10 s after SIGINT; its stderr: {stderr!r}")
            latency = time.monotonic() - interrupted_at
            print(f"Ctrl-C latency: {latency:.3f} s")
        finally:
            interpreter.kill()

    assert latency < 1.0
    assert interpreter.returncode != 0
    assert b"Traceback" in stderr
    assert b"KeyboardInterrupt" in stderr
    assert stdout == b""
    assert wait_process_gone(child, timeout=1.0)


# GIL and resources


def test_run_releases_gil_while_waiting():
    counts = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            total = 0
            for _ in range(1000):
                total += 1
            counts.append(time.monotonic())

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.05)
        start = len(counts)
        time.sleep(0.5)
        baseline = len(counts) - start

        start = len(counts)
        outcap.run(["sleep", "0.5"])
        during_run = len(counts) - start
    finally:
        stop.set()
        counter.join()

    print(f"counter steps: {baseline} while sleeping, {during_run} during run()")
    assert during_run > baseline * 0.5


def test_run_many_sequential_runs_leak_nothing():
    outcap.run(["true"])
    threads_before = outcap_thread_count()
    fds_before = open_fd_count()

    with Stopwatch() as watch:
        for index in range(200):
            result = outcap.run(["sh", "-c", f"echo {index}; echo {index} >&2"])
            assert result.stdout == b"%d\n" % index

    print(f"200 runs took {watch.elapsed:.2f} s")
    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=1.0)
    assert open_fd_count() == fds_before


def test_run_leaves_no_reader_thread():
    threads_before = outcap_thread_count()

    outcap.run(["sh", "-c", "echo out; echo err >&2"], input=b"ignored")

    assert wait_until(lambda: outcap_thread_count() == threads_before, timeout=1.0)
