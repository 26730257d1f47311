//! The core's error type. The Python binding maps each variant to an
//! exception in one place (`python/errors.rs`).

use std::ffi::OsString;
use std::fmt;
use std::io;

use crate::config::ConfigError;

/// Which of a process's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    pub const BOTH: [StreamKind; 2] = [StreamKind::Stdout, StreamKind::Stderr];

    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Everything that can go wrong in a capture.
#[derive(Debug)]
pub enum Error {
    /// A configuration value is out of range.
    Config(ConfigError),
    /// The program could not be started.
    Spawn {
        program: OsString,
        source: io::Error,
    },
    /// A system call the capture relies on failed.
    Io {
        operation: &'static str,
        source: io::Error,
    },
    /// Reading one of the captured streams failed.
    Read {
        stream: StreamKind,
        source: io::Error,
    },
    /// The ring buffers could not be allocated.
    OutOfMemory { bytes: usize },
    /// `start` was called on a capture that already started.
    AlreadyStarted,
    /// The capture was closed.
    Closed,
}

impl Error {
    pub(crate) fn io(operation: &'static str, source: io::Error) -> Self {
        Error::Io { operation, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(error) => error.fmt(f),
            Error::Spawn { program, source } => {
                write!(f, "failed to start {:?}: {source}", program)
            }
            Error::Io { operation, source } => write!(f, "{operation} failed: {source}"),
            Error::Read { stream, source } => {
                write!(f, "reading {} failed: {source}", stream.name())
            }
            Error::OutOfMemory { bytes } => {
                write!(
                    f,
                    "could not allocate {bytes} bytes for the ring buffers; lower max_buffer_size"
                )
            }
            Error::AlreadyStarted => {
                f.write_str("capture_streams() was already called on this capture")
            }
            Error::Closed => f.write_str("the capture is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } | Error::Io { source, .. } | Error::Read { source, .. } => {
                Some(source)
            }
            Error::Config(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Error::Config(error)
    }
}

/// The message of a caught panic, when it carried one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic without a message".to_owned()
    }
}
