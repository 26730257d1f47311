"""outcap: run commands and capture their stdout and stderr.

Fast, in bounded memory (one ring buffer per stream keeps the newest bytes),
with ANSI escape stripping and gzip compression of large output, on native
reader threads that never hold the GIL.
"""

from ._capture import OutputCapture
from ._config import OutputCaptureConfig
from ._native import CaptureClosedError, CaptureError, Chunk, StreamingDisabledError
from ._native import strip_ansi as _strip_ansi
from ._output import CaptureStats, ProcessOutput
from ._process import (
    EOF_GRACE,
    CalledProcessError,
    Process,
    ProcessResult,
    TimeoutExpired,
    run,
    spawn,
)

__all__ = [
    "EOF_GRACE",
    "CalledProcessError",
    "CaptureClosedError",
    "CaptureError",
    "CaptureStats",
    "Chunk",
    "OutputCapture",
    "OutputCaptureConfig",
    "Process",
    "ProcessOutput",
    "ProcessResult",
    "StreamingDisabledError",
    "TimeoutExpired",
    "run",
    "spawn",
    "strip_ansi",
]

__version__ = "0.1.0"


def strip_ansi(data: bytes) -> bytes:
    """Return ``data`` without ANSI escape sequences.

    Removes CSI, OSC (ended by BEL or ST), DCS/SOS/PM/APC strings, two-byte
    escapes and charset selections, and nothing else: tab, CR, NUL, other C0
    controls and invalid UTF-8 pass through unchanged. A sequence still open
    at the end is dropped. This is the stripper a capture runs on every read.
    """
    if isinstance(data, str):
        raise TypeError("invalid data: str; expected bytes (encode the text first)")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"invalid data: {type(data).__name__}; expected bytes")
    return _strip_ansi(bytes(data) if isinstance(data, (bytearray, memoryview)) else data)
