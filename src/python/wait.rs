//! Blocking waits that release the GIL and still notice Ctrl-C.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Longest stretch spent without the GIL before checking for signals, so
/// Ctrl-C raises `KeyboardInterrupt` within about this long.
pub(crate) const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Converts an optional timeout in seconds; a negative timeout counts as 0.
pub(crate) fn timeout_from_secs(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(seconds) if seconds.is_nan() => Err(PyValueError::new_err(
            "invalid timeout: nan; expected a number of seconds or None",
        )),
        Some(seconds) => Ok(Some(
            Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX),
        )),
    }
}

/// Calls `step` with slices of at most [`SIGNAL_CHECK_INTERVAL`] until it
/// returns `Some` or `timeout` passes, releasing the GIL during each step and
/// running Python's signal handlers between steps.
pub(crate) fn wait_interruptibly<T, E>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> Result<Option<T>, E> + Send,
) -> PyResult<Option<T>>
where
    T: Send,
    E: Send + Into<PyErr>,
{
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    loop {
        let slice = match deadline {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_CHECK_INTERVAL),
            None => SIGNAL_CHECK_INTERVAL,
        };
        if let Some(value) = py.detach(|| step(slice)).map_err(Into::into)? {
            return Ok(Some(value));
        }
        py.check_signals()?;
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Ok(None);
        }
    }
}
