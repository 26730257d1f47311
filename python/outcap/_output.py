"""ProcessOutput, the record of one capture, and CaptureStats."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Dict, Optional, Tuple

from . import _native

__all__ = ["CaptureStats", "ProcessOutput"]

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def _datetime_from_micros(micros: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=micros)


def _micros_from_datetime(value: datetime.datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


@dataclasses.dataclass(frozen=True, repr=False)
class ProcessOutput:
    """The record of one capture.

    Attributes:
        stdout, stderr: retained bytes as stored: gzip data when ``compressed``.
            Use ``get_stdout()``/``get_stderr()`` for the plain bytes.
        exit_code: the process's exit code, ``-N`` when killed by signal N,
            None when no process was attached.
        duration: from capture start to capture end.
        stdout_size, stderr_size: bytes read from each pipe, before
            truncation, ANSI stripping and compression.
        truncated: the ring buffer overwrote bytes of either stream.
        compressed: ``stdout`` and ``stderr`` each hold one gzip member (an
            empty stream stays empty).
        capture_started, capture_ended: UTC-aware datetimes.
        streaming: streaming was enabled.
        stream_channel: identifier of this capture's stream when streaming.
    """

    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: Optional[int] = None
    duration: datetime.timedelta = datetime.timedelta(0)
    stdout_size: int = 0
    stderr_size: int = 0
    truncated: bool = False
    compressed: bool = False
    capture_started: datetime.datetime = _EPOCH
    capture_ended: datetime.datetime = _EPOCH
    streaming: bool = False
    stream_channel: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("stdout", "stderr"):
            value = getattr(self, name)
            if isinstance(value, (bytearray, memoryview)):
                object.__setattr__(self, name, bytes(value))
            elif not isinstance(value, bytes):
                raise TypeError(f"invalid {name}: expected bytes, got {type(value).__name__}")
        if not isinstance(self.duration, datetime.timedelta):
            raise TypeError(f"invalid duration: {self.duration!r}; expected a datetime.timedelta")
        for name in ("capture_started", "capture_ended"):
            value = getattr(self, name)
            if not isinstance(value, datetime.datetime) or value.tzinfo is None:
                raise TypeError(f"invalid {name}: {value!r}; expected a timezone-aware datetime.datetime")
            object.__setattr__(self, name, value.astimezone(_UTC))

    @classmethod
    def _from_fields(cls, fields: Tuple[Any, ...]) -> "ProcessOutput":
        (stdout, stderr, exit_code, duration_us, stdout_size, stderr_size, truncated, compressed,
         started_us, ended_us, streaming, stream_channel) = fields
        return cls(
            stdout=stdout,
            stderr=stderr,
            exit_code=exit_code,
            duration=datetime.timedelta(microseconds=duration_us),
            stdout_size=stdout_size,
            stderr_size=stderr_size,
            truncated=truncated,
            compressed=compressed,
            capture_started=_datetime_from_micros(started_us),
            capture_ended=_datetime_from_micros(ended_us),
            streaming=streaming,
            stream_channel=stream_channel,
        )

    def get_stdout(self) -> bytes:
        """Return the retained stdout bytes, decompressed when needed."""
        return _native.gunzip(self.stdout) if self.compressed and self.stdout else self.stdout

    def get_stderr(self) -> bytes:
        """Return the retained stderr bytes, decompressed when needed."""
        return _native.gunzip(self.stderr) if self.compressed and self.stderr else self.stderr

    def to_dict(self) -> Dict[str, Any]:
        """Return the attributes as a dict of Python values."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ProcessOutput":
        """Build a record from ``to_dict()`` output; unknown keys raise TypeError."""
        return cls(**data)

    def to_json(self) -> str:
        """Encode as JSON with the Go service's keys and encodings.

        Bytes are base64 and left out when empty, ``duration`` is integer
        nanoseconds, times are RFC 3339 in UTC, and ``streamChannel`` is left
        out when it is None (an empty string is written, so that the record
        reads back equal).
        """
        return _native.output_to_json(
            self.stdout,
            self.stderr,
            self.exit_code,
            self.duration // _MICROSECOND,
            self.stdout_size,
            self.stderr_size,
            self.truncated,
            self.compressed,
            _micros_from_datetime(self.capture_started),
            _micros_from_datetime(self.capture_ended),
            self.streaming,
            self.stream_channel,
        )

    @classmethod
    def from_json(cls, text: str) -> "ProcessOutput":
        """Parse a JSON record written by ``to_json()`` or by the Go service.

        Digits below microseconds are dropped. Raises ValueError naming the
        field that is invalid.
        """
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        fields = _native.output_from_json(text)
        # Go accepts times that are outside datetime's years 1 to 9999 in
        # UTC, such as year 0 or 9999-12-31T23:59:59-01:00.
        for key, micros in (("captureStarted", fields[8]), ("captureEnded", fields[9])):
            try:
                _datetime_from_micros(micros)
            except OverflowError:
                raise ValueError(
                    f"invalid ProcessOutput JSON field {key!r}: the time is outside years 1 to 9999 in UTC"
                ) from None
        return cls._from_fields(fields)

    def __repr__(self) -> str:
        return (
            f"ProcessOutput(exit_code={self.exit_code!r}, stdout={len(self.stdout)} bytes, "
            f"stderr={len(self.stderr)} bytes, duration={self.duration.total_seconds():.6f}s, "
            f"truncated={self.truncated}, compressed={self.compressed})"
        )


@dataclasses.dataclass(frozen=True)
class CaptureStats:
    """Counters of one capture at one moment.

    ``*_bytes_read`` count bytes as read from the pipe; ``*_bytes_dropped``
    count bytes overwritten in the ring buffer (after ANSI stripping).
    ``compression_ratio`` is uncompressed bytes divided by compressed bytes,
    None when the output was not compressed.
    """

    stdout_bytes_read: int
    stderr_bytes_read: int
    stdout_bytes_dropped: int
    stderr_bytes_dropped: int
    read_calls: int
    chunks_delivered: int
    ansi_bytes_removed: int
    compression_seconds: float
    compression_ratio: Optional[float]

    def to_dict(self) -> Dict[str, Any]:
        """Return the counters as a dict."""
        return dataclasses.asdict(self)
