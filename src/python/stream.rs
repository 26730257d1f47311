//! `_native.NativeStream` and `Chunk`: live iteration over a capture.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

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
}

/// What one wait step of a stream found.
enum Step {
    Chunk(stream::Chunk),
    End,
}

impl NativeStream {
    pub(crate) fn open(capture: Arc<Capture>, process: Option<Arc<Process>>, which: &str) -> PyResult<Self> {
        let selection = parse_selection(which)?;
        if !capture.config().streaming_enabled {
            return Err(StreamingDisabledError::new_err(
                "streaming is disabled; create the capture with OutputCaptureConfig(streaming_enabled=True)",
            ));
        }
        if capture.is_closed() {
            return Err(super::errors::CaptureClosedError::new_err("the capture is closed"));
        }
        Ok(Self {
            capture,
            process,
            cursor: Mutex::new(Cursor::new(selection)),
        })
    }

    /// One bounded wait for the next chunk, without the GIL.
    fn step(&self, slice: Duration) -> Result<Option<Step>, Error> {
        let began = Instant::now();
        let mut cursor = self.cursor.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            let seen = self.capture.generation();
            let (next, finished) = self.capture.next_chunk(&mut cursor)?;
            let wait = match next {
                Next::Chunk(chunk) => return Ok(Some(Step::Chunk(chunk))),
                Next::Empty if finished => return Ok(Some(Step::End)),
                Next::Empty => {
                    self.end_after_exit_grace()?;
                    let interval = self.capture.config().flush_interval;
                    if interval.is_zero() { slice } else { slice.min(interval) }
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
            None => Err(pyo3::exceptions::PyTimeoutError::new_err("no chunk arrived in time")),
        }
    }

    /// Returns the next chunk if one is ready now; raises BlockingIOError
    /// when none is, and returns None at the end of the stream.
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        match self.next_chunk(py, Some(Duration::ZERO))? {
            Some(chunk) => Ok(chunk),
            None => Err(pyo3::exceptions::PyBlockingIOError::new_err("no chunk is ready")),
        }
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
    /// `Some(Some(chunk))`, `Some(None)` at the end, `None` when `timeout` passed.
    fn next_chunk(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<Option<Chunk>>> {
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
    }
}
