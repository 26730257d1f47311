//! The output record of one capture, and its JSON form.
//!
//! The JSON form is the one Go's `encoding/json` gives the Go service's
//! `ProcessOutput` struct, so records pass between the two systems:
//!
//! | key | Go type | JSON value |
//! |---|---|---|
//! | `stdout`, `stderr` | `[]byte`, `omitempty` | standard padded base64, key left out when empty |
//! | `exitCode` | `int32` | integer; we write `null` for "no process" |
//! | `duration` | `time.Duration` | integer nanoseconds |
//! | `stdoutSize`, `stderrSize` | `int64` | integer |
//! | `truncated`, `compressed`, `streaming` | `bool` | `true` / `false` |
//! | `captureStarted`, `captureEnded` | `time.Time` | RFC 3339 with a trimmed fraction of up to 9 digits (Go's `RFC3339Nano`) |
//! | `streamChannel` | `string`, `omitempty` | string, key left out when empty |
//!
//! The record keeps microseconds, so reading drops any digits below that.

use std::borrow::Cow;
use std::fmt;
use std::io;

use base64::alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::compress;

/// Go's zero `time.Time`, 0001-01-01T00:00:00Z, in microseconds since the
/// Unix epoch. [`ProcessOutput::from_json`] gives it for a missing time, as
/// Go's decoder does.
pub const GO_ZERO_TIME_US: i64 = -62_135_596_800_000_000;

/// 0000-01-01T00:00:00Z, the earliest time Go's `time.Time` writes as JSON.
const MIN_JSON_TIME_US: i64 = -62_167_219_200_000_000;

/// 9999-12-31T23:59:59.999999Z, the latest time with microseconds that Go's
/// `time.Time` writes as JSON.
const MAX_JSON_TIME_US: i64 = 253_402_300_799_999_999;

/// Durations whose nanoseconds fit in Go's `time.Duration` (an `int64`).
const MIN_JSON_DURATION_US: i64 = i64::MIN / 1000;
const MAX_JSON_DURATION_US: i64 = i64::MAX / 1000;

/// Base64 as Go's `encoding/json` uses it for `[]byte`: standard alphabet with
/// required padding. Go's decoder also accepts non-zero bits after the last
/// symbol, so this one does too.
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Longest JSON text of a bad value that an [`OutputError`] message shows.
const MAX_PREVIEW_CHARS: usize = 60;

/// The record of one capture: the retained output and facts about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessOutput {
    /// Retained stdout bytes as stored: gzip data when `compressed`.
    pub stdout: Vec<u8>,
    /// Retained stderr bytes as stored: gzip data when `compressed`.
    pub stderr: Vec<u8>,
    /// The process's exit code, `-N` when signal N killed it, `None` when no
    /// process was attached (JSON `null`).
    pub exit_code: Option<i32>,
    /// Time from capture start to capture end, in microseconds.
    pub duration_us: i64,
    /// Bytes read from the stdout pipe, before truncation, ANSI stripping and
    /// compression.
    pub stdout_size: u64,
    /// Bytes read from the stderr pipe, before truncation, ANSI stripping and
    /// compression.
    pub stderr_size: u64,
    /// Whether the ring buffer overwrote bytes of either stream.
    pub truncated: bool,
    /// Whether `stdout` and `stderr` hold gzip data. Each non-empty stream is
    /// one gzip member, and an empty stream stays empty.
    pub compressed: bool,
    /// Capture start, in microseconds since the Unix epoch (UTC).
    pub capture_started_us: i64,
    /// Capture end, in microseconds since the Unix epoch (UTC).
    pub capture_ended_us: i64,
    /// Whether streaming was enabled for the capture.
    pub streaming: bool,
    /// Identifier of the capture's stream when streaming.
    pub stream_channel: Option<String>,
}

impl ProcessOutput {
    /// Encodes the record as JSON, byte for byte as Go's `encoding/json`
    /// (Go 1.22 and later) encodes the Go struct.
    ///
    /// Two values have no Go encoding of their own, so they are written in a
    /// form that Go accepts and [`from_json`](Self::from_json) reads back.
    /// `exit_code: None` is written as `null`, which Go reads as 0.
    /// `stream_channel: Some("")` is written as `""`, where Go would leave the
    /// key out as it does for `None`.
    ///
    /// Values beyond the range of the Go types are clamped, so the output is
    /// always valid for Go but no longer reads back equal: sizes to
    /// `i64::MAX`, `duration_us` to what `time.Duration` holds (about ±292
    /// years), and times to years 0 through 9999.
    pub fn to_json(&self) -> String {
        let base64_len = base64_len(self.stdout.len()) + base64_len(self.stderr.len());
        let channel_len = self.stream_channel.as_ref().map_or(0, String::len);
        let mut json = String::with_capacity(base64_len + channel_len + 400);

        json.push('{');
        push_base64_field(&mut json, "stdout", &self.stdout);
        push_base64_field(&mut json, "stderr", &self.stderr);

        let exit_code = match self.exit_code {
            Some(code) => code.to_string(),
            None => "null".to_owned(),
        };
        let duration_ns = self
            .duration_us
            .clamp(MIN_JSON_DURATION_US, MAX_JSON_DURATION_US)
            * 1000;
        let stdout_size = i64::try_from(self.stdout_size).unwrap_or(i64::MAX);
        let stderr_size = i64::try_from(self.stderr_size).unwrap_or(i64::MAX);
        json.push_str(&format!(
            "\"exitCode\":{exit_code},\"duration\":{duration_ns},\
             \"stdoutSize\":{stdout_size},\"stderrSize\":{stderr_size},\
             \"truncated\":{},\"compressed\":{},\
             \"captureStarted\":\"{}\",\"captureEnded\":\"{}\",\
             \"streaming\":{}",
            self.truncated,
            self.compressed,
            format_go_time(self.capture_started_us),
            format_go_time(self.capture_ended_us),
            self.streaming,
        ));

        if let Some(channel) = &self.stream_channel {
            json.push_str(",\"streamChannel\":");
            push_go_json_string(&mut json, channel);
        }
        json.push('}');
        json
    }

