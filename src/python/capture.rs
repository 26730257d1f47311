//! `_native.NativeCapture`: a capture of raw file descriptors, or the capture
//! a process owns.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{catch_panics, CaptureClosedError};
use super::wait::{timeout_from_secs, wait_interruptibly};
use super::{output_to_fields, OutputFields};
use crate::capture::{Capture, Source};
use crate::config::{flush_interval_from_secs, CaptureConfig};

/// The configuration fields in `OutputCaptureConfig` order: max_buffer_size,
/// streaming_enabled, flush_interval (seconds), compression_enabled,
/// compression_threshold, process_ansi.
pub(crate) type ConfigFields = (usize, bool, f64, bool, u64, bool);

pub(crate) fn config_from_fields(fields: ConfigFields) -> PyResult<CaptureConfig> {
    let (
        max_buffer_size,
        streaming_enabled,
        flush_interval,
        compression_enabled,
        compression_threshold,
        process_ansi,
    ) = fields;
    let config = CaptureConfig {
        max_buffer_size,
        streaming_enabled,
        flush_interval: flush_interval_from_secs(flush_interval)
            .map_err(crate::error::Error::from)?,
        compression_enabled,
        compression_threshold,
        process_ansi,
    };
    config.validate().map_err(crate::error::Error::from)?;
    Ok(config)
}

#[pyclass(frozen, module = "outcap._native")]
pub(crate) struct NativeCapture {
    pub(crate) inner: Arc<Capture>,
}

#[pymethods]
impl NativeCapture {
    #[new]
    fn new(py: Python<'_>, config: ConfigFields) -> PyResult<Self> {
        catch_panics(|| {
            let config = config_from_fields(config)?;
            let capture = py.detach(|| Capture::new(config))?;
            Ok(Self {
                inner: Arc::new(capture),
            })
        })
    }

    /// Starts reading duplicates of the given descriptors (either may be None).
    #[pyo3(signature = (stdout, stderr))]
    fn capture_streams(&self, stdout: Option<RawFd>, stderr: Option<RawFd>) -> PyResult<()> {
        catch_panics(|| {
            if self.inner.is_closed() {
                return Err(CaptureClosedError::new_err("the capture is closed"));
            }
            let mut duplicates = [None, None];
            for (index, (raw, role)) in [(stdout, "stdout"), (stderr, "stderr")]
                .into_iter()
                .enumerate()
            {
                if let Some(raw) = raw {
                    let fd = duplicate_fd(raw, role)?;
                    check_readable(&fd, raw, role)?;
                    duplicates[index] = Some(fd);
                }
            }
            let [stdout, stderr] = duplicates;
            let source = |fd: OwnedFd| Source {
                fd,
                nonblocking: false,
            };
            self.inner.start(stdout.map(source), stderr.map(source))?;
            Ok(())
        })
    }

    /// Waits for EOF on both streams; False when `timeout` seconds passed first.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        catch_panics(|| {
            let timeout = timeout_from_secs(timeout)?;
            let capture = &self.inner;
            let finished = wait_interruptibly(py, timeout, |slice| {
                capture.wait(Some(slice)).map(|done| done.then_some(()))
            })?;
            Ok(finished.is_some())
        })
    }

    fn cancel(&self) {
        self.inner.cancel();
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        catch_panics(|| {
            let capture = &self.inner;
            py.detach(|| capture.close());
            Ok(())
        })
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[getter]
    fn finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// Returns the output so far as a tuple of `ProcessOutput` fields.
    fn output<'py>(&self, py: Python<'py>) -> PyResult<OutputFields<'py>> {
        catch_panics(|| {
            let capture = &self.inner;
            let output = py.detach(|| capture.output());
            Ok(output_to_fields(py, &output))
        })
    }

    /// Opens a new cursor over `which` ("both", "stdout" or "stderr").
    fn stream(&self, which: &str) -> PyResult<super::stream::NativeStream> {
        catch_panics(|| super::stream::NativeStream::open(Arc::clone(&self.inner), None, which))
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        catch_panics(|| {
            let stats = self.inner.stats();
            let dict = PyDict::new(py);
            dict.set_item("stdout_bytes_read", stats.stdout_bytes_read)?;
            dict.set_item("stderr_bytes_read", stats.stderr_bytes_read)?;
            dict.set_item("stdout_bytes_dropped", stats.stdout_bytes_dropped)?;
            dict.set_item("stderr_bytes_dropped", stats.stderr_bytes_dropped)?;
            dict.set_item("read_calls", stats.read_calls)?;
            dict.set_item("chunks_delivered", stats.chunks_delivered)?;
            dict.set_item("ansi_bytes_removed", stats.ansi_bytes_removed)?;
            dict.set_item("compression_seconds", stats.compression_seconds)?;
            dict.set_item("compression_ratio", stats.compression_ratio)?;
            Ok(dict)
        })
    }
}

/// Duplicates a caller's descriptor (close-on-exec) so the capture owns its
/// copy; `role` names the argument in errors.
pub(crate) fn duplicate_fd(fd: RawFd, role: &str) -> PyResult<OwnedFd> {
    if fd < 0 {
        return Err(PyValueError::new_err(format!(
            "invalid {role} file descriptor: {fd}; expected an open descriptor >= 0"
        )));
    }
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor number; an invalid
    // one makes fcntl fail with EBADF, which is reported below.
    let duplicate = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if duplicate < 0 {
        let error = std::io::Error::last_os_error();
        return Err(pyo3::exceptions::PyOSError::new_err((
            error.raw_os_error().unwrap_or(0),
            format!(
                "invalid {role} file descriptor {fd}: {}",
                super::errors::strerror(&error)
            ),
        )));
    }
    // SAFETY: fcntl just returned this new descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(duplicate) })
}

/// Rejects a descriptor that cannot be read, such as the write end of a
/// pipe: polling it for input would wait forever.
pub(crate) fn check_readable(fd: &OwnedFd, raw: RawFd, role: &str) -> PyResult<()> {
    let flags = rustix::fs::fcntl_getfl(fd).map_err(std::io::Error::from)?;
    if flags.contains(rustix::fs::OFlags::WRONLY) {
        return Err(pyo3::exceptions::PyOSError::new_err((
            libc::EBADF,
            format!("invalid {role} file descriptor {raw}: it is open for writing only"),
        )));
    }
    Ok(())
}
