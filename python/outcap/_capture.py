"""OutputCapture: native reader threads feeding one ring buffer per stream."""

from __future__ import annotations

import dataclasses
import itertools
import os
from types import TracebackType
from typing import Any, Optional, Type, Union

from . import _native
from ._config import OutputCaptureConfig, check_timeout
from ._native import CaptureClosedError
from ._output import CaptureStats, ProcessOutput
from ._stream import StreamMethods

__all__ = ["OutputCapture"]

_channel_numbers = itertools.count(1)

StreamArg = Union[int, Any, None]

_MAX_FD = 2**31 - 1


def _fileno(name: str, stream: StreamArg) -> Optional[int]:
    if stream is None:
        return None
    if isinstance(stream, bool):
        raise TypeError(f"invalid {name}: {stream!r}; expected a file descriptor, an object with fileno(), or None")
    if isinstance(stream, int):
        fd = stream
    else:
        fileno = getattr(stream, "fileno", None)
        if fileno is None:
            raise TypeError(
                f"invalid {name}: {stream!r} ({type(stream).__name__}); "
                "expected a file descriptor, an object with fileno(), or None"
            )
        fd = int(fileno())
    if not 0 <= fd <= _MAX_FD:
        raise ValueError(f"invalid {name} file descriptor: {fd}; expected an open descriptor >= 0 and <= {_MAX_FD}")
    return fd


def _check_config(config: Optional[OutputCaptureConfig]) -> OutputCaptureConfig:
    if config is None:
        return OutputCaptureConfig()
    if not isinstance(config, OutputCaptureConfig):
        raise TypeError(f"invalid config: {config!r}; expected an OutputCaptureConfig or None")
    return config.copy()


class OutputCapture(StreamMethods):
    """Capture two streams with one native reader thread each.

    ``capture_streams()`` starts reading and returns at once; ``wait()``
    blocks until both streams reach EOF; ``get_output()`` returns a
    ``ProcessOutput`` snapshot at any time. Use it as a context manager, or
    call ``close()``, to stop the threads and release the descriptors.
    """

    def __init__(self, config: Optional[OutputCaptureConfig] = None) -> None:
        self._config = _check_config(config)
        self._native = _native.NativeCapture(self._config._fields())
        self._stream_channel = self._new_channel() if self._config.streaming_enabled else None
        self._owner: Optional["_native.NativeProcess"] = None

    @classmethod
    def _wrap(cls, owner: "_native.NativeProcess", config: OutputCaptureConfig) -> "OutputCapture":
        """Wrap the capture that a native process owns."""
        capture = cls.__new__(cls)
        capture._config = config
        capture._native = owner.capture
        capture._owner = owner
        capture._stream_channel = cls._new_channel() if config.streaming_enabled else None
        return capture

    @staticmethod
    def _new_channel() -> str:
        return f"outcap-{os.getpid()}-{next(_channel_numbers)}"

    @property
    def config(self) -> OutputCaptureConfig:
        """A copy of the configuration this capture runs with."""
        return self._config.copy()

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._native.closed

    def _check_open(self) -> None:
        if self._native.closed:
            raise CaptureClosedError("the capture is closed; only close(), get_output() and stats() still work")

    def _open_stream(self, which: str) -> "_native.NativeStream":
        self._check_open()
        if self._owner is not None:
            return self._owner.stream(which)
        return self._native.stream(which)

    def capture_streams(self, stdout: StreamArg = None, stderr: StreamArg = None) -> None:
        """Start one reader thread per stream and return at once.

        Each argument is an int file descriptor, an object with ``fileno()``,
        or None. The capture reads its own duplicate of each descriptor and
        closes that duplicate when done; the caller's descriptor stays open.
        A second call raises ``CaptureError``.
        """
        self._check_open()
        self._native.capture_streams(_fileno("stdout", stdout), _fileno("stderr", stderr))

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until both streams reached EOF or the capture was cancelled.

        Returns False if ``timeout`` seconds passed first (a negative timeout
        counts as 0). The GIL is released while waiting, and Ctrl-C raises
        ``KeyboardInterrupt`` within about 50 ms. A failed read raises OSError.
        """
        self._check_open()
        return self._native.wait(check_timeout("timeout", timeout))

    def cancel(self) -> None:
        """Stop reading now; what was read so far stays available."""
        self._check_open()
        self._native.cancel()

    def get_output(self) -> ProcessOutput:
        """Return a snapshot of the output as a ``ProcessOutput``.

        Callable at any time, also after ``close()``. It is final once
        ``wait()`` returned True (for a capture a ``Process`` owns: once
        ``Process.wait()`` returned).
        """
        output = ProcessOutput._from_fields(self._native.output())
        if self._stream_channel is not None:
            output = dataclasses.replace(output, stream_channel=self._stream_channel)
        return output

    def stats(self) -> CaptureStats:
        """Return the capture's counters at this moment."""
        return CaptureStats(**self._native.stats())

    def close(self) -> None:
        """Cancel, join the reader threads and release every descriptor.

        Idempotent. Dropping an unclosed capture also stops its threads.
        """
        self._native.close()

    def __enter__(self) -> "OutputCapture":
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._native.closed else ("finished" if self._native.finished else "open")
        return f"<OutputCapture {state} max_buffer_size={self._config.max_buffer_size}>"