    /// Decodes a record from JSON, accepting everything Go's `encoding/json`
    /// writes for the Go struct. Other input is read as Go's decoder reads
    /// it, except that a top-level `null` (no change in Go) is rejected.
    ///
    /// - Every key may be missing, which gives Go's zero value: empty output,
    ///   exit code `Some(0)`, zero numbers, `false`, times
    ///   [`GO_ZERO_TIME_US`], no stream channel.
    /// - `null` leaves a field unchanged, except that it empties `stdout` and
    ///   `stderr` and sets `exit_code` to `None`.
    /// - Keys match case-insensitively when there is no exact match, and a
    ///   repeated key overrides the earlier one. Unknown keys are ignored.
    /// - Times may have any offset and 0 to 9 fraction digits (more are
    ///   ignored). Digits below microseconds in times and durations are
    ///   dropped, rounding toward negative infinity.
    ///
    /// # Errors
    ///
    /// [`OutputError::InvalidJson`] when the text is not JSON or its top-level
    /// value is not an object. [`OutputError::InvalidField`] for the first
    /// field with a value of the wrong type, bad base64, an invalid time or a
    /// number out of range for the Go type. Negative sizes are out of range
    /// too, because the size fields here are unsigned.
    pub fn from_json(text: &str) -> Result<ProcessOutput, OutputError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let decoded = deserializer
            .deserialize_map(RecordVisitor)
            .map_err(OutputError::InvalidJson)?;

        // Like Go, report bad JSON syntax anywhere in the text before a field
        // error.
        deserializer.end().map_err(OutputError::InvalidJson)?;
        decoded
    }

    /// Returns the retained stdout, decompressed when `compressed`.
    ///
    /// # Errors
    ///
    /// Returns the [`compress::gunzip`] error when the stored bytes are not
    /// valid gzip data.
    pub fn stdout_bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        stored_bytes(&self.stdout, self.compressed)
    }

    /// Returns the retained stderr, decompressed when `compressed`.
    ///
    /// # Errors
    ///
    /// Returns the [`compress::gunzip`] error when the stored bytes are not
    /// valid gzip data.
    pub fn stderr_bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        stored_bytes(&self.stderr, self.compressed)
    }

    /// Sets one field from its JSON value, with Go's decoding rules.
    fn set_field(&mut self, field: Field, value: Value) -> Result<(), OutputError> {
        if value.is_null() {
            match field {
                Field::Stdout => self.stdout.clear(),
                Field::Stderr => self.stderr.clear(),
                Field::ExitCode => self.exit_code = None,
                // Go's decoder leaves non-slice, non-pointer fields unchanged
                // on null.
                _ => {}
            }
            return Ok(());
        }

        match field {
            Field::Stdout => self.stdout = decode_base64(field, &value)?,
            Field::Stderr => self.stderr = decode_base64(field, &value)?,
            Field::ExitCode => self.exit_code = Some(decode_exit_code(&value)?),
            Field::Duration => self.duration_us = decode_i64(field, &value)?.div_euclid(1000),
            Field::StdoutSize => self.stdout_size = decode_size(field, &value)?,
            Field::StderrSize => self.stderr_size = decode_size(field, &value)?,
            Field::Truncated => self.truncated = decode_bool(field, &value)?,
            Field::Compressed => self.compressed = decode_bool(field, &value)?,
            Field::CaptureStarted => self.capture_started_us = decode_time(field, &value)?,
            Field::CaptureEnded => self.capture_ended_us = decode_time(field, &value)?,
            Field::Streaming => self.streaming = decode_bool(field, &value)?,
            Field::StreamChannel => match value {
                Value::String(channel) => self.stream_channel = Some(channel),
                other => return Err(invalid_field(field, &other, "expected a string or null")),
            },
        }
        Ok(())
    }

    /// Returns the record Go's decoder starts from: every field at Go's zero
    /// value.
    fn go_zero() -> ProcessOutput {
        ProcessOutput {
            exit_code: Some(0),
            capture_started_us: GO_ZERO_TIME_US,
            capture_ended_us: GO_ZERO_TIME_US,
            ..ProcessOutput::default()
        }
    }
}

fn stored_bytes(stored: &[u8], compressed: bool) -> io::Result<Cow<'_, [u8]>> {
    if compressed {
        compress::gunzip(stored).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(stored))
    }
}

/// Error from [`ProcessOutput::from_json`].
#[derive(Debug)]
pub enum OutputError {
    /// The text is not valid JSON, or its top-level value is not an object.
    InvalidJson(serde_json::Error),
    /// A known key has a value that its Go type does not accept.
    InvalidField {
        /// The JSON key, spelled as the Go struct tag (`exitCode`).
        field: &'static str,
        /// The bad value as JSON text, shortened to about 60 characters.
        value: String,
        /// Description of the values that the field accepts.
        expected: String,
    },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::InvalidJson(error) => {
                write!(f, "invalid ProcessOutput JSON: {error}")
            }
            OutputError::InvalidField {
                field,
                value,
                expected,
            } => write!(
                f,
                "invalid value for ProcessOutput field \"{field}\": {value} ({expected})"
            ),
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OutputError::InvalidJson(error) => Some(error),
            OutputError::InvalidField { .. } => None,
        }
    }
}

