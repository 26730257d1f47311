"""ProcessOutput: attributes from real runs, dict and JSON forms (the Go
service's keys and encodings), pickling, equality, repr and decompression."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import gzip
import json
import os
import pickle
import re
import sys

import pytest

import outcap
from outcap import OutputCaptureConfig, ProcessOutput

UTC = datetime.timezone.utc

ATTRIBUTES = (
    "stdout",
    "stderr",
    "exit_code",
    "duration",
    "stdout_size",
    "stderr_size",
    "truncated",
    "compressed",
    "capture_started",
    "capture_ended",
    "streaming",
    "stream_channel",
)

#: A record as Go's encoding/json writes it: nanosecond times with an offset, stderr left out.
GO_RECORD = (
    '{"stdout":"aGVsbG8K","exitCode":0,"duration":1500000,"stdoutSize":6,"stderrSize":0,'
    '"truncated":false,"compressed":false,'
    '"captureStarted":"2024-06-01T12:00:00.123456789+02:00",'
    '"captureEnded":"2024-06-01T10:00:00.125Z","streaming":false}'
)

#: RFC 3339 in UTC with an optional fraction, as Go's time.RFC3339Nano writes it.
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def parse_utc_time(text: str) -> datetime.datetime:
    """Parse an RFC 3339 time ending in ``Z`` with up to 6 fraction digits."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sample_output(**changes) -> ProcessOutput:
    """Return a hand-built record with every field set; ``changes`` override fields."""
    fields = dict(
        stdout=b"hello\n",
        stderr=b"warn\n",
        exit_code=3,
        duration=datetime.timedelta(microseconds=1_500_250),
        stdout_size=6,
        stderr_size=5,
        truncated=False,
        compressed=False,
        capture_started=datetime.datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC),
        capture_ended=datetime.datetime(2024, 6, 1, 10, 0, 1, 623706, tzinfo=UTC),
        streaming=False,
        stream_channel=None,
    )
    fields.update(changes)
    return ProcessOutput(**fields)


def real_output() -> ProcessOutput:
    return outcap.run(["sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 5"]).output


def compressed_output() -> ProcessOutput:
    config = OutputCaptureConfig(compression_threshold=100)
    script = "import sys; sys.stdout.write('line\\n' * 1000); sys.stderr.write('e' * 500)"
    output = outcap.run([sys.executable, "-c", script], config=config).output
    assert output.compressed is True
    return output


def raw_capture_output() -> ProcessOutput:
    read_end, write_end = os.pipe()
    try:
        with outcap.OutputCapture() as capture:
            capture.capture_streams(read_end, None)
            os.write(write_end, b"raw")
            os.close(write_end)
            write_end = -1
            assert capture.wait(5.0)
        return capture.get_output()
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


# Attributes


def test_output_attributes_from_run():
    output = real_output()

    assert output.stdout == b"out\n"
    assert output.stderr == b"err"
    assert output.exit_code == 5
    assert output.stdout_size == 4
    assert output.stderr_size == 3
    assert output.truncated is False
    assert output.compressed is False
    assert output.streaming is False
    assert output.stream_channel is None


def test_output_times_from_run():
    before = datetime.datetime.now(UTC)
    output = real_output()
    after = datetime.datetime.now(UTC)

    assert isinstance(output.duration, datetime.timedelta)
    assert output.capture_started.tzinfo is not None
    assert output.capture_started.utcoffset() == datetime.timedelta(0)
    assert output.capture_ended - output.capture_started == output.duration
    assert output.capture_started >= before - datetime.timedelta(seconds=1)
    assert output.capture_ended <= after + datetime.timedelta(seconds=1)


def test_output_attributes_read_only():
    output = sample_output()

    with pytest.raises(AttributeError):
        output.exit_code = 0  # type: ignore[misc]


# Dict form


def test_output_to_dict_keys():
    assert tuple(sample_output().to_dict()) == ATTRIBUTES


def test_output_to_dict_values():
    data = sample_output().to_dict()

    assert data["stdout"] == b"hello\n"
    assert data["duration"] == datetime.timedelta(microseconds=1_500_250)
    assert data["capture_started"] == datetime.datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert data["stream_channel"] is None


def test_output_dict_round_trip():
    output = real_output()

    assert ProcessOutput.from_dict(output.to_dict()) == output


def test_output_from_dict_unknown_key_raises():
    data = sample_output().to_dict()
    data["pid"] = 42

    with pytest.raises(TypeError):
        ProcessOutput.from_dict(data)


# JSON form


def test_output_to_json_keys_exact():
    record = json.loads(sample_output(stderr=b"").to_json())

    assert set(record) == {
        "stdout",
        "exitCode",
        "duration",
        "stdoutSize",
        "stderrSize",
        "truncated",
        "compressed",
        "captureStarted",
        "captureEnded",
        "streaming",
    }


