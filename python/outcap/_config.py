"""OutputCaptureConfig: how a capture buffers, streams, compresses and filters output."""

from __future__ import annotations

import datetime
import math
from typing import Any, Callable, Dict, Optional, Tuple, Union

__all__ = ["OutputCaptureConfig"]

_MAX_SIZE = 2**63 - 1


def _check_size(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"invalid {field}: {value!r} ({type(value).__name__}); expected an integer number of bytes"
        )
    if not minimum <= value <= _MAX_SIZE:
        raise ValueError(f"invalid {field}: {value}; expected an integer number of bytes >= {minimum} and <= {_MAX_SIZE}")
    return int(value)


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"invalid {field}: {value!r} ({type(value).__name__}); expected True or False")
    return value


def _check_seconds(field: str, value: Any) -> float:
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"invalid {field}: {value!r} ({type(value).__name__}); "
            "expected seconds as a float or a datetime.timedelta"
        )
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"invalid {field}: {value!r}; expected a finite number of seconds >= 0")
    return seconds


def check_timeout(name: str, value: Any, allow_none: bool = True) -> Optional[float]:
    """Validate a timeout-like argument in seconds: a number (or None when allowed), not NaN."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        allowed = "a number of seconds or None" if allow_none else "a number of seconds"
        raise TypeError(f"invalid {name}: {value!r} ({type(value).__name__}); expected {allowed}")
    if math.isnan(value):
        raise ValueError(f"invalid {name}: {value!r}; expected a number of seconds")
    return float(value)


_VALIDATORS: Dict[str, Callable[[str, Any], Any]] = {
    "max_buffer_size": lambda field, value: _check_size(field, value, 1),
    "streaming_enabled": _check_bool,
    "flush_interval": _check_seconds,
    "compression_enabled": _check_bool,
    "compression_threshold": lambda field, value: _check_size(field, value, 0),
    "process_ansi": _check_bool,
}


class OutputCaptureConfig:
    """How a capture buffers, streams, compresses and filters output.

    Every field is keyword-only, validated on construction and on assignment
    (``ValueError`` for a value out of range, ``TypeError`` for a wrong type,
    each naming the field, the value and what is allowed). A capture copies
    its config, so changing a config later never changes a running capture.

    Fields:
        max_buffer_size: ring buffer capacity per stream, in bytes (>= 1).
            When a stream produces more, the newest bytes are kept.
        streaming_enabled: allow live iteration (``stream()``, ``lines()``,
            ``astream()``, ``alines()``).
        flush_interval: longest time in seconds (float or timedelta, >= 0) a
            read byte waits before stream iterators see it; 0 delivers every
            read at once. Reads back as a float.
        compression_enabled: gzip the stored output when it is large.
        compression_threshold: compress when stdout + stderr retained bytes
            exceed this many bytes (>= 0).
        process_ansi: strip ANSI escape sequences before storing and streaming.
    """

    __slots__ = tuple(f"_{name}" for name in _VALIDATORS)

    max_buffer_size: int
    streaming_enabled: bool
    flush_interval: float
    compression_enabled: bool
    compression_threshold: int
    process_ansi: bool

    def __init__(
        self,
        *,
        max_buffer_size: int = 10 * 1024 * 1024,
        streaming_enabled: bool = False,
        flush_interval: Union[float, datetime.timedelta] = 0.1,
        compression_enabled: bool = True,
        compression_threshold: int = 1024 * 1024,
        process_ansi: bool = True,
    ) -> None:
        self.max_buffer_size = max_buffer_size
        self.streaming_enabled = streaming_enabled
        self.flush_interval = flush_interval  # type: ignore[assignment]
        self.compression_enabled = compression_enabled
        self.compression_threshold = compression_threshold
        self.process_ansi = process_ansi

    def __setattr__(self, name: str, value: Any) -> None:
        validator = _VALIDATORS.get(name)
        if validator is None:
            raise AttributeError(
                f"OutputCaptureConfig has no field {name!r}; fields are: {', '.join(_VALIDATORS)}"
            )
        object.__setattr__(self, f"_{name}", validator(name, value))

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: map a field to its slot.
        if name in _VALIDATORS:
            return object.__getattribute__(self, f"_{name}")
        raise AttributeError(f"OutputCaptureConfig has no field {name!r}")

    def to_dict(self) -> Dict[str, Any]:
        """Return the fields as a dict, in declaration order."""
        return {name: getattr(self, name) for name in _VALIDATORS}

    def copy(self, **changes: Any) -> "OutputCaptureConfig":
        """Return a copy with the given fields changed (and validated)."""
        return OutputCaptureConfig(**{**self.to_dict(), **changes})

    def _fields(self) -> Tuple[int, bool, float, bool, int, bool]:
        """Return the fields in the order the native module takes them."""
        return (
            self.max_buffer_size,
            self.streaming_enabled,
            self.flush_interval,
            self.compression_enabled,
            self.compression_threshold,
            self.process_ansi,
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.to_dict().items())
        return f"OutputCaptureConfig({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutputCaptureConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __getstate__(self) -> Dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: Dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