/// The JSON keys of the Go struct, in the order Go writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Stdout,
    Stderr,
    ExitCode,
    Duration,
    StdoutSize,
    StderrSize,
    Truncated,
    Compressed,
    CaptureStarted,
    CaptureEnded,
    Streaming,
    StreamChannel,
}

impl Field {
    const ALL: [Field; 12] = [
        Field::Stdout,
        Field::Stderr,
        Field::ExitCode,
        Field::Duration,
        Field::StdoutSize,
        Field::StderrSize,
        Field::Truncated,
        Field::Compressed,
        Field::CaptureStarted,
        Field::CaptureEnded,
        Field::Streaming,
        Field::StreamChannel,
    ];

    fn key(self) -> &'static str {
        match self {
            Field::Stdout => "stdout",
            Field::Stderr => "stderr",
            Field::ExitCode => "exitCode",
            Field::Duration => "duration",
            Field::StdoutSize => "stdoutSize",
            Field::StderrSize => "stderrSize",
            Field::Truncated => "truncated",
            Field::Compressed => "compressed",
            Field::CaptureStarted => "captureStarted",
            Field::CaptureEnded => "captureEnded",
            Field::Streaming => "streaming",
            Field::StreamChannel => "streamChannel",
        }
    }

    /// Finds the field for a JSON key the way Go's decoder does: an exact
    /// match first, then a case-insensitive one.
    fn from_key(key: &str) -> Option<Field> {
        let exact = Field::ALL.into_iter().find(|field| field.key() == key);
        exact.or_else(|| {
            Field::ALL
                .into_iter()
                .find(|field| go_fold_equal(key, field.key()))
        })
    }
}

/// Compares a JSON key with an ASCII field name after the case folding of Go's
/// `encoding/json`. It maps ASCII letters to uppercase and other characters to
/// the smallest character of their Unicode simple case-folding orbit. Of the
/// non-ASCII characters, only U+017F 'ſ' (long s) and U+212A (Kelvin sign)
/// fold to ASCII that way, to 'S' and 'K'.
fn go_fold_equal(key: &str, name: &str) -> bool {
    let folded_key = key.chars().map(|c| match c {
        '\u{17f}' => 'S',
        '\u{212a}' => 'K',
        c => c.to_ascii_uppercase(),
    });
    folded_key.eq(name.chars().map(|c| c.to_ascii_uppercase()))
}

/// Reads the top-level JSON object entry by entry, in document order, so that
/// a repeated key overrides the earlier one as in Go.
struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    /// The outer result carries JSON syntax errors, the inner one field errors.
    type Value = Result<ProcessOutput, OutputError>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object with ProcessOutput fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut output = ProcessOutput::go_zero();
        let mut first_error = None;

        // After a field error the rest is still read, so that a syntax error
        // later in the text is reported instead, as Go does.
        while let Some(key) = map.next_key::<String>()? {
            let Some(field) = Field::from_key(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value: Value = map.next_value()?;
            if first_error.is_none() {
                if let Err(error) = output.set_field(field, value) {
                    first_error = Some(error);
                }
            }
        }

        Ok(match first_error {
            Some(error) => Err(error),
            None => Ok(output),
        })
    }
}

fn invalid_field(field: Field, value: &Value, expected: &str) -> OutputError {
    let text = value.to_string();
    let value = if text.chars().count() > MAX_PREVIEW_CHARS {
        let mut preview: String = text.chars().take(MAX_PREVIEW_CHARS).collect();
        preview.push('…');
        preview
    } else {
        text
    };
    OutputError::InvalidField {
        field: field.key(),
        value,
        expected: expected.to_owned(),
    }
}

fn decode_i64(field: Field, value: &Value) -> Result<i64, OutputError> {
    value.as_i64().ok_or_else(|| {
        invalid_field(
            field,
            value,
            "expected an integer from -9223372036854775808 to 9223372036854775807",
        )
    })
}

fn decode_exit_code(value: &Value) -> Result<i32, OutputError> {
    value
        .as_i64()
        .and_then(|code| i32::try_from(code).ok())
        .ok_or_else(|| {
            invalid_field(
                Field::ExitCode,
                value,
                "expected an integer from -2147483648 to 2147483647, or null",
            )
        })
}

fn decode_size(field: Field, value: &Value) -> Result<u64, OutputError> {
    value
        .as_i64()
        .and_then(|size| u64::try_from(size).ok())
        .ok_or_else(|| {
            invalid_field(
                field,
                value,
                "expected a byte count from 0 to 9223372036854775807",
            )
        })
}

fn decode_bool(field: Field, value: &Value) -> Result<bool, OutputError> {
    value
        .as_bool()
        .ok_or_else(|| invalid_field(field, value, "expected true or false"))
}

fn decode_base64(field: Field, value: &Value) -> Result<Vec<u8>, OutputError> {
    let Some(text) = value.as_str() else {
        return Err(invalid_field(field, value, "expected a base64 string"));
    };

    // Go's base64 decoder skips line breaks, so a wrapped value is valid.
    let text: Cow<'_, str> = if text.contains(['\r', '\n']) {
        Cow::Owned(text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect())
    } else {
        Cow::Borrowed(text)
    };

    GO_BASE64.decode(text.as_bytes()).map_err(|error| {
        let expected = format!("expected standard base64 with padding: {error}");
        invalid_field(field, value, &expected)
    })
}

