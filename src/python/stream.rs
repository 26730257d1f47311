//! `_native.NativeStream` and `Chunk`: live iteration over a capture.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::errors::catch_panics;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use super::errors::StreamingDisabledError;
use super::wait::{timeout_from_secs, wait_interruptibly, SIGNAL_CHECK_INTERVAL};
use crate::capture::Capture;
use crate::error::{Error, StreamKind};
use crate::process::{Process, DEFAULT_EOF_GRACE};
use crate::stream::{self, Cursor, Next, Selection};

/// Bytes of one stream, as a stream iterator hands them out.
#[pyclass(frozen, module = "outcap", get_all)]
pub(crate) struct Chunk {
    /// "stdout" or "stderr".
    stream: &'static str,
    data: Py<PyBytes>,
    /// Position of `data[0]` in the stream after ANSI stripping.
    offset: u64,
    /// Bytes this iterator lost just before this chunk (overwritten in the ring).
    skipped: u64,
    /// Unix time when the first byte of `data` was read.
    timestamp: f64,
}

#[pymethods]
impl Chunk {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Chunk(stream={:?}, data=<{} bytes>, offset={}, skipped={}, timestamp={:.6})",
            self.stream,
            self.data.bind(py).as_bytes().len(),
            self.offset,
            self.skipped,
            self.timestamp
        )
    }
}

fn parse_selection(which: &str) -> PyResult<Selection> {
    match which {
        "both" => Ok(Selection::Both),
        "stdout" => Ok(Selection::One(StreamKind::Stdout)),
        "stderr" => Ok(Selection::One(StreamKind::Stderr)),
        _ => Err(PyValueError::new_err(format!(
            "invalid stream: {which:?}; expected \"both\", \"stdout\" or \"stderr\""
        ))),
    }
}

/// A cursor into a capture's ring buffers; a blocking iterator of `Chunk`.
#[pyclass(frozen, module = "outcap._native")]
pub(crate) struct NativeStream {
    capture: Arc<Capture>,
    /// The process whose capture this is, so the stream can end once the
    /// child has exited and the EOF grace has passed, even when a background
    /// grandchild keeps the pipes open.
    process: Option<Arc<Process>>,
    cursor: Mutex<Cursor>,
    /// Per stream, the start of a line whose `\n` has not arrived yet.
    partial_lines: Mutex<Option<[Vec<u8>; 2]>>,
}

/// Result of one wait step of a stream.
enum Step {
    Chunk(stream::Chunk),
    End,
}

impl NativeStream {
    pub(crate) fn open(
        capture: Arc<Capture>,
        process: Option<Arc<Process>>,
        which: &str,
    ) -> PyResult<Self> {
        let selection = parse_selection(which)?;
        if !capture.config().streaming_enabled {
            return Err(StreamingDisabledError::new_err(
                "streaming is disabled; create the capture with OutputCaptureConfig(streaming_enabled=True)",
            ));
        }
        if capture.is_closed() {
            return Err(super::errors::CaptureClosedError::new_err(
                "the capture is closed",
            ));
        }
        Ok(Self {
            capture,
            process,
            cursor: Mutex::new(Cursor::new(selection)),
            partial_lines: Mutex::new(Some([Vec::new(), Vec::new()])),
        })
    }

    /// Waits a bounded time for the next chunk, without the GIL.
    fn step(&self, slice: Duration) -> Result<Option<Step>, Error> {
        let began = Instant::now();
        let mut cursor = self
            .cursor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            let seen = self.capture.generation();
            let (next, finished) = self.capture.next_chunk(&mut cursor)?;
            let wait = match next {
                Next::Chunk(chunk) => return Ok(Some(Step::Chunk(chunk))),
                Next::Empty if finished => return Ok(Some(Step::End)),
                Next::Empty => {
                    self.end_after_exit_grace()?;
                    let interval = self.capture.config().flush_interval;
                    if interval.is_zero() {
                        slice
                    } else {
                        slice.min(interval)
                    }
                }
                Next::HoldUntil(due) => due.saturating_duration_since(Instant::now()),
            };
            let remaining = slice.saturating_sub(began.elapsed());
            if remaining.is_zero() {
                return Ok(None);
            }
            self.capture.wait_for_change(seen, wait.min(remaining));
        }
    }

    /// Stops the readers once the child has been gone for the EOF grace.
    fn end_after_exit_grace(&self) -> Result<(), Error> {
        if let Some(process) = &self.process {
            let exited_for = process
                .exited_for()
                .map_err(|source| Error::io("waitpid", source))?;
            if exited_for.is_some_and(|elapsed| elapsed >= DEFAULT_EOF_GRACE) {
                self.capture.cancel();
            }
        }
        Ok(())
    }

    fn to_python(py: Python<'_>, chunk: stream::Chunk) -> PyResult<Chunk> {
        Ok(Chunk {
            stream: chunk.stream.name(),
            data: PyBytes::new(py, &chunk.data).unbind(),
            offset: chunk.offset,
            skipped: chunk.skipped,
            timestamp: chunk.timestamp_us as f64 / 1e6,
        })
    }
}

