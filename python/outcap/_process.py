"""run(), spawn(), Process and ProcessResult: commands in their own process group."""

from __future__ import annotations

import codecs
import locale
import math
import os
import signal
import subprocess
import time
from types import TracebackType
from typing import IO, Any, List, Mapping, Optional, Sequence, Tuple, Type, Union, cast

from . import _native
from ._capture import OutputCapture, _check_config, _fileno
from ._config import OutputCaptureConfig, check_timeout
from ._output import ProcessOutput
from ._stream import StreamMethods

__all__ = [
    "EOF_GRACE",
    "CalledProcessError",
    "Process",
    "ProcessResult",
    "TimeoutExpired",
    "run",
    "spawn",
]

#: Seconds ``run()`` and ``Process.wait()`` keep reading after the child
#: exits, for output from a background grandchild that still has the pipes open. Bytes
#: already in the pipes are kept even when the grace runs out.
EOF_GRACE: float = _native.EOF_GRACE

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Args = Union[StrOrBytesPath, Sequence[StrOrBytesPath]]


class ProcessResult(subprocess.CompletedProcess):  # type: ignore[type-arg]
    """A finished command: ``subprocess.CompletedProcess`` plus the capture record.

    ``stdout``/``stderr`` are decompressed bytes, or ``str`` when the command
    ran with ``text=True``. ``output`` is the ``ProcessOutput`` record, which
    always keeps bytes. ``timed_out`` is True when the command was ended
    because its timeout passed.
    """

    def __init__(
        self,
        args: Any,
        returncode: Optional[int],
        stdout: Union[bytes, str],
        stderr: Union[bytes, str],
        output: ProcessOutput,
        timed_out: bool = False,
    ) -> None:
        super().__init__(args, returncode, stdout, stderr)  # type: ignore[arg-type]
        self.output = output
        self.timed_out = timed_out

    def get_stdout(self) -> bytes:
        """Return the captured stdout bytes, decompressed, even in text mode."""
        return self.output.get_stdout()

    def get_stderr(self) -> bytes:
        """Return the captured stderr bytes, decompressed, even in text mode."""
        return self.output.get_stderr()

    def check_returncode(self) -> None:
        """Raise ``outcap.CalledProcessError`` if the exit code is non-zero."""
        if self.returncode:
            raise CalledProcessError(self.returncode, self.args, self.stdout, self.stderr, result=self)

    def __repr__(self) -> str:
        return (
            f"ProcessResult(args={self.args!r}, returncode={self.returncode!r}, "
            f"stdout={_describe(self.stdout)}, stderr={_describe(self.stderr)}, timed_out={self.timed_out})"
        )


def _describe(data: Union[bytes, str, None]) -> str:
    if data is None:
        return "None"
    unit = "chars" if isinstance(data, str) else "bytes"
    return f"<{len(data)} {unit}>"


class TimeoutExpired(subprocess.TimeoutExpired):
    """The timeout passed. ``result`` is the partial ``ProcessResult``
    (None when ``Process.wait()`` timed out without ending the process)."""

    def __init__(
        self,
        cmd: Any,
        timeout: float,
        output: Union[bytes, str, None] = None,
        stderr: Union[bytes, str, None] = None,
        result: Optional[ProcessResult] = None,
    ) -> None:
        super().__init__(cmd, timeout, output, stderr)
        self.result = result


class CalledProcessError(subprocess.CalledProcessError):
    """The command exited with a non-zero code; ``result`` is its ``ProcessResult``."""

    def __init__(
        self,
        returncode: int,
        cmd: Any,
        output: Union[bytes, str, None] = None,
        stderr: Union[bytes, str, None] = None,
        result: Optional[ProcessResult] = None,
    ) -> None:
        super().__init__(returncode, cmd, output, stderr)
        self.result = result


