"""Shared helpers for the outcap tests: descriptor and thread counts, polling and timing."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any, Callable, List, Optional, Tuple

import outcap

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


def child_pids(pid: int) -> List[int]:
    """Return the IDs of the live processes whose parent is ``pid``, found by scanning /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                text = stat.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # Fields after the command name: state, then the parent's ID.
        state, parent = text.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            children.append(int(entry))
    return children


def python_command(source: str, *args: str) -> List[str]:
    """Return the argv that runs ``source`` (dedented) in this interpreter with ``args``."""
    return [sys.executable, "-c", textwrap.dedent(source), *args]


class Launched:
    """A command started by ``StreamingLauncher``, with the capture that reads its output.

    ``source`` is the object whose ``stream()``, ``lines()``, ``astream()``
    and ``alines()`` the tests call: the ``outcap.Process`` itself, or the
    ``OutputCapture`` that reads the child's pipes. ``capture`` is the
    ``OutputCapture`` in both cases, for ``wait()`` and ``stats()``.
    """

    def __init__(
        self,
        source: Any,
        capture: "outcap.OutputCapture",
        pid: int,
        popen: "Optional[subprocess.Popen[bytes]]",
    ) -> None:
        self.source = source
        self.capture = capture
        self.pid = pid
        self._popen = popen

    def poll(self) -> Optional[int]:
        """Return the child's exit code, or None while it runs."""
        if self._popen is not None:
            return self._popen.poll()
        return self.source.poll()

    def close(self) -> None:
        """Close the capture (a ``Process`` also ends its child) and reap the child."""
        self.source.close()
        if self._popen is not None:
            if self._popen.poll() is None:
                try:
                    os.killpg(self._popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._popen.wait()


class StreamingLauncher:
    """Starts commands whose output a streaming capture reads, in one of two ways.

    With kind ``"spawn"`` the command runs under ``outcap.spawn()``. With kind
    ``"pipes"`` it runs under ``subprocess.Popen`` in its own session, writing
    into two ``os.pipe()`` pairs that an ``OutputCapture`` reads. The parent's
    write ends are closed at once, so the capture reaches EOF when the child exits.
    Call it as ``launch(argv, **config_fields)``: ``streaming_enabled`` defaults
    to True. ``close_all()`` closes every capture and reaps every child.
    """

    def __init__(self, kind: str) -> None:
        if kind not in ("spawn", "pipes"):
            raise ValueError(f"invalid kind: {kind!r}; expected 'spawn' or 'pipes'")
        self.kind = kind
        self._launched: List[Launched] = []

    def __call__(self, argv: List[str], **config_fields: Any) -> Launched:
        config_fields.setdefault("streaming_enabled", True)
        config = outcap.OutputCaptureConfig(**config_fields)
        if self.kind == "spawn":
            process = outcap.spawn(argv, config=config)
            launched = Launched(process, process.capture, process.pid, None)
        else:
            launched = self._start_on_pipes(argv, config)
        self._launched.append(launched)
        return launched

    @staticmethod
    def _start_on_pipes(argv: List[str], config: "outcap.OutputCaptureConfig") -> Launched:
        capture = outcap.OutputCapture(config)
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            capture.capture_streams(out_read, err_read)
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out_write, stderr=err_write, start_new_session=True
            )
        except BaseException:
            capture.close()
            raise
        finally:
            # The capture reads duplicates, so all four ends are ours to close.
            for fd in (out_read, out_write, err_read, err_write):
                os.close(fd)
        return Launched(capture, capture, popen.pid, popen)

    def close_all(self) -> None:
        for launched in self._launched:
            launched.close()
        self._launched.clear()


#: Python source for a child that runs the steps in its arguments: ``1:HEX`` and
#: ``2:HEX`` write those bytes to stdout or stderr with one ``os.write()``,
#: ``sleep:SECONDS`` sleeps.
WRITE_STEPS_SCRIPT = (
    "import os, sys, time\n"
    "for step in sys.argv[1:]:\n"
    "    kind, _, value = step.partition(':')\n"
    "    if kind == 'sleep':\n"
    "        time.sleep(float(value))\n"
    "    else:\n"
    "        os.write(int(kind), bytes.fromhex(value))\n"
)


def write_steps_command(*steps: Any) -> List[str]:
    """Return the argv of a child that performs ``steps`` in order.

    A step ``(1, data)`` writes ``data`` to stdout and ``(2, data)`` to stderr,
    each with one ``os.write()``. A number sleeps that many seconds. Separate
    writes with a sleep to make them arrive in separate reads.
    """
    args = []
    for step in steps:
        if isinstance(step, tuple):
            fd, data = step
            args.append(f"{fd}:{data.hex()}")
        else:
            args.append(f"sleep:{step}")
    return [sys.executable, "-c", WRITE_STEPS_SCRIPT, *args]
