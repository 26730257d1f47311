//! Exceptions raised by the native module, and the one place where core
//! errors become Python exceptions.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyMemoryError, PyOSError, PyValueError};
use pyo3::{PyErr, PyResult};

use crate::error::Error;

create_exception!(
    outcap,
    CaptureError,
    PyException,
    "Base class of outcap's own errors."
);
create_exception!(
    outcap,
    CaptureClosedError,
    CaptureError,
    "The capture was closed; only close(), get_output() and stats() still work."
);
create_exception!(
    outcap,
    StreamingDisabledError,
    CaptureError,
    "Live iteration needs OutputCaptureConfig(streaming_enabled=True)."
);

/// The system's message for an I/O error, without Rust's "(os error N)" suffix.
pub(crate) fn strerror(error: &std::io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(errno) => std::io::Error::from_raw_os_error(errno).to_string(),
        None => error.to_string(),
    };
    text.split(" (os error").next().unwrap_or(&text).to_owned()
}

/// Builds an `OSError` from an I/O error; Python picks the subclass
/// (`FileNotFoundError`, `PermissionError`, ...) from the errno.
fn os_error(error: &std::io::Error, message: String, filename: Option<String>) -> PyErr {
    match error.raw_os_error() {
        Some(errno) => {
            let strerror = strerror(error);
            match filename {
                Some(filename) => PyOSError::new_err((errno, strerror, filename)),
                None => PyOSError::new_err((errno, message)),
            }
        }
        None => PyOSError::new_err(message),
    }
}

impl From<Error> for PyErr {
    fn from(error: Error) -> PyErr {
        let message = error.to_string();
        match &error {
            Error::Config(_) => PyValueError::new_err(message),
            Error::Spawn { program, source } => os_error(
                source,
                message,
                Some(program.to_string_lossy().into_owned()),
            ),
            Error::Io { source, .. } | Error::Read { source, .. } => {
                os_error(source, message, None)
            }
            Error::OutOfMemory { .. } => PyMemoryError::new_err(message),
            Error::AlreadyStarted => CaptureError::new_err(message),
            Error::Closed => CaptureClosedError::new_err(message),
        }
    }
}

/// Runs `body`, turning a Rust panic into `CaptureError` so that a bug in
/// outcap surfaces as an ordinary exception rather than PyO3's
/// `PanicException`, which derives from `BaseException` and escapes
/// `except Exception` handlers.
pub(crate) fn catch_panics<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(CaptureError::new_err(format!(
            "internal error in outcap: {}; please report this bug",
            crate::error::panic_message(payload.as_ref())
        ))),
    }
}