def _argv(args: Args, shell: bool) -> List[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        items = [args]
    elif isinstance(args, Sequence):
        items = list(cast(Sequence[StrOrBytesPath], args))
    else:
        raise TypeError(f"invalid args: {args!r} ({type(args).__name__}); expected a str or a sequence of str")
    if not items:
        raise ValueError("invalid args: empty sequence; expected a program and its arguments")

    argv = []
    for item in items:
        if not isinstance(item, (str, bytes, os.PathLike)):
            raise TypeError(f"invalid argument {item!r} ({type(item).__name__}) in args; expected str, bytes or a path")
        text = os.fsdecode(item)
        if "\0" in text:
            raise ValueError(f"invalid argument {text!r} in args: embedded null byte")
        argv.append(text)
    if shell:
        argv = ["/bin/sh", "-c", *argv]
    return argv


def _environment(env: Optional[Mapping[Any, Any]]) -> Optional[List[Tuple[str, str]]]:
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError(f"invalid env: {type(env).__name__}; expected a mapping of names to values, or None")
    pairs = []
    for key, value in env.items():
        for item in (key, value):
            if not isinstance(item, (str, bytes, os.PathLike)):
                raise TypeError(
                    f"invalid environment variable {key!r}: {item!r} ({type(item).__name__}); expected str or bytes"
                )
        key, value = os.fsdecode(key), os.fsdecode(value)
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"invalid environment variable name {key!r}: expected a non-empty name without '=' or NUL")
        if "\0" in value:
            raise ValueError(f"invalid value of environment variable {key!r}: {value!r} contains a NUL byte")
        pairs.append((key, value))
    return pairs


def _cwd(cwd: Any) -> str:
    if not isinstance(cwd, (str, bytes, os.PathLike)):
        raise TypeError(f"invalid cwd: {cwd!r} ({type(cwd).__name__}); expected a path (str, bytes or os.PathLike)")
    text = os.fsdecode(cwd)
    if "\0" in text:
        raise ValueError(f"invalid cwd {text!r}: embedded null byte")
    return text


def _input_bytes(input: Any, text_mode: bool, encoding: Optional[str], errors: Optional[str]) -> Optional[bytes]:
    if input is None:
        return None
    if isinstance(input, str):
        if not text_mode:
            raise TypeError("invalid input: str given without text=True; pass bytes, or set text=True")
        return input.encode(encoding or locale.getpreferredencoding(False), errors or "strict")
    if isinstance(input, (bytes, bytearray, memoryview)):
        return bytes(input)
    raise TypeError(f"invalid input: {type(input).__name__}; expected bytes (or str with text=True)")


