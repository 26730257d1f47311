"""Type stubs for the native extension module ``outcap._native``.

The classes here are blunt building blocks; the public API in ``outcap``
wraps them with defaults, argument checks and text handling.
"""

from typing import Any, Dict, List, Optional, Tuple, final

__all__ = [
    "CaptureClosedError",
    "CaptureError",
    "Chunk",
    "EOF_GRACE",
    "GZIP_DEFAULT_LEVEL",
    "MAX_STRING_LEN",
    "NativeCapture",
    "NativeProcess",
    "NativeStream",
    "READ_BUFFER_SIZE",
    "StreamingDisabledError",
    "gunzip",
    "gzip",
    "output_from_json",
    "output_to_json",
    "strip_ansi",
]

_ConfigFields = Tuple[int, bool, float, bool, int, bool]
_OutputFields = Tuple[bytes, bytes, Optional[int], int, int, int, bool, bool, int, int, bool, Optional[str]]

READ_BUFFER_SIZE: int
MAX_STRING_LEN: int
EOF_GRACE: float
GZIP_DEFAULT_LEVEL: int

class CaptureError(Exception):
    """Base class of outcap's own errors."""

class CaptureClosedError(CaptureError):
    """The capture was closed; only close(), get_output() and stats() still work."""

class StreamingDisabledError(CaptureError):
    """Live iteration needs OutputCaptureConfig(streaming_enabled=True)."""

@final
class Chunk:
    """Bytes of one stream, as a stream iterator hands them out."""

    @property
    def stream(self) -> str:
        """``"stdout"`` or ``"stderr"``."""
    @property
    def data(self) -> bytes: ...
    @property
    def offset(self) -> int:
        """Position of ``data[0]`` in the stream, after ANSI stripping."""
    @property
    def skipped(self) -> int:
        """Bytes this iterator lost just before this chunk (overwritten in the ring)."""
    @property
    def timestamp(self) -> float:
        """Unix time when the first byte of ``data`` was read."""

@final
class NativeStream:
    """A cursor into a capture's ring buffers; a blocking iterator of ``Chunk``."""

    def __iter__(self) -> "NativeStream": ...
    def __next__(self) -> Chunk: ...
    def next(self, timeout: Optional[float] = None) -> Optional[Chunk]:
        """Wait for the next chunk; None at the end; TimeoutError when ``timeout`` passed."""
    def try_next(self) -> Optional[Chunk]:
        """Return the next chunk if ready now, None at the end; raise BlockingIOError when none is ready."""
    def next_lines(self, errors: str, timeout: Optional[float] = None) -> Optional[List[str]]:
        """Wait for a chunk and return the UTF-8 lines it completes; the unfinished lines at the end; then None.

        Raises TimeoutError when ``timeout`` seconds pass first.
        """
    def try_next_lines(self, errors: str) -> Optional[List[str]]:
        """Like ``next_lines``, but raise BlockingIOError when no chunk is ready."""
    def wait_for_change(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds (at most 50 ms) until the capture changes."""

@final
class NativeCapture:
    """A capture of raw file descriptors, or the capture a process owns."""

    def __new__(cls, config: _ConfigFields) -> "NativeCapture": ...
    def capture_streams(self, stdout: Optional[int], stderr: Optional[int]) -> None:
        """Start reading duplicates of the given descriptors (either may be None)."""
    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for EOF on both streams; False when ``timeout`` seconds passed first."""
    def cancel(self) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def finished(self) -> bool: ...
    def output(self) -> _OutputFields:
        """Return the output so far as a tuple of ``ProcessOutput`` fields."""
    def stats(self) -> Dict[str, Any]:
        """Return the counters, named like the fields of ``outcap.CaptureStats``."""
    def stream(self, which: str) -> NativeStream:
        """Open a new cursor over ``which``: "both", "stdout" or "stderr"."""

@final
class NativeProcess:
    """A child process in its own process group with its output captured."""

    def __new__(
        cls,
        program: str,
        args: List[str],
        *,
        cwd: Optional[str] = None,
        env: Optional[List[Tuple[str, str]]] = None,
        input: Optional[bytes] = None,
        stdin_fd: Optional[int] = None,
        config: _ConfigFields,
    ) -> "NativeProcess": ...
    @property
    def pid(self) -> int: ...
    @property
    def capture(self) -> NativeCapture: ...
    def stream(self, which: str) -> NativeStream:
        """Open a new cursor that also ends once the child exited and the EOF grace passed."""
    def poll(self) -> Optional[int]:
        """The exit code if the child has exited, else None; never blocks."""
    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Wait for exit and return the exit code, or None when ``timeout`` passed first."""
    def signal_group(self, signal: int) -> bool:
        """Send ``signal`` to the process group; False when the child was already reaped."""
    def wait_exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the child to exit without reaping it."""
    def finish(self, eof_grace: float) -> bool:
        """After exit: wait up to ``eof_grace`` seconds for EOF, stop the readers, record the exit code."""

def strip_ansi(data: bytes) -> bytes:
    """Remove ANSI escape sequences from ``data``."""

def gzip(data: bytes, level: int = ...) -> bytes:
    """Compress ``data`` as one gzip member at ``level`` (0-9), as stored output is."""

def gunzip(data: bytes) -> bytes:
    """Decompress gzip data (one or more members)."""

def output_to_json(
    stdout: bytes,
    stderr: bytes,
    exit_code: Optional[int],
    duration_us: int,
    stdout_size: int,
    stderr_size: int,
    truncated: bool,
    compressed: bool,
    capture_started_us: int,
    capture_ended_us: int,
    streaming: bool,
    stream_channel: Optional[str],
) -> str:
    """Encode the fields of a ``ProcessOutput`` as JSON in the Go service's format."""

def output_from_json(text: str) -> _OutputFields:
    """Parse a JSON record into ``ProcessOutput`` fields; ValueError names the invalid field."""
