"""Resource use under load and from many threads.

Descriptors, native threads and memory return to their baseline after long
runs. Captures are safe to close from any thread. outcap works after
``os.fork()``, from many threads at once, and without holding the GIL.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from typing import Callable, Iterator, List

import pytest

import outcap
from helpers import Stopwatch, child_pids, open_fd_targets, wait_until
from outcap import CaptureClosedError, OutputCapture, OutputCaptureConfig

MIB = 1024 * 1024

#: Growth of resident memory tolerated after a warm-up, for allocator noise.
RSS_TOLERANCE = 4 * MIB

STREAMING = OutputCaptureConfig(streaming_enabled=True)


def native_thread_count() -> int:
    """Return how many threads this process has, as the kernel counts them (/proc/self/task)."""
    return len(os.listdir("/proc/self/task"))


def resident_bytes() -> int:
    """Return this process's resident memory in bytes (/proc/self/statm)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class Baseline:
    """Descriptors, threads and resident memory of this process at one moment."""

    def __init__(self) -> None:
        gc.collect()
        self.fds = open_fd_targets()
        self.threads = native_thread_count()
        self.rss = resident_bytes()

    def threads_back(self, timeout: float = 5.0) -> bool:
        return wait_until(lambda: native_thread_count() == self.threads, timeout=timeout)


@pytest.fixture(autouse=True)
def no_children_left() -> Iterator[None]:
    yield
    assert wait_until(lambda: not child_pids(os.getpid()), timeout=5.0)


# Long sequences of runs, failures, timeouts and abandoned iterators

SEQUENTIAL_RUNS = 10_000


@pytest.mark.timeout(120)
def test_sequential_runs_leak_nothing():
    for _ in range(500):
        outcap.run(["/bin/true"])
    baseline = Baseline()

    with Stopwatch() as watch:
        for _ in range(SEQUENTIAL_RUNS):
            outcap.run(["/bin/true"])
    print(f"{SEQUENTIAL_RUNS} runs of /bin/true took {watch.elapsed:.1f} s")

    assert watch.elapsed < 100
    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds
    assert resident_bytes() - baseline.rss < RSS_TOLERANCE


def start_failing(index: int, tmp_path) -> None:
    """Start a command that cannot start, in one of four ways picked by ``index``."""
    kind = index % 4
    if kind == 0:
        outcap.run(["outcap-no-such-command"])
    elif kind == 1:
        outcap.spawn([str(tmp_path)])
    elif kind == 2:
        outcap.run(["true"], cwd=tmp_path / "missing")
    else:
        outcap.spawn([str(tmp_path / "not-executable")])


def test_failed_spawns_leak_nothing(tmp_path):
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    for index in range(20):
        with pytest.raises(OSError):
            start_failing(index, tmp_path)
    baseline = Baseline()

    for index in range(200):
        with pytest.raises(OSError):
            start_failing(index, tmp_path)

    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds
    assert resident_bytes() - baseline.rss < RSS_TOLERANCE


def test_timeouts_leak_nothing():
    for _ in range(10):
        with pytest.raises(outcap.TimeoutExpired):
            outcap.run(["sleep", "10"], timeout=0.01)
    baseline = Baseline()

    with Stopwatch() as watch:
        for _ in range(100):
            with pytest.raises(outcap.TimeoutExpired) as raised:
                outcap.run(["sh", "-c", "echo started; exec sleep 10"], timeout=0.01)
            assert raised.value.result.returncode in (-15, -9)
    print(f"100 timeouts took {watch.elapsed:.1f} s")

    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds
    assert resident_bytes() - baseline.rss < RSS_TOLERANCE


def abandon_iterators(count: int) -> None:
    """Take one chunk from each of ``count`` iterators and drop them, half of them
    with the process still running when its ``with`` block ends."""
    for index in range(count):
        command = ["sh", "-c", "echo first; sleep 0.05; echo second"] if index % 2 else ["echo", "first"]
        with outcap.spawn(command, config=STREAMING) as process:
            chunks = process.stream()
            lines = process.lines()
            assert next(chunks).data == b"first\n"
            assert next(lines) == "first\n"
            del chunks, lines


