//! Capture configuration and its validation.

use std::fmt;
use std::time::Duration;

/// Default ring buffer capacity per stream: 10 MiB.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 10 * 1024 * 1024;
/// Default flush interval for stream iterators: 100 ms.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Default size above which stored output is compressed: 1 MiB.
pub const DEFAULT_COMPRESSION_THRESHOLD: u64 = 1024 * 1024;

/// How a capture buffers, streams, compresses and filters output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Ring buffer capacity per stream, in bytes; the newest bytes are kept.
    pub max_buffer_size: usize,
    /// Whether live stream iterators may be created.
    pub streaming_enabled: bool,
    /// Longest time a read byte waits before stream iterators are woken.
    pub flush_interval: Duration,
    /// Whether stored output is gzip-compressed when it is large.
    pub compression_enabled: bool,
    /// Compress when stdout + stderr retained bytes exceed this many bytes.
    pub compression_threshold: u64,
    /// Whether ANSI escape sequences are stripped before storing and streaming.
    pub process_ansi: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            max_buffer_size: DEFAULT_MAX_BUFFER_SIZE,
            streaming_enabled: false,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            compression_enabled: true,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            process_ansi: true,
        }
    }
}

impl CaptureConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_buffer_size == 0 {
            return Err(ConfigError::new(
                "max_buffer_size",
                self.max_buffer_size.to_string(),
                "an integer number of bytes >= 1",
            ));
        }
        Ok(())
    }
}

/// Converts a flush interval in seconds, rejecting negative, NaN and
/// infinite values. A finite interval too long for `Duration` (about 5.8e11
/// years) becomes `Duration::MAX`, which behaves the same: never due.
pub fn flush_interval_from_secs(seconds: f64) -> Result<Duration, ConfigError> {
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(ConfigError::new(
            "flush_interval",
            seconds.to_string(),
            "a finite number of seconds >= 0",
        ));
    }
    Ok(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

/// An invalid configuration value: which field, the value given, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: &'static str,
    pub value: String,
    pub allowed: &'static str,
}

impl ConfigError {
    pub fn new(field: &'static str, value: String, allowed: &'static str) -> Self {
        Self {
            field,
            value,
            allowed,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: {}; expected {}",
            self.field, self.value, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(CaptureConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_buffer_is_rejected_with_field_and_value() {
        let config = CaptureConfig {
            max_buffer_size: 0,
            ..CaptureConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid max_buffer_size: 0; expected an integer number of bytes >= 1"
        );
    }

    #[test]
    fn flush_interval_rejects_negative_and_non_finite() {
        assert_eq!(flush_interval_from_secs(0.0), Ok(Duration::ZERO));
        assert_eq!(
            flush_interval_from_secs(0.25),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(flush_interval_from_secs(1e300), Ok(Duration::MAX));
        for bad in [-0.001, f64::NAN, f64::INFINITY] {
            let error = flush_interval_from_secs(bad).unwrap_err();
            assert_eq!(error.field, "flush_interval");
        }
    }
}
