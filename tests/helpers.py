"""Shared helpers for the outcap tests: descriptor and thread counts, polling and timing."""

from __future__ import annotations

import gc
import os
import time
from typing import Callable, List, Optional, Tuple

#: Prefix of the names outcap gives its native threads (readers and the stdin feeder).
THREAD_PREFIX = "outcap-"


def open_fd_count() -> int:
    """Return the number of file descriptors this process has open.

    Collects garbage first, so that unreachable objects left by earlier tests
    (and the descriptors they own) do not shift the count in between two calls.
    """
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def open_fd_targets() -> List[str]:
    """Return the sorted link targets of this process's open descriptors, such as ``pipe:[123]``.

    Collects garbage first, like ``open_fd_count()``. When two of these lists
    differ, the diff shows which kind of descriptor was left open.
    """
    gc.collect()
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:
            # The descriptor that listdir() itself used, closed by now.
            continue
    return sorted(targets)


def thread_names() -> List[str]:
    """Return the kernel names (``comm``) of every thread in this process."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as comm:
                names.append(comm.read().strip())
        except FileNotFoundError:
            # The thread exited between listdir() and open().
            continue
    return names


def outcap_thread_count() -> int:
    """Return how many threads of this process have a name starting with ``outcap-``."""
    return sum(1 for name in thread_names() if name.startswith(THREAD_PREFIX))


def wait_until(condition: Callable[[], bool], timeout: float = 2.0, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def process_state(pid: int) -> Optional[str]:
    """Return the state letter of ``pid`` from /proc (``R``, ``S``, ``Z``, ...), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in field 2 may contain spaces, so split after its closing parenthesis.
    return text.rsplit(")", 1)[1].split()[0]


def process_name(pid: int) -> Optional[str]:
    """Return the command name (``comm``) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
            return comm.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def process_alive(pid: int) -> bool:
    """Return True while ``pid`` exists and is not a zombie (a zombie has already exited)."""
    state = process_state(pid)
    return state is not None and state != "Z"


def wait_process_gone(pid: int, timeout: float = 1.0) -> bool:
    """Poll /proc until ``pid`` has exited, for up to ``timeout`` seconds; return whether it did."""
    return wait_until(lambda: not process_alive(pid), timeout=timeout)


class Stopwatch:
    """A context manager that measures the wall-clock seconds of its block in ``elapsed``."""

    def __init__(self) -> None:
        self.started = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> "Stopwatch":
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.elapsed = time.monotonic() - self.started


def numbered_lines(count: int) -> bytes:
    """Return ``count`` lines ``00000000\\n``, ``00000001\\n``, ...: 9 bytes each, every line distinct."""
    return b"".join(b"%08d\n" % index for index in range(count))


#: Python source for a child that writes ``numbered_lines(int(sys.argv[1]))`` to stdout.
NUMBERED_LINES_SCRIPT = (
    "import sys\n"
    "count = int(sys.argv[1])\n"
    "sys.stdout.buffer.write(b''.join(b'%08d\\n' % index for index in range(count)))\n"
)


class PipeFactory:
    """Creates ``os.pipe()`` pairs and closes every end still open when the test ends."""

    def __init__(self) -> None:
        self._fds: List[int] = []

    def __call__(self) -> Tuple[int, int]:
        read_end, write_end = os.pipe()
        self._fds += [read_end, write_end]
        return read_end, write_end

    def close(self, fd: int) -> None:
        """Close ``fd`` now; closing it again later is a no-op."""
        if fd in self._fds:
            self._fds.remove(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