fn decode_time(field: Field, value: &Value) -> Result<i64, OutputError> {
    value.as_str().and_then(parse_go_time).ok_or_else(|| {
        invalid_field(
            field,
            value,
            "expected an RFC 3339 time with year 0000 to 9999, such as \"2024-06-01T12:00:00.123456Z\"",
        )
    })
}

/// Parses an RFC 3339 time as Go's `time.Time` JSON decoder does, returning
/// microseconds since the Unix epoch.
fn parse_go_time(text: &str) -> Option<i64> {
    // The time crate also accepts what RFC 3339 allows and Go rejects: a
    // lowercase or space separator, a lowercase 'z' and a leap second.
    let bytes = text.as_bytes();
    let go_rejects = bytes.get(10) != Some(&b'T')
        || bytes.last() == Some(&b'z')
        || bytes.get(17..19) == Some(b"60".as_slice());
    if go_rejects {
        return None;
    }

    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos().div_euclid(1000)).ok()
}

/// Formats microseconds since the Unix epoch as Go's `RFC3339Nano` does for a
/// UTC time: `Z` suffix, fraction without trailing zeros, no fraction when it
/// is zero. Times outside years 0 through 9999 are clamped to that range.
fn format_go_time(micros: i64) -> String {
    let micros = micros.clamp(MIN_JSON_TIME_US, MAX_JSON_TIME_US);
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .expect("times clamped to years 0-9999 are in the range of OffsetDateTime");
    time.format(&Rfc3339)
        .expect("RFC 3339 formats every UTC time in years 0-9999")
}

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// Appends `"key":"<base64>",`, or nothing for empty bytes (Go's `omitempty`).
fn push_base64_field(json: &mut String, key: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    json.push('"');
    json.push_str(key);
    json.push_str("\":\"");
    GO_BASE64.encode_string(bytes, json);
    json.push_str("\",");
}

