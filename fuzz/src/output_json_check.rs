//! The `output_json` fuzz target's check: `ProcessOutput::from_json` on any
//! UTF-8 text, and the JSON round trip of every record it returns.

use outcap::output::ProcessOutput;

/// 0000-01-01T00:00:00Z in microseconds since the Unix epoch: the earliest
/// time that `to_json` writes without clamping (see `src/output.rs`).
pub const MIN_JSON_TIME_US: i64 = -62_167_219_200_000_000;

/// 9999-12-31T23:59:59.999999Z in microseconds since the Unix epoch: the
/// latest time that `to_json` writes without clamping.
pub const MAX_JSON_TIME_US: i64 = 253_402_300_799_999_999;

/// Durations whose nanoseconds fit in an `i64`, which `to_json` writes
/// without clamping.
pub const MIN_JSON_DURATION_US: i64 = i64::MIN / 1000;
pub const MAX_JSON_DURATION_US: i64 = i64::MAX / 1000;

/// Whether `to_json` writes every field of `record` without clamping, so
/// that `from_json(to_json(record))` must equal `record`.
pub fn is_representable(record: &ProcessOutput) -> bool {
    let time_range = MIN_JSON_TIME_US..=MAX_JSON_TIME_US;
    let size_range = 0..=i64::MAX as u64;
    (MIN_JSON_DURATION_US..=MAX_JSON_DURATION_US).contains(&record.duration_us)
        && time_range.contains(&record.capture_started_us)
        && time_range.contains(&record.capture_ended_us)
        && size_range.contains(&record.stdout_size)
        && size_range.contains(&record.stderr_size)
}

/// Runs the JSON checks on one fuzzer input. Inputs that are not UTF-8 are
/// skipped, because `from_json` takes `&str`.
pub fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
}

/// Decodes `text` and checks the round trip of the record it gives.
pub fn check_text(text: &str) {
    let record = match ProcessOutput::from_json(text) {
        Ok(record) => record,
        Err(error) => {
            // Formatting the error must not panic either.
            let message = error.to_string();
            assert!(!message.is_empty(), "empty error message for {text:?}");
            return;
        }
    };
    check_record(&record, text);
}

/// Checks the JSON round trip of `record`, which `from_json` returned for
/// `source`.
pub fn check_record(record: &ProcessOutput, source: &str) {
    let json = record.to_json();
    let decoded = match ProcessOutput::from_json(&json) {
        Ok(decoded) => decoded,
        Err(error) => panic!(
            "from_json rejects to_json output: {error}\n  to_json: {json}\n  source: {source:?}"
        ),
    };

    if is_representable(record) {
        assert!(
            decoded == *record,
            "round trip changed the record\n  before: {record:?}\n  after:  {decoded:?}\n  to_json: {json}\n  source: {source:?}"
        );
    }

    // Clamping happens once: the clamped record writes the same JSON again.
    let json_again = decoded.to_json();
    assert_eq!(
        json_again, json,
        "to_json is not stable after one round trip\n  source: {source:?}"
    );
}