def test_output_to_json_all_keys_when_all_set():
    record = json.loads(sample_output(stream_channel="chan-1").to_json())

    assert set(record) == {
        "stdout",
        "stderr",
        "exitCode",
        "duration",
        "stdoutSize",
        "stderrSize",
        "truncated",
        "compressed",
        "captureStarted",
        "captureEnded",
        "streaming",
        "streamChannel",
    }


def test_output_to_json_values():
    record = json.loads(sample_output(stream_channel="chan-1", truncated=True).to_json())

    assert record["stdout"] == base64.b64encode(b"hello\n").decode("ascii")
    assert record["stderr"] == base64.b64encode(b"warn\n").decode("ascii")
    assert record["exitCode"] == 3
    assert record["stdoutSize"] == 6
    assert record["stderrSize"] == 5
    assert record["truncated"] is True
    assert record["compressed"] is False
    assert record["streaming"] is False
    assert record["streamChannel"] == "chan-1"


def test_output_to_json_duration_integer_nanoseconds():
    record = json.loads(sample_output().to_json())

    assert type(record["duration"]) is int
    assert record["duration"] == 1_500_250_000


def test_output_to_json_times_rfc3339_utc():
    output = sample_output()
    record = json.loads(output.to_json())

    for key, expected in (("captureStarted", output.capture_started), ("captureEnded", output.capture_ended)):
        assert UTC_TIME.match(record[key]), record[key]
        assert parse_utc_time(record[key]) == expected


def test_output_to_json_time_without_fraction():
    started = datetime.datetime(2024, 6, 1, 10, 0, 0, tzinfo=UTC)
    record = json.loads(sample_output(capture_started=started).to_json())

    assert record["captureStarted"] == "2024-06-01T10:00:00Z"


def test_output_to_json_converts_offset_times_to_utc():
    offset = datetime.timezone(datetime.timedelta(hours=2))
    started = datetime.datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=offset)
    record = json.loads(sample_output(capture_started=started).to_json())

    assert record["captureStarted"] == "2024-06-01T10:00:00.5Z"


def test_output_to_json_leaves_out_empty_streams():
    record = json.loads(sample_output(stdout=b"", stderr=b"").to_json())

    assert "stdout" not in record
    assert "stderr" not in record


def test_output_to_json_leaves_out_missing_stream_channel():
    record = json.loads(sample_output(stream_channel=None).to_json())

    assert "streamChannel" not in record


def test_output_to_json_exit_code_null_for_none():
    record = json.loads(sample_output(exit_code=None).to_json())

    assert "exitCode" in record
    assert record["exitCode"] is None


def test_output_to_json_negative_exit_code():
    record = json.loads(sample_output(exit_code=-9).to_json())

    assert record["exitCode"] == -9


def test_output_to_json_binary_stdout_base64():
    data = bytes(range(256))
    record = json.loads(sample_output(stdout=data).to_json())

    assert base64.b64decode(record["stdout"]) == data


def test_output_to_json_raw_capture_exit_code_null():
    record = json.loads(raw_capture_output().to_json())

    assert record["exitCode"] is None
    assert record["stdout"] == base64.b64encode(b"raw").decode("ascii")


@pytest.mark.parametrize(
    "make_output",
    [real_output, compressed_output, raw_capture_output, sample_output],
    ids=["run", "compressed", "raw_capture", "sample"],
)
def test_output_json_round_trip(make_output):
    output = make_output()

    assert ProcessOutput.from_json(output.to_json()) == output


def test_output_json_round_trip_stream_channel():
    output = sample_output(streaming=True, stream_channel="outcap-1-2")

    assert ProcessOutput.from_json(output.to_json()) == output


def test_output_json_round_trip_compressed_keeps_gzip_bytes():
    output = compressed_output()
    decoded = ProcessOutput.from_json(output.to_json())

    assert decoded.compressed is True
    assert decoded.stdout == output.stdout
    assert decoded.get_stdout() == b"line\n" * 1000
    assert decoded.get_stderr() == b"e" * 500


def test_output_from_json_go_record():
    output = ProcessOutput.from_json(GO_RECORD)

    assert output.stdout == b"hello\n"
    assert output.stderr == b""
    assert output.exit_code == 0
    assert output.duration == datetime.timedelta(microseconds=1500)
    assert output.stdout_size == 6
    assert output.stderr_size == 0
    assert output.truncated is False
    assert output.compressed is False
    assert output.capture_started == datetime.datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert output.capture_ended == datetime.datetime(2024, 6, 1, 10, 0, 0, 125000, tzinfo=UTC)
    assert output.streaming is False
    assert output.stream_channel is None