def test_abandoned_iterators_leak_nothing():
    abandon_iterators(10)
    baseline = Baseline()

    abandon_iterators(200)

    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds
    assert resident_bytes() - baseline.rss < RSS_TOLERANCE


# Captures dropped without close()


def test_dropped_raw_capture_releases_threads_and_fds(pipes):
    out_read, out_write = pipes()
    err_read, err_write = pipes()
    baseline = Baseline()
    capture = OutputCapture(STREAMING)
    capture.capture_streams(out_read, err_read)
    os.write(out_write, b"pending\n")
    iterator = capture.stream()
    assert next(iterator).data == b"pending\n"
    threads_while_reading = native_thread_count()

    # The writers stay open, so both reader threads are still blocked when the capture is dropped.
    del capture, iterator
    gc.collect()

    assert threads_while_reading == baseline.threads + 2
    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds


def test_dropped_process_releases_threads_and_fds():
    baseline = Baseline()
    process = outcap.spawn(["sh", "-c", "echo started; exec sleep 10"], config=STREAMING)
    pid = process.pid
    assert next(process.lines()) == "started\n"

    del process
    gc.collect()

    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds
    assert wait_until(lambda: pid not in child_pids(os.getpid()), timeout=5.0)


# close(), cancel() and get_output() from many threads during iteration

HAMMER_THREADS = 8
#: A child that writes numbered lines to both streams for about a second, run
#: with ``UNBUFFERED_ENV`` so each line reaches the pipe at once.
STREAMING_CHILD = [
    sys.executable,
    "-c",
    textwrap.dedent(
        """
        import sys, time
        for index in range(2000):
            sys.stdout.write("out %d\\n" % index)
            sys.stderr.write("err %d\\n" % index)
            time.sleep(0.0005)
        """
    ),
]


UNBUFFERED_ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def hammer(
    reading_calls: List[Callable[[], object]],
    ending_calls: List[Callable[[], object]],
    iterate: Callable[[], object],
) -> List[BaseException]:
    """Iterate in one thread while ``HAMMER_THREADS`` threads make random calls; return
    every exception raised other than CaptureClosedError.

    For the first 0.3 s the threads make only ``reading_calls``, so those overlap a
    live capture; then ``ending_calls`` (close, cancel) join in.
    """
    errors: List[BaseException] = []
    ending = threading.Event()
    stop = threading.Event()

    def iterate_safely() -> None:
        try:
            iterate()
        except BaseException as error:  # noqa: B036 - recorded and asserted on below
            errors.append(error)

    def call_repeatedly(seed: int) -> None:
        chooser = random.Random(seed)
        while not stop.is_set():
            calls = reading_calls + ending_calls if ending.is_set() else reading_calls
            try:
                chooser.choice(calls)()
            except CaptureClosedError:
                pass
            except BaseException as error:  # noqa: B036 - recorded and asserted on below
                errors.append(error)
            time.sleep(chooser.random() * 0.002)

    iterator_thread = threading.Thread(target=iterate_safely, daemon=True)
    hammers = [threading.Thread(target=call_repeatedly, args=(seed,), daemon=True) for seed in range(HAMMER_THREADS)]
    iterator_thread.start()
    time.sleep(0.05)
    for thread in hammers:
        thread.start()
    time.sleep(0.3)
    ending.set()
    time.sleep(0.2)
    stop.set()
    for thread in [iterator_thread, *hammers]:
        thread.join(10)
        assert not thread.is_alive(), f"{thread.name} still running 10 s after the hammering stopped"
    return errors


def test_raw_capture_safe_from_any_thread():
    baseline = Baseline()
    capture = OutputCapture(STREAMING)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    capture.capture_streams(out_read, err_read)
    child = subprocess.Popen(
        STREAMING_CHILD, stdout=out_write, stderr=err_write, stdin=subprocess.DEVNULL, env=UNBUFFERED_ENV
    )
    for fd in (out_read, out_write, err_read, err_write):
        os.close(fd)
    reading_calls = [capture.get_output, capture.stats, lambda: capture.wait(0.01)]

    try:
        errors = hammer(reading_calls, [capture.close, capture.cancel], lambda: sum(1 for _ in capture.stream()))
    finally:
        child.kill()
        child.wait()
        capture.close()

    assert errors == []
    assert capture.closed is True
    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds


def test_process_capture_safe_from_any_thread():
    baseline = Baseline()
    process = outcap.spawn(STREAMING_CHILD, config=STREAMING, env=UNBUFFERED_ENV)
    capture = process.capture
    reading_calls = [capture.get_output, capture.stats, process.poll]
    ending_calls = [capture.close, capture.cancel, process.close]

    try:
        errors = hammer(reading_calls, ending_calls, lambda: sum(1 for _ in process.lines()))
    finally:
        process.close()

    assert errors == []
    assert process.poll() is not None
    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds


# os.fork() in a process that has used outcap, checked in a fresh interpreter

FORK_SCRIPT = """
import os, sys, time, traceback
import outcap

mode = sys.argv[1]
assert outcap.run(["echo", "parent"]).stdout == b"parent\\n"
running = None
if mode == "while-streaming":
    # Reader threads of this capture are busy in the parent while it forks.
    config = outcap.OutputCaptureConfig(streaming_enabled=True)
    running = outcap.spawn(["sh", "-c", "while :; do echo tick; sleep 0.001; done"], config=config)
    next(running.stream())

pid = os.fork()
if pid == 0:
    try:
        result = outcap.run(["sh", "-c", "printf child-out; printf child-err >&2; exit 3"])
        exact = (result.stdout, result.stderr, result.returncode) == (b"child-out", b"child-err", 3)
        os._exit(0 if exact else 1)
    except BaseException:
        traceback.print_exc()
        os._exit(2)

deadline = time.monotonic() + 20
while True:
    reaped, status = os.waitpid(pid, os.WNOHANG)
    if reaped:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("forked child hung")
        sys.exit(3)
    time.sleep(0.01)
if running is not None:
    running.close()
after = outcap.run(["echo", "parent again"]).stdout
print(os.waitstatus_to_exitcode(status), after == b"parent again\\n")
"""


@pytest.mark.parametrize("mode", ["idle", "while-streaming"])
def test_run_works_in_forked_child(mode):
    completed = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, mode], capture_output=True, timeout=40, check=False
    )

    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert completed.stdout == b"0 True\n"


# Many threads at once


def test_concurrent_runs_exact_output():
    baseline = Baseline()
    tokens = [f"token-{index:03d}-{random.getrandbits(32):08x}" for index in range(200)]

    def run_one(token: str) -> outcap.ProcessResult:
        return outcap.run(["sh", "-c", f"printf {token}; printf {token}-err >&2; exit {len(token) % 7}"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run_one, tokens))

    assert [result.stdout for result in results] == [token.encode() for token in tokens]
    assert [result.stderr for result in results] == [f"{token}-err".encode() for token in tokens]
    assert [result.returncode for result in results] == [len(token) % 7 for token in tokens]
    assert baseline.threads_back()
    assert open_fd_targets() == baseline.fds


def test_gil_released_during_large_capture():
    ticks: List[float] = []
    done = threading.Event()
    results: List[outcap.ProcessResult] = []

    def capture_one_gib() -> None:
        try:
            results.append(outcap.run(["head", "-c", "1G", "/dev/zero"]))
        finally:
            done.set()

    worker = threading.Thread(target=capture_one_gib)
    ticks.append(time.monotonic())
    worker.start()
    while not done.is_set():
        total = 0
        for step in range(1000):
            total += step
        ticks.append(time.monotonic())
    worker.join()

    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:])]
    duration = ticks[-1] - ticks[0]
    print(f"1 GiB capture: {duration:.2f} s, {len(ticks)} counter steps, worst gap {max(gaps) * 1000:.1f} ms")
    assert results[0].output.stdout_size == 1024 * MIB
    assert max(gaps) < 0.2
    # Steady progress: at least one step per millisecond on average.
    assert len(ticks) > duration * 1000