def _decode(data: bytes, encoding: Optional[str], errors: Optional[str]) -> str:
    """Decode like subprocess's text mode, with universal newlines."""
    text = data.decode(encoding or locale.getpreferredencoding(False), errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class Process(StreamMethods):
    """A running command whose stdout and stderr are being captured.

    Made by ``spawn()``. ``wait()`` returns the ``ProcessResult``;
    ``terminate()`` and ``kill()`` signal the whole process group. As a
    context manager, leaving the block ends a process still running (SIGTERM
    to the group, then SIGKILL after ``kill_grace`` seconds), reaps it and
    closes the capture: it never leaves a child or a thread behind.
    """

    def __init__(
        self,
        args: Args,
        *,
        config: Optional[OutputCaptureConfig] = None,
        timeout: Optional[float] = None,
        input: Union[bytes, str, None] = None,
        stdin: Union[int, IO[Any], None] = None,
        cwd: Optional[StrOrBytesPath] = None,
        env: Optional[Mapping[Any, Any]] = None,
        shell: bool = False,
        text: bool = False,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        kill_grace: float = 0.5,
    ) -> None:
        self.args = args
        self._config = _check_config(config)
        self._timeout = check_timeout("timeout", timeout, allow_none=True)
        grace = check_timeout("kill_grace", kill_grace, allow_none=False)
        if grace is None or not (math.isfinite(grace) and grace >= 0):
            raise ValueError(f"invalid kill_grace: {kill_grace!r}; expected a finite number of seconds >= 0")
        self._kill_grace = grace
        self._text = bool(text or encoding or errors)
        self._encoding = encoding
        self._errors = errors
        if self._text:
            # Fail before the command runs, as subprocess does.
            codecs.lookup(encoding or locale.getpreferredencoding(False))
            codecs.lookup_error(errors or "strict")
        self._result: Optional[ProcessResult] = None
        self._timed_out = False

        argv = _argv(args, bool(shell))
        stdin_fd = None if stdin is None or stdin == subprocess.DEVNULL else _fileno("stdin", stdin)
        if stdin_fd is not None and stdin_fd < 0:
            raise ValueError(f"invalid stdin: {stdin!r}; expected a file descriptor, a file object or None")
        input_bytes = _input_bytes(input, self._text, encoding, errors)
        if input_bytes is not None and stdin_fd is not None:
            raise ValueError("invalid arguments: input and stdin cannot both be given")
        cwd_text = None if cwd is None else _cwd(cwd)

        try:
            self._native = _native.NativeProcess(
                argv[0],
                argv[1:],
                cwd=cwd_text,
                env=_environment(env),
                input=input_bytes,
                stdin_fd=stdin_fd,
                config=self._config._fields(),
            )
        except OSError as error:
            # A failed chdir in the child reports ENOENT or ENOTDIR like a
            # missing program does; name the directory in that case.
            if cwd_text is not None and not os.path.isdir(cwd_text):
                raise OSError(error.errno, error.strerror, cwd_text) from None
            raise
        self._started = time.monotonic()
        self.capture = OutputCapture._wrap(self._native, self._config)

    def _open_stream(self, which: str) -> "_native.NativeStream":
        return self.capture._open_stream(which)

    @property
    def pid(self) -> int:
        """The child's process ID, which is also its process group ID."""
        return self._native.pid

    @property
    def returncode(self) -> Optional[int]:
        """The exit code once the process was reaped (``-N`` for signal N), else None."""
        return self._native.poll()

    def poll(self) -> Optional[int]:
        """Return the exit code if the process has exited, else None; never blocks."""
        return self._native.poll()

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group (nothing once it was reaped)."""
        if isinstance(signum, bool) or not isinstance(signum, int):
            raise TypeError(f"invalid signal: {signum!r} ({type(signum).__name__}); expected a signal number")
        if not 1 <= signum < signal.NSIG:
            raise ValueError(f"invalid signal number: {signum}; expected 1 to {signal.NSIG - 1}")
        self._native.signal_group(int(signum))

    def terminate(self) -> None:
        """Send SIGTERM to the whole process group."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL to the whole process group."""
        self.send_signal(signal.SIGKILL)

    def _time_left(self) -> Optional[float]:
        if self._timeout is None or self._timed_out:
            return None
        return max(0.0, self._timeout - (time.monotonic() - self._started))

    def _expire(self) -> None:
        if not self._timed_out:
            self._timed_out = True
            self._end_group()

    def _end_group(self) -> None:
        """SIGTERM the group; SIGKILL it once the child has exited or the kill
        grace has passed, whichever comes first; then reap the child.

        The child is reaped only after the SIGKILL, so its group ID still
        names this group then, and members that ignored SIGTERM (a
        background job, say) do not outlive it.
        """
        if self._native.signal_group(signal.SIGTERM):
            # A stopped process acts on SIGTERM only once continued.
            self._native.signal_group(signal.SIGCONT)
            self._native.wait_exited(self._kill_grace)
            self._native.signal_group(signal.SIGKILL)
        self._native.wait(None)

    def _finish(self) -> ProcessResult:
        self._native.finish(EOF_GRACE)
        output = self.capture.get_output()
        stdout, stderr = output.get_stdout(), output.get_stderr()
        if self._text:
            stdout_value: Union[bytes, str] = _decode(stdout, self._encoding, self._errors)
            stderr_value: Union[bytes, str] = _decode(stderr, self._encoding, self._errors)
        else:
            stdout_value, stderr_value = stdout, stderr
        self._result = ProcessResult(self.args, output.exit_code, stdout_value, stderr_value, output, self._timed_out)
        return self._result

    def wait(self, timeout: Optional[float] = None) -> ProcessResult:
        """Wait for the process to exit and return its ``ProcessResult``.

        If ``timeout`` seconds pass first, raise ``TimeoutExpired`` and leave
        the process running. If the ``timeout`` given to ``spawn()`` passes
        (here, or while its output is iterated, which ends the process
        group then), raise ``TimeoutExpired`` carrying the partial result. The GIL is released while waiting; Ctrl-C raises
        ``KeyboardInterrupt`` and leaves the process to the caller (``run()``
        and the ``with`` block end it).
        """
        if self._result is not None:
            return self._result
        wait_timeout = check_timeout("timeout", timeout, allow_none=True)
        if not self._timed_out:
            remaining = self._time_left()
            own_timeout_first = remaining is not None and (wait_timeout is None or remaining <= wait_timeout)
            limit = remaining if own_timeout_first else wait_timeout
            if self._native.wait(limit) is None:
                if not own_timeout_first:
                    raise TimeoutExpired(self.args, float(wait_timeout or 0.0))
                self._expire()
        # The deadline may also have passed while the output was iterated.
        if self._timed_out:
            result = self._finish()
            raise TimeoutExpired(self.args, float(self._timeout or 0.0), result.stdout, result.stderr, result=result)
        return self._finish()

    def close(self) -> None:
        """End the process if it still runs, reap it and close the capture.

        The capture's output stays available through ``capture.get_output()``.
        """
        try:
            if self._result is None:
                if self._native.poll() is None:
                    self._end_group()
                self._native.finish(EOF_GRACE)
        finally:
            self.capture.close()

    def __enter__(self) -> "Process":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        code = self._native.poll()
        state = "running" if code is None else f"returncode={code}"
        return f"<Process pid={self.pid} {state} args={self.args!r}>"


def spawn(
    args: Args,
    *,
    config: Optional[OutputCaptureConfig] = None,
    timeout: Optional[float] = None,
    input: Union[bytes, str, None] = None,
    stdin: Union[int, IO[Any], None] = None,
    cwd: Optional[StrOrBytesPath] = None,
    env: Optional[Mapping[Any, Any]] = None,
    shell: bool = False,
    text: bool = False,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    kill_grace: float = 0.5,
) -> Process:
    """Start a command in its own process group and return at once.

    Takes ``run()``'s options except ``check``; ``timeout`` counts from the
    start and ends the process group as in ``run()``.
    """
    return Process(
        args,
        config=config,
        timeout=timeout,
        input=input,
        stdin=stdin,
        cwd=cwd,
        env=env,
        shell=shell,
        text=text,
        encoding=encoding,
        errors=errors,
        kill_grace=kill_grace,
    )


def run(
    args: Args,
    *,
    config: Optional[OutputCaptureConfig] = None,
    timeout: Optional[float] = None,
    input: Union[bytes, str, None] = None,
    stdin: Union[int, IO[Any], None] = None,
    cwd: Optional[StrOrBytesPath] = None,
    env: Optional[Mapping[Any, Any]] = None,
    check: bool = False,
    shell: bool = False,
    text: bool = False,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    kill_grace: float = 0.5,
) -> ProcessResult:
    """Run a command to completion, capturing stdout and stderr.

    Behaves like ``subprocess.run(args, capture_output=True, ...)``: stdin is
    ``/dev/null`` unless ``input`` or ``stdin`` is given; the child runs in
    its own process group with default signal dispositions. On ``timeout``
    the group gets SIGTERM, then SIGKILL after ``kill_grace`` seconds, and
    ``TimeoutExpired`` carries the partial result as ``.result``. Ctrl-C ends
    the group the same way and re-raises ``KeyboardInterrupt``. Once the
    child exits, ``run`` returns within ``EOF_GRACE`` seconds even if a
    background grandchild still has the pipes open, keeping every byte already
    written. ``check=True`` raises ``CalledProcessError`` for a non-zero exit.
    """
    process = spawn(
        args,
        config=config,
        timeout=timeout,
        input=input,
        stdin=stdin,
        cwd=cwd,
        env=env,
        shell=shell,
        text=text,
        encoding=encoding,
        errors=errors,
        kill_grace=kill_grace,
    )
    with process:
        result = process.wait()
    if check:
        result.check_returncode()
    return result