/// Appends `text` as a JSON string escaped as Go's `encoding/json` (Go 1.22
/// and later) escapes it: `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes
/// besides the escapes JSON requires.
fn push_go_json_string(json: &mut String, text: &str) {
    json.push('"');
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\u{8}' => json.push_str("\\b"),
            '\u{c}' => json.push_str("\\f"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                json.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => json.push(c),
        }
    }
    json.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// 2024-06-01T12:00:00Z in microseconds since the Unix epoch.
    const NOON_2024_06_01_US: i64 = 1_717_243_200_000_000;

    fn sample_record() -> ProcessOutput {
        ProcessOutput {
            stdout: b"hello\n".to_vec(),
            stderr: b"warn: x\n".to_vec(),
            exit_code: Some(2),
            duration_us: 1_500,
            stdout_size: 6,
            stderr_size: 8,
            truncated: true,
            compressed: false,
            capture_started_us: NOON_2024_06_01_US + 123_400,
            capture_ended_us: NOON_2024_06_01_US + 1_625_000,
            streaming: true,
            stream_channel: Some("build-42".to_owned()),
        }
    }

    fn field_error(text: &str) -> (&'static str, String, String) {
        match ProcessOutput::from_json(text) {
            Err(OutputError::InvalidField {
                field,
                value,
                expected,
            }) => (field, value, expected),
            other => panic!("expected a field error for {text}, got {other:?}"),
        }
    }

    fn parse_time(text: &str) -> Result<i64, OutputError> {
        let json = format!(
            "{{\"captureStarted\":{}}}",
            serde_json::to_string(text).unwrap()
        );
        ProcessOutput::from_json(&json).map(|output| output.capture_started_us)
    }

    #[test]
    fn from_json_go_record_exact_fields() {
        let json = r#"{"stdout":"aGVsbG8K","exitCode":0,"duration":1500000,"stdoutSize":6,"stderrSize":0,"truncated":false,"compressed":false,"captureStarted":"2024-06-01T12:00:00.123456789+02:00","captureEnded":"2024-06-01T12:00:00.125Z","streaming":false}"#;
        let output = ProcessOutput::from_json(json).unwrap();

        assert_eq!(output.stdout, b"hello\n");
        assert_eq!(output.stderr, b"");
        assert_eq!(output.exit_code, Some(0));
        assert_eq!(output.duration_us, 1_500);
        assert_eq!(output.stdout_size, 6);
        assert_eq!(output.stderr_size, 0);
        assert!(!output.truncated);
        assert!(!output.compressed);
        // 12:00 at +02:00 is 10:00 UTC, and the nanosecond digits 789 are dropped.
        assert_eq!(
            output.capture_started_us,
            NOON_2024_06_01_US - 2 * 3_600_000_000 + 123_456
        );
        assert_eq!(output.capture_ended_us, NOON_2024_06_01_US + 125_000);
        assert!(!output.streaming);
        assert_eq!(output.stream_channel, None);
    }

    #[test]
    fn from_json_go_record_with_everything() {
        let json = r#"{"stdout":"aGVsbG8K","stderr":"d2Fybjoggw==","exitCode":-9,"duration":86400000000001,"stdoutSize":9223372036854775807,"stderrSize":3,"truncated":true,"compressed":true,"captureStarted":"0001-01-01T00:00:00Z","captureEnded":"9999-12-31T23:59:59.999999999-00:30","streaming":true,"streamChannel":"job \u003c7\u003e \u0026 co"}"#;
        let output = ProcessOutput::from_json(json).unwrap();

        assert_eq!(output.stdout, b"hello\n");
        assert_eq!(output.stderr, b"warn: \x83");
        assert_eq!(output.exit_code, Some(-9));
        assert_eq!(output.duration_us, 86_400_000_000);
        assert_eq!(output.stdout_size, i64::MAX as u64);
        assert_eq!(output.stderr_size, 3);
        assert!(output.truncated);
        assert!(output.compressed);
        assert_eq!(output.capture_started_us, GO_ZERO_TIME_US);
        // At -00:30 the time is 30 minutes later in UTC, in year 10000.
        assert_eq!(output.capture_ended_us, MAX_JSON_TIME_US + 30 * 60_000_000);
        assert!(output.streaming);
        assert_eq!(output.stream_channel.as_deref(), Some("job <7> & co"));
    }

    #[test]
    fn to_json_exact_string() {
        let expected = concat!(
            r#"{"stdout":"aGVsbG8K","stderr":"d2FybjogeAo=","exitCode":2,"duration":1500000,"#,
            r#""stdoutSize":6,"stderrSize":8,"truncated":true,"compressed":false,"#,
            r#""captureStarted":"2024-06-01T12:00:00.1234Z","captureEnded":"2024-06-01T12:00:01.625Z","#,
            r#""streaming":true,"streamChannel":"build-42"}"#
        );
        assert_eq!(sample_record().to_json(), expected);
    }

    #[test]
    fn to_json_default_record() {
        let expected = concat!(
            r#"{"exitCode":null,"duration":0,"stdoutSize":0,"stderrSize":0,"#,
            r#""truncated":false,"compressed":false,"#,
            r#""captureStarted":"1970-01-01T00:00:00Z","captureEnded":"1970-01-01T00:00:00Z","#,
            r#""streaming":false}"#
        );
        assert_eq!(ProcessOutput::default().to_json(), expected);
    }

    #[test]
    fn to_json_go_zero_record() {
        let expected = concat!(
            r#"{"exitCode":0,"duration":0,"stdoutSize":0,"stderrSize":0,"#,
            r#""truncated":false,"compressed":false,"#,
            r#""captureStarted":"0001-01-01T00:00:00Z","captureEnded":"0001-01-01T00:00:00Z","#,
            r#""streaming":false}"#
        );
        assert_eq!(ProcessOutput::go_zero().to_json(), expected);
    }

    #[test]
    fn to_json_time_formats() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:00.000001Z"),
            (100_000, "1970-01-01T00:00:00.1Z"),
            (120_000, "1970-01-01T00:00:00.12Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (1_796_416_400_123_400, "2026-12-04T20:33:20.1234Z"),
            (GO_ZERO_TIME_US, "0001-01-01T00:00:00Z"),
            (MIN_JSON_TIME_US, "0000-01-01T00:00:00Z"),
            (MAX_JSON_TIME_US, "9999-12-31T23:59:59.999999Z"),
        ];
        for (micros, expected) in cases {
            assert_eq!(format_go_time(micros), expected, "{micros} µs");
        }
    }

    #[test]
    fn to_json_clamps_out_of_range_times() {
        assert_eq!(format_go_time(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(format_go_time(MIN_JSON_TIME_US - 1), "0000-01-01T00:00:00Z");
        assert_eq!(
            format_go_time(MAX_JSON_TIME_US + 1),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(format_go_time(i64::MAX), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn to_json_clamps_duration_and_sizes() {
        let record = ProcessOutput {
            duration_us: i64::MAX,
            stdout_size: u64::MAX,
            stderr_size: i64::MAX as u64 + 1,
            ..ProcessOutput::default()
        };
        let json = record.to_json();
        assert!(
            json.contains(r#""duration":9223372036854775000,"#),
            "{json}"
        );
        assert!(
            json.contains(r#""stdoutSize":9223372036854775807,"#),
            "{json}"
        );
        assert!(
            json.contains(r#""stderrSize":9223372036854775807,"#),
            "{json}"
        );

        let negative = ProcessOutput {
            duration_us: i64::MIN,
            ..ProcessOutput::default()
        };
        let json = negative.to_json();
        assert!(
            json.contains(r#""duration":-9223372036854775000,"#),
            "{json}"
        );

        let decoded = ProcessOutput::from_json(&record.to_json()).unwrap();
        assert_eq!(decoded.duration_us, MAX_JSON_DURATION_US);
        assert_eq!(decoded.stdout_size, i64::MAX as u64);
    }

    #[test]
    fn to_json_escapes_channel_like_go() {
        let record = ProcessOutput {
            stream_channel: Some(
                "a<b>&\"c\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}\u{2028}\u{2029}é".to_owned(),
            ),
            ..ProcessOutput::default()
        };
        let json = record.to_json();
        let expected = r#""streamChannel":"a\u003cb\u003e\u0026\"c\\\n\r\t\b\f\u0001\u001f"#;
        assert!(json.contains(expected), "{json}");
        assert!(json.ends_with("\u{7f}\\u2028\\u2029é\"}"), "{json}");
        assert_eq!(ProcessOutput::from_json(&json).unwrap(), record);
    }

    #[test]
    fn empty_channel_round_trips() {
        let record = ProcessOutput {
            stream_channel: Some(String::new()),
            ..ProcessOutput::default()
        };
        let json = record.to_json();
        assert!(json.ends_with(r#","streamChannel":""}"#), "{json}");
        assert_eq!(ProcessOutput::from_json(&json).unwrap(), record);
    }

    #[test]
    fn sample_record_round_trips() {
        let record = sample_record();
        assert_eq!(ProcessOutput::from_json(&record.to_json()).unwrap(), record);
    }

    #[test]
    fn from_json_empty_object_is_go_zero() {
        let output = ProcessOutput::from_json("{}").unwrap();
        assert_eq!(output, ProcessOutput::go_zero());
        assert_eq!(output.exit_code, Some(0));
        assert_eq!(output.capture_started_us, GO_ZERO_TIME_US);
        assert_eq!(output.capture_ended_us, GO_ZERO_TIME_US);
        assert_eq!(output.stream_channel, None);
    }

    #[test]
    fn from_json_null_values() {
        let all_null = r#"{"stdout":null,"stderr":null,"exitCode":null,"duration":null,"stdoutSize":null,"stderrSize":null,"truncated":null,"compressed":null,"captureStarted":null,"captureEnded":null,"streaming":null,"streamChannel":null}"#;
        let output = ProcessOutput::from_json(all_null).unwrap();
        let expected = ProcessOutput {
            exit_code: None,
            ..ProcessOutput::go_zero()
        };
        assert_eq!(output, expected);
    }

    #[test]
    fn from_json_null_after_value() {
        // Go empties a slice on null but leaves other fields as they were.
        let json = r#"{"stdout":"aGk=","stdout":null,"truncated":true,"truncated":null,"exitCode":3,"exitCode":null,"streamChannel":"x","streamChannel":null}"#;
        let output = ProcessOutput::from_json(json).unwrap();
        assert_eq!(output.stdout, b"");
        assert!(output.truncated);
        assert_eq!(output.exit_code, None);
        assert_eq!(output.stream_channel.as_deref(), Some("x"));
    }

    #[test]
    fn from_json_ignores_unknown_keys() {
        let json = r#"{"pid":42,"exitCode":1,"extra":{"nested":[1,2,{"a":null}]},"stdout_size":5,"streamchannels":"x"}"#;
        let output = ProcessOutput::from_json(json).unwrap();
        assert_eq!(output.exit_code, Some(1));
        assert_eq!(output.stdout_size, 0);
        assert_eq!(output.stream_channel, None);
    }

    #[test]
    fn from_json_keys_match_case_insensitively() {
        let json = r#"{"EXITCODE":7,"StdoutSize":5,"ſtreaming":true,"captureſtarted":"2024-06-01T12:00:00Z"}"#;
        let output = ProcessOutput::from_json(json).unwrap();
        assert_eq!(output.exit_code, Some(7));
        assert_eq!(output.stdout_size, 5);
        assert!(output.streaming);
        assert_eq!(output.capture_started_us, NOON_2024_06_01_US);

        // Dotless i folds to itself in Go, not to 'I', so this key is unknown.
        let dotless = ProcessOutput::from_json(r#"{"exıtCode":7}"#).unwrap();
        assert_eq!(dotless.exit_code, Some(0));
    }

    #[test]
    fn go_fold_kelvin_sign_is_k() {
        assert!(go_fold_equal("\u{212a}ey", "key"));
        assert!(go_fold_equal("KEY", "key"));
        assert!(!go_fold_equal("keys", "key"));
        assert!(!go_fold_equal("k\u{e9}y", "key"));
    }

    #[test]
    fn from_json_repeated_key_last_wins() {
        let json = r#"{"exitCode":1,"exitCode":2,"ExitCode":3}"#;
        assert_eq!(ProcessOutput::from_json(json).unwrap().exit_code, Some(3));
    }

    #[test]
    fn from_json_base64_with_line_breaks() {
        let json = r#"{"stdout":"aGVs\r\nbG8K\n"}"#;
        assert_eq!(ProcessOutput::from_json(json).unwrap().stdout, b"hello\n");
    }

    #[test]
    fn from_json_base64_with_trailing_bits() {
        // "aGk=" is the canonical form of "hi", but Go's decoder also accepts "aGl=".
        let json = r#"{"stdout":"aGl="}"#;
        assert_eq!(ProcessOutput::from_json(json).unwrap().stdout, b"hi");
    }

    #[test]
    fn from_json_duration_floors_to_micros() {
        let cases = [
            (1_500_999, 1_500),
            (999, 0),
            (-1, -1),
            (-1_500_001, -1_501),
            (i64::MAX, MAX_JSON_DURATION_US),
            (i64::MIN, i64::MIN / 1000 - 1),
        ];
        for (nanos, micros) in cases {
            let json = format!("{{\"duration\":{nanos}}}");
            let output = ProcessOutput::from_json(&json).unwrap();
            assert_eq!(output.duration_us, micros, "{nanos} ns");
        }
    }

    #[test]
    fn from_json_time_formats() {
        let cases = [
            ("2024-06-01T12:00:00Z", NOON_2024_06_01_US),
            ("2024-06-01T12:00:00.1Z", NOON_2024_06_01_US + 100_000),
            ("2024-06-01T12:00:00.123456Z", NOON_2024_06_01_US + 123_456),
            ("2024-06-01T12:00:00.1234569Z", NOON_2024_06_01_US + 123_456),
            (
                "2024-06-01T12:00:00.999999999Z",
                NOON_2024_06_01_US + 999_999,
            ),
            (
                "2024-06-01T12:00:00.123456789999Z",
                NOON_2024_06_01_US + 123_456,
            ),
            ("2024-06-01T14:30:00+02:30", NOON_2024_06_01_US),
            ("2024-06-01T00:00:00-12:00", NOON_2024_06_01_US),
            ("2024-06-01T12:00:00-00:00", NOON_2024_06_01_US),
            ("2024-06-02T11:59:00+23:59", NOON_2024_06_01_US),
            ("1969-12-31T23:59:59.9999999Z", -1),
            ("1970-01-01T00:00:00.0000009Z", 0),
            ("0001-01-01T00:00:00Z", GO_ZERO_TIME_US),
            ("0000-01-01T00:00:00Z", MIN_JSON_TIME_US),
            ("9999-12-31T23:59:59.999999Z", MAX_JSON_TIME_US),
        ];
        for (text, micros) in cases {
            assert_eq!(parse_time(text).unwrap(), micros, "{text}");
        }
    }

    #[test]
    fn from_json_rejects_times_go_rejects() {
        let cases = [
            "2024-06-01t12:00:00Z",
            "2024-06-01 12:00:00Z",
            "2024-06-01T12:00:00z",
            "2024-06-01T12:00:60Z",
            "2016-12-31T23:59:60Z",
            "2024-06-01T24:00:00Z",
            "2024-06-31T12:00:00Z",
            "2024-06-01T12:00:00",
            "2024-06-01T12:00:00.Z",
            "2024-06-01T12:00:00,5Z",
            "2024-06-01T12:00:00+24:00",
            "2024-06-01T12:00:00+02:60",
            "2024-06-01T12:00:00+0200",
            "24-06-01T12:00:00Z",
            "12024-06-01T12:00:00Z",
            "2024-06-01",
            "",
        ];
        for text in cases {
            match parse_time(text) {
                Err(OutputError::InvalidField { field, .. }) => {
                    assert_eq!(field, "captureStarted", "{text}");
                }
                other => panic!("{text:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn from_json_field_errors() {
        let cases = [
            (r#"{"stdout":"aGVsbG8"}"#, "stdout", r#""aGVsbG8""#),
            (r#"{"stdout":"a*Vs"}"#, "stdout", r#""a*Vs""#),
            (r#"{"stderr":[104,105]}"#, "stderr", "[104,105]"),
            (r#"{"exitCode":2147483648}"#, "exitCode", "2147483648"),
            (r#"{"exitCode":-2147483649}"#, "exitCode", "-2147483649"),
            (r#"{"exitCode":1.5}"#, "exitCode", "1.5"),
            (r#"{"exitCode":"0"}"#, "exitCode", r#""0""#),
            (
                r#"{"duration":9223372036854775808}"#,
                "duration",
                "9223372036854775808",
            ),
            (r#"{"duration":1e3}"#, "duration", "1000.0"),
            (r#"{"duration":"1s"}"#, "duration", r#""1s""#),
            (r#"{"stdoutSize":-1}"#, "stdoutSize", "-1"),
            (
                r#"{"stderrSize":9223372036854775808}"#,
                "stderrSize",
                "9223372036854775808",
            ),
            (r#"{"truncated":1}"#, "truncated", "1"),
            (r#"{"compressed":"true"}"#, "compressed", r#""true""#),
            (r#"{"captureStarted":0}"#, "captureStarted", "0"),
            (
                r#"{"captureEnded":"yesterday"}"#,
                "captureEnded",
                r#""yesterday""#,
            ),
            (r#"{"streaming":{}}"#, "streaming", "{}"),
            (r#"{"streamChannel":7}"#, "streamChannel", "7"),
        ];
        for (json, expected_field, expected_value) in cases {
            let (field, value, expected) = field_error(json);
            assert_eq!(field, expected_field, "{json}");
            assert_eq!(value, expected_value, "{json}");
            assert!(expected.starts_with("expected "), "{json}: {expected}");
        }
    }

    #[test]
    fn field_error_message_names_field_and_value() {
        let error = ProcessOutput::from_json(r#"{"exitCode":2147483648}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value for ProcessOutput field \"exitCode\": 2147483648 \
             (expected an integer from -2147483648 to 2147483647, or null)"
        );
    }

    #[test]
    fn field_error_shortens_long_values() {
        let long = "A".repeat(10_000) + "!";
        let (_, value, expected) = field_error(&format!("{{\"stdout\":\"{long}\"}}"));
        assert_eq!(value.chars().count(), MAX_PREVIEW_CHARS + 1);
        assert!(value.ends_with('…'), "{value}");
        assert!(expected.contains("base64"), "{expected}");
    }

    #[test]
    fn first_field_error_wins() {
        let (field, _, _) = field_error(r#"{"truncated":0,"exitCode":"x"}"#);
        assert_eq!(field, "truncated");
    }

    #[test]
    fn syntax_error_wins_over_field_error() {
        let error = ProcessOutput::from_json(r#"{"exitCode":"x","truncated":}"#).unwrap_err();
        assert!(matches!(error, OutputError::InvalidJson(_)), "{error}");
    }

    #[test]
    fn from_json_rejects_non_objects() {
        for text in [
            "",
            "null",
            "[]",
            "1",
            "\"x\"",
            "{",
            "{} {}",
            "{}x",
            "{\"exitCode\":1,}",
        ] {
            let error = ProcessOutput::from_json(text).unwrap_err();
            assert!(
                matches!(error, OutputError::InvalidJson(_)),
                "{text:?}: {error}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with("invalid ProcessOutput JSON: "),
                "{error}"
            );
        }
    }

    #[test]
    fn from_json_deep_nesting_no_overflow() {
        // serde_json skips an unknown value without recursion, and stops at
        // 128 levels when it builds the value of a known key.
        let depth = 100_000;
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));

        let unknown = format!("{{\"extra\":{nested},\"exitCode\":4}}");
        assert_eq!(
            ProcessOutput::from_json(&unknown).unwrap().exit_code,
            Some(4)
        );

        let known = format!("{{\"stdout\":{nested}}}");
        let error = ProcessOutput::from_json(&known).unwrap_err();
        assert!(matches!(error, OutputError::InvalidJson(_)), "{error}");
    }

    #[test]
    fn output_error_source() {
        use std::error::Error as _;
        let syntax = ProcessOutput::from_json("{").unwrap_err();
        assert!(syntax.source().is_some());
        let field = ProcessOutput::from_json(r#"{"truncated":0}"#).unwrap_err();
        assert!(field.source().is_none());
    }

    #[test]
    fn stored_bytes_plain_are_borrowed() {
        let record = sample_record();
        assert!(matches!(
            record.stdout_bytes().unwrap(),
            Cow::Borrowed(b"hello\n")
        ));
        assert!(matches!(
            record.stderr_bytes().unwrap(),
            Cow::Borrowed(b"warn: x\n")
        ));
    }

    #[test]
    fn stored_bytes_compressed_are_decompressed() {
        let record = ProcessOutput {
            stdout: compress::gzip(b"hello\n", compress::DEFAULT_LEVEL),
            stderr: Vec::new(),
            compressed: true,
            ..sample_record()
        };
        assert_eq!(record.stdout_bytes().unwrap().as_ref(), b"hello\n");
        assert_eq!(record.stderr_bytes().unwrap().as_ref(), b"");

        let decoded = ProcessOutput::from_json(&record.to_json()).unwrap();
        assert_eq!(decoded.stdout_bytes().unwrap().as_ref(), b"hello\n");
    }

    #[test]
    fn stored_bytes_corrupt_gzip_is_error() {
        let record = ProcessOutput {
            stdout: b"not gzip".to_vec(),
            compressed: true,
            ..ProcessOutput::default()
        };
        assert!(record.stdout_bytes().is_err());
    }

    fn json_time() -> impl Strategy<Value = i64> {
        // Year 1 through 9999, and sometimes the edges of the range Go writes.
        prop_oneof![
            8 => GO_ZERO_TIME_US..=MAX_JSON_TIME_US,
            1 => Just(MIN_JSON_TIME_US),
            1 => Just(MAX_JSON_TIME_US),
            1 => Just(GO_ZERO_TIME_US),
            1 => (-1_000_000i64..1_000_000).prop_map(|offset| offset * 1000),
        ]
    }

    fn representable_record() -> impl Strategy<Value = ProcessOutput> {
        let streams = (
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<Option<i32>>(),
            MIN_JSON_DURATION_US..=MAX_JSON_DURATION_US,
            0..=i64::MAX as u64,
            0..=i64::MAX as u64,
        );
        let flags = (
            any::<bool>(),
            any::<bool>(),
            json_time(),
            json_time(),
            any::<bool>(),
            proptest::option::of(any::<String>()),
        );
        (streams, flags).prop_map(
            |(
                (stdout, stderr, exit_code, duration_us, stdout_size, stderr_size),
                (
                    truncated,
                    compressed,
                    capture_started_us,
                    capture_ended_us,
                    streaming,
                    stream_channel,
                ),
            )| ProcessOutput {
                stdout,
                stderr,
                exit_code,
                duration_us,
                stdout_size,
                stderr_size,
                truncated,
                compressed,
                capture_started_us,
                capture_ended_us,
                streaming,
                stream_channel,
            },
        )
    }

    /// JSON objects built from the real keys and values of every type, so
    /// that most inputs reach the field decoders.
    fn json_like_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            proptest::sample::select(Field::ALL.map(Field::key).to_vec()).prop_map(String::from),
            any::<String>(),
        ];
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
            "[0-9T:+.Z-]{0,40}".prop_map(|s| format!("\"{s}\"")),
            "[A-Za-z0-9+/=\\\\n]{0,20}".prop_map(|s| format!("\"{s}\"")),
        ];
        proptest::collection::vec((key, value), 0..8).prop_map(|entries| {
            let body: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{}:{value}", serde_json::to_string(&key).unwrap()))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        #[test]
        fn json_round_trip(record in representable_record()) {
            let json = record.to_json();
            prop_assert_eq!(ProcessOutput::from_json(&json).unwrap(), record);
        }

        #[test]
        fn to_json_any_record_parses(
            duration_us in any::<i64>(),
            started in any::<i64>(),
            size in any::<u64>(),
        ) {
            let record = ProcessOutput {
                duration_us,
                capture_started_us: started,
                stdout_size: size,
                ..ProcessOutput::default()
            };
            prop_assert!(ProcessOutput::from_json(&record.to_json()).is_ok());
        }

        #[test]
        fn time_text_round_trips(micros in MIN_JSON_TIME_US..=MAX_JSON_TIME_US) {
            prop_assert_eq!(parse_go_time(&format_go_time(micros)), Some(micros));
        }

        #[test]
        fn from_json_any_string_never_panics(text in any::<String>()) {
            let _ = ProcessOutput::from_json(&text);
        }

        #[test]
        fn from_json_any_object_never_panics(text in json_like_text()) {
            let _ = ProcessOutput::from_json(&text);
        }
    }
}