def test_output_from_json_times_are_utc():
    output = ProcessOutput.from_json(GO_RECORD)

    assert output.capture_started.utcoffset() == datetime.timedelta(0)
    assert output.capture_ended.utcoffset() == datetime.timedelta(0)


def test_output_from_json_drops_sub_microsecond_duration():
    record = GO_RECORD.replace('"duration":1500000', '"duration":1500999')

    assert ProcessOutput.from_json(record).duration == datetime.timedelta(microseconds=1500)


def test_output_from_json_stream_channel():
    record = GO_RECORD.replace('"streaming":false', '"streaming":true,"streamChannel":"chan-9"')
    output = ProcessOutput.from_json(record)

    assert output.streaming is True
    assert output.stream_channel == "chan-9"


def test_output_from_json_null_exit_code_is_none():
    record = GO_RECORD.replace('"exitCode":0', '"exitCode":null')

    assert ProcessOutput.from_json(record).exit_code is None


def test_output_from_json_accepts_bytes():
    assert ProcessOutput.from_json(GO_RECORD.encode("utf-8")).stdout == b"hello\n"


def test_output_from_json_invalid_json_raises():
    with pytest.raises(ValueError):
        ProcessOutput.from_json('{"stdout": ')


def test_output_from_json_non_object_raises():
    with pytest.raises(ValueError):
        ProcessOutput.from_json("[1, 2]")


@pytest.mark.parametrize(
    "key, value",
    [
        ("stdout", '"not base64!"'),
        ("stdout", '"aGVsbG8"'),
        ("stderr", "[104, 105]"),
        ("exitCode", '"zero"'),
        ("exitCode", "1.5"),
        ("duration", '"1.5ms"'),
        ("stdoutSize", "-1"),
        ("stderrSize", '"6"'),
        ("truncated", '"no"'),
        ("compressed", "1"),
        ("captureStarted", '"yesterday"'),
        ("captureEnded", "0"),
        ("streaming", "{}"),
        ("streamChannel", "7"),
    ],
)
def test_output_from_json_bad_field_raises_naming_it(key, value):
    record = json.loads(GO_RECORD)
    record.pop(key, None)
    text = json.dumps(record)[:-1] + f',"{key}":{value}}}'

    with pytest.raises(ValueError) as raised:
        ProcessOutput.from_json(text)

    assert key in str(raised.value)


# Pickle, equality, repr


def test_output_pickle_round_trip():
    output = real_output()

    assert pickle.loads(pickle.dumps(output)) == output


def test_output_pickle_round_trip_compressed():
    output = compressed_output()

    copy = pickle.loads(pickle.dumps(output))

    assert copy == output
    assert copy.get_stdout() == b"line\n" * 1000


def test_output_equal_field_by_field():
    assert sample_output() == sample_output()


@pytest.mark.parametrize(
    "field, value",
    [
        ("stdout", b"other"),
        ("stderr", b""),
        ("exit_code", 0),
        ("duration", datetime.timedelta(0)),
        ("stdout_size", 7),
        ("truncated", True),
        ("compressed", True),
        ("capture_started", datetime.datetime(2024, 6, 1, tzinfo=UTC)),
        ("streaming", True),
        ("stream_channel", "chan"),
    ],
)
def test_output_differs_when_one_field_differs(field, value):
    assert sample_output() != dataclasses.replace(sample_output(), **{field: value})


def test_output_repr_short_without_payload():
    text = repr(sample_output(stdout=b"secret-payload", stderr=b"other-secret"))

    assert len(text) < 200
    assert "secret-payload" not in text
    assert "other-secret" not in text


def test_output_repr_short_for_one_mib():
    config = OutputCaptureConfig(compression_enabled=False)
    output = outcap.run([sys.executable, "-c", "import sys; sys.stdout.write('Q' * 1048576)"], config=config).output
    assert output.stdout_size == 1048576

    text = repr(output)

    assert len(text) < 200
    assert "QQQQ" not in text


# Decompression


def test_output_get_stdout_decompresses():
    output = compressed_output()

    assert output.stdout != b"line\n" * 1000
    assert gzip.decompress(output.stdout) == b"line\n" * 1000
    assert output.get_stdout() == b"line\n" * 1000
    assert output.get_stderr() == b"e" * 500


def test_output_get_stdout_plain_when_not_compressed():
    output = sample_output()

    assert output.get_stdout() == b"hello\n"
    assert output.get_stderr() == b"warn\n"


def test_output_get_stdout_hand_built_compressed():
    output = sample_output(stdout=gzip.compress(b"zipped\n"), stderr=b"", compressed=True)

    assert output.get_stdout() == b"zipped\n"
    assert output.get_stderr() == b""