#[pymethods]
impl NativeStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        match self.next_chunk(py, None)? {
            Some(Some(chunk)) => Ok(Some(chunk)),
            _ => Ok(None),
        }
    }

    /// Waits up to `timeout` seconds (None: no limit) for the next chunk.
    /// Returns the chunk, None at the end of the stream, or raises
    /// TimeoutError when the time passed first.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Chunk>> {
        match self.next_chunk(py, timeout_from_secs(timeout)?)? {
            Some(chunk) => Ok(chunk),
            None => Err(pyo3::exceptions::PyTimeoutError::new_err(
                "no chunk arrived in time",
            )),
        }
    }

    /// Returns the next chunk if one is ready now; raises BlockingIOError
    /// when none is, and returns None at the end of the stream.
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        match self.next_chunk(py, Some(Duration::ZERO))? {
            Some(chunk) => Ok(chunk),
            None => Err(pyo3::exceptions::PyBlockingIOError::new_err(
                "no chunk is ready",
            )),
        }
    }

    /// Waits up to `timeout` seconds (None: no limit) for the next chunk and
    /// returns the UTF-8 lines it completes as a list of `str` (each ending
    /// in `\n`, possibly empty); at the end of the stream, the unfinished
    /// last lines; then None. Raises TimeoutError when the time passed
    /// first. `errors` is a Python codec error handler name.
    #[pyo3(signature = (errors, timeout=None))]
    fn next_lines<'py>(
        &self,
        py: Python<'py>,
        errors: &str,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        catch_panics(|| {
            let timeout = timeout_from_secs(timeout)?;
            let step = wait_interruptibly(py, timeout, |slice| self.step(slice))?;
            if step.is_none() {
                return Err(pyo3::exceptions::PyTimeoutError::new_err(
                    "no chunk arrived in time",
                ));
            }
            self.split_lines(py, step, errors)
        })
    }

    /// Like `next_lines`, but raises BlockingIOError when no chunk is ready.
    fn try_next_lines<'py>(
        &self,
        py: Python<'py>,
        errors: &str,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        catch_panics(|| {
            let step = py.detach(|| self.step(Duration::ZERO))?;
            if step.is_none() {
                return Err(pyo3::exceptions::PyBlockingIOError::new_err(
                    "no chunk is ready",
                ));
            }
            self.split_lines(py, step, errors)
        })
    }

    /// Blocks up to `timeout` seconds (at most 50 ms at a time without the
    /// GIL) until the capture changes.
    fn wait_for_change(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = timeout_from_secs(Some(timeout))?.unwrap_or(Duration::ZERO);
        let capture = &self.capture;
        let seen = capture.generation();
        py.detach(|| capture.wait_for_change(seen, timeout.min(SIGNAL_CHECK_INTERVAL)));
        Ok(())
    }
}

impl NativeStream {
    /// Splits a chunk into complete lines, keeping what follows the last
    /// `\n` for the next chunk of the same stream. Splitting the bytes at
    /// `\n` before decoding is exact for UTF-8, where 0x0A never occurs
    /// inside a multi-byte character.
    fn split_lines<'py>(
        &self,
        py: Python<'py>,
        step: Option<Step>,
        errors: &str,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        catch_panics(|| {
            let errors = std::ffi::CString::new(errors)
                .map_err(|_| PyValueError::new_err("invalid errors: contains a NUL byte"))?;
            let mut guard = self
                .partial_lines
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let lines = PyList::empty(py);
            match step {
                Some(Step::Chunk(chunk)) => {
                    let Some(partials) = guard.as_mut() else {
                        return Ok(None);
                    };
                    let partial = &mut partials[chunk.stream.index()];
                    if chunk.skipped > 0 {
                        // The rest of this line was overwritten before it was read.
                        partial.clear();
                    }
                    let mut rest = &chunk.data[..];
                    while let Some(end) = memchr::memchr(b'\n', rest) {
                        let line = &rest[..=end];
                        if partial.is_empty() {
                            lines.append(decode_utf8(py, line, &errors)?)?;
                        } else {
                            partial.extend_from_slice(line);
                            lines.append(decode_utf8(py, partial, &errors)?)?;
                            partial.clear();
                        }
                        rest = &rest[end + 1..];
                    }
                    partial.extend_from_slice(rest);
                    Ok(Some(lines))
                }
                Some(Step::End) => {
                    let Some(partials) = guard.take() else {
                        return Ok(None);
                    };
                    for partial in partials.iter().filter(|partial| !partial.is_empty()) {
                        lines.append(decode_utf8(py, partial, &errors)?)?;
                    }
                    Ok(Some(lines))
                }
                None => Ok(Some(lines)),
            }
        })
    }

    /// `Some(Some(chunk))`, `Some(None)` at the end, `None` when `timeout` passed.
    fn next_chunk(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<Option<Chunk>>> {
        catch_panics(|| {
            let step = if timeout == Some(Duration::ZERO) {
                py.detach(|| self.step(Duration::ZERO))?
            } else {
                wait_interruptibly(py, timeout, |slice| self.step(slice))?
            };
            match step {
                Some(Step::Chunk(chunk)) => Ok(Some(Some(Self::to_python(py, chunk)?))),
                Some(Step::End) => Ok(Some(None)),
                None => Ok(None),
            }
        })
    }
}

/// Decodes UTF-8 with a Python error handler, as `bytes.decode` does.
fn decode_utf8<'py>(
    py: Python<'py>,
    data: &[u8],
    errors: &std::ffi::CStr,
) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: `data` is valid for `data.len()` bytes and `errors` is a
    // NUL-terminated handler name; the call returns a new reference or NULL
    // with a Python exception set, which `from_owned_ptr_or_err` turns into
    // the error.
    unsafe {
        let object = pyo3::ffi::PyUnicode_DecodeUTF8(
            data.as_ptr().cast(),
            data.len() as pyo3::ffi::Py_ssize_t,
            errors.as_ptr(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, object)?.cast_into_unchecked())
    }
}
