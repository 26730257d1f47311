"""OutputCaptureConfig: defaults, validation, repr, equality, pickling and copying into captures."""

from __future__ import annotations

import datetime
import math
import os
import pickle

import pytest

import outcap
from outcap import OutputCaptureConfig

FIELDS = (
    "max_buffer_size",
    "streaming_enabled",
    "flush_interval",
    "compression_enabled",
    "compression_threshold",
    "process_ansi",
)

#: A valid value for every field that differs from its default.
NON_DEFAULTS = {
    "max_buffer_size": 4096,
    "streaming_enabled": True,
    "flush_interval": 0.25,
    "compression_enabled": False,
    "compression_threshold": 0,
    "process_ansi": False,
}

#: (field, invalid value, expected exception type, text the message must contain for the value).
INVALID_VALUES = [
    ("max_buffer_size", 0, ValueError, "0"),
    ("max_buffer_size", -1, ValueError, "-1"),
    ("max_buffer_size", "10M", TypeError, "10M"),
    ("max_buffer_size", 1.5, TypeError, "1.5"),
    ("max_buffer_size", True, TypeError, "True"),
    ("compression_threshold", -1, ValueError, "-1"),
    ("compression_threshold", "1M", TypeError, "1M"),
    ("flush_interval", -0.1, ValueError, "-0.1"),
    ("flush_interval", math.nan, ValueError, "nan"),
    ("flush_interval", math.inf, ValueError, "inf"),
    ("flush_interval", datetime.timedelta(seconds=-1), ValueError, "timedelta"),
    ("flush_interval", "0.1", TypeError, "0.1"),
    ("streaming_enabled", 1, TypeError, "1"),
    ("streaming_enabled", "yes", TypeError, "yes"),
    ("compression_enabled", 1, TypeError, "1"),
    ("compression_enabled", "yes", TypeError, "yes"),
    ("process_ansi", 1, TypeError, "1"),
    ("process_ansi", "yes", TypeError, "yes"),
]


def invalid_id(case: tuple) -> str:
    field, value, _, _ = case
    return f"{field}={value!r}"


def test_config_defaults():
    config = OutputCaptureConfig()

    assert config.max_buffer_size == 10 * 1024 * 1024
    assert config.streaming_enabled is False
    assert config.flush_interval == 0.1
    assert config.compression_enabled is True
    assert config.compression_threshold == 1024 * 1024
    assert config.process_ansi is True


def test_config_flush_interval_default_is_float():
    assert type(OutputCaptureConfig().flush_interval) is float


def test_config_rejects_positional_arguments():
    with pytest.raises(TypeError):
        OutputCaptureConfig(1024)  # type: ignore[misc]


def test_config_rejects_unknown_keyword():
    with pytest.raises(TypeError):
        OutputCaptureConfig(buffer_size=1024)  # type: ignore[call-arg]


@pytest.mark.parametrize("field", FIELDS)
def test_config_accepts_each_non_default(field):
    config = OutputCaptureConfig(**{field: NON_DEFAULTS[field]})

    assert getattr(config, field) == NON_DEFAULTS[field]


@pytest.mark.parametrize("case", INVALID_VALUES, ids=invalid_id)
def test_config_constructor_rejects_invalid_value(case):
    field, value, error_type, value_text = case

    with pytest.raises(error_type) as raised:
        OutputCaptureConfig(**{field: value})

    message = str(raised.value)
    assert field in message
    assert value_text in message


@pytest.mark.parametrize("case", INVALID_VALUES, ids=invalid_id)
def test_config_assignment_rejects_invalid_value(case):
    field, value, error_type, value_text = case
    config = OutputCaptureConfig()
    before = getattr(config, field)

    with pytest.raises(error_type) as raised:
        setattr(config, field, value)

    message = str(raised.value)
    assert field in message
    assert value_text in message
    assert getattr(config, field) == before


@pytest.mark.parametrize("field", FIELDS)
def test_config_assignment_stores_valid_value(field):
    config = OutputCaptureConfig()

    setattr(config, field, NON_DEFAULTS[field])

    assert getattr(config, field) == NON_DEFAULTS[field]


def test_config_max_buffer_size_accepts_one():
    assert OutputCaptureConfig(max_buffer_size=1).max_buffer_size == 1


def test_config_compression_threshold_accepts_zero():
    config = OutputCaptureConfig()

    config.compression_threshold = 0

    assert config.compression_threshold == 0


def test_config_flush_interval_accepts_zero():
    config = OutputCaptureConfig(flush_interval=0)

    assert config.flush_interval == 0.0


def test_config_flush_interval_timedelta_reads_back_float():
    config = OutputCaptureConfig(flush_interval=datetime.timedelta(milliseconds=50))

    assert type(config.flush_interval) is float
    assert config.flush_interval == 0.05


def test_config_flush_interval_assigned_timedelta_reads_back_float():
    config = OutputCaptureConfig()

    config.flush_interval = datetime.timedelta(milliseconds=50)

    assert type(config.flush_interval) is float
    assert config.flush_interval == 0.05


def test_config_flush_interval_int_reads_back_float():
    config = OutputCaptureConfig(flush_interval=2)

    assert type(config.flush_interval) is float
    assert config.flush_interval == 2.0


def test_config_unknown_attribute_assignment_raises():
    config = OutputCaptureConfig()

    with pytest.raises(AttributeError):
        config.buffer_size = 1024  # type: ignore[attr-defined]


def test_config_unknown_attribute_read_raises():
    with pytest.raises(AttributeError):
        OutputCaptureConfig().buffer_size  # type: ignore[attr-defined]  # noqa: B018


def test_config_repr_shows_every_field():
    config = OutputCaptureConfig(**NON_DEFAULTS)

    text = repr(config)

    for field in FIELDS:
        assert f"{field}={NON_DEFAULTS[field]!r}" in text


def test_config_equal_field_by_field():
    assert OutputCaptureConfig(**NON_DEFAULTS) == OutputCaptureConfig(**NON_DEFAULTS)


def test_config_default_equals_explicit_defaults():
    explicit = OutputCaptureConfig(
        max_buffer_size=10 * 1024 * 1024,
        streaming_enabled=False,
        flush_interval=datetime.timedelta(milliseconds=100),
        compression_enabled=True,
        compression_threshold=1024 * 1024,
        process_ansi=True,
    )

    assert OutputCaptureConfig() == explicit


@pytest.mark.parametrize("field", FIELDS)
def test_config_differs_when_one_field_differs(field):
    assert OutputCaptureConfig() != OutputCaptureConfig(**{field: NON_DEFAULTS[field]})


def test_config_not_equal_to_other_type():
    assert OutputCaptureConfig() != {"max_buffer_size": 10 * 1024 * 1024}


def test_config_pickle_round_trip():
    config = OutputCaptureConfig(**NON_DEFAULTS)

    copy = pickle.loads(pickle.dumps(config))

    assert copy == config
    assert copy is not config


def test_config_pickle_keeps_validation():
    copy = pickle.loads(pickle.dumps(OutputCaptureConfig()))

    with pytest.raises(ValueError):
        copy.max_buffer_size = 0


def test_capture_copies_config():
    config = OutputCaptureConfig(max_buffer_size=1000)
    capture = outcap.OutputCapture(config)
    try:
        config.max_buffer_size = 10
        config.process_ansi = False

        assert capture.config.max_buffer_size == 1000
        assert capture.config.process_ansi is True
    finally:
        capture.close()


def test_capture_config_property_returns_copy():
    capture = outcap.OutputCapture(OutputCaptureConfig(max_buffer_size=1000))
    try:
        capture.config.max_buffer_size = 10

        assert capture.config.max_buffer_size == 1000
    finally:
        capture.close()


def test_capture_keeps_buffer_size_after_config_change(pipes):
    config = OutputCaptureConfig(max_buffer_size=1000)
    capture = outcap.OutputCapture(config)
    config.max_buffer_size = 10
    read_end, write_end = pipes()
    data = b"".join(b"%04d" % index for index in range(500))
    try:
        capture.capture_streams(read_end, None)
        os.write(write_end, data)
        pipes.close(write_end)
        assert capture.wait(5.0)

        assert capture.get_output().stdout == data[-1000:]
    finally:
        capture.close()


def test_spawn_copies_config():
    config = OutputCaptureConfig(max_buffer_size=1000)
    with outcap.spawn(["sh", "-c", "head -c 3000 /dev/zero | tr '\\0' x"], config=config) as process:
        config.max_buffer_size = 10

        assert process.capture.config.max_buffer_size == 1000

        result = process.wait(timeout=10)

    assert result.stdout == b"x" * 1000


def test_run_leaves_config_unchanged():
    config = OutputCaptureConfig(max_buffer_size=1000)

    outcap.run(["true"], config=config)

    assert config == OutputCaptureConfig(max_buffer_size=1000)
