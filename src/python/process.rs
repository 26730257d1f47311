//! `_native.NativeProcess`: a child process in its own process group with its
//! output captured.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::errors::catch_panics;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rustix::process::Signal;

use super::capture::{config_from_fields, duplicate_fd, ConfigFields, NativeCapture};
use super::wait::{timeout_from_secs, wait_interruptibly};
use crate::process::{CommandSpec, Process, Stdin};

#[pyclass(frozen, module = "outcap._native")]
pub(crate) struct NativeProcess {
    inner: Arc<Process>,
}

#[pymethods]
impl NativeProcess {
    /// Starts `program` with `args` in a new process group.
    #[new]
    #[pyo3(signature = (program, args, *, cwd=None, env=None, input=None, stdin_fd=None, config))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        program: OsString,
        args: Vec<OsString>,
        cwd: Option<PathBuf>,
        env: Option<Vec<(OsString, OsString)>>,
        input: Option<Vec<u8>>,
        stdin_fd: Option<RawFd>,
        config: ConfigFields,
    ) -> PyResult<Self> {
        catch_panics(|| {
            let config = config_from_fields(config)?;
            let stdin = match (input, stdin_fd) {
                (Some(_), Some(_)) => {
                    return Err(PyValueError::new_err(
                        "input and stdin cannot both be given",
                    ));
                }
                (Some(bytes), None) => Stdin::Bytes(bytes),
                (None, Some(fd)) => Stdin::Fd(duplicate_fd(fd, "stdin")?),
                (None, None) => Stdin::Null,
            };
            let spec = CommandSpec {
                program,
                args,
                cwd,
                env,
                stdin,
            };
            let process = py.detach(|| Process::spawn(spec, config))?;
            Ok(Self {
                inner: Arc::new(process),
            })
        })
    }

    #[getter]
    fn pid(&self) -> u32 {
        self.inner.pid()
    }

    #[getter]
    fn capture(&self) -> NativeCapture {
        NativeCapture {
            inner: Arc::clone(self.inner.capture()),
        }
    }

    /// Opens a new cursor over `which` that also ends once the child has exited
    /// and the EOF grace has passed.
    fn stream(&self, which: &str) -> PyResult<super::stream::NativeStream> {
        catch_panics(|| {
            super::stream::NativeStream::open(
                Arc::clone(self.inner.capture()),
                Some(Arc::clone(&self.inner)),
                which,
            )
        })
    }

    /// The exit code if the child has exited, else None; never blocks.
    fn poll(&self) -> PyResult<Option<i32>> {
        catch_panics(|| Ok(self.inner.try_wait()?))
    }

    /// Waits for the child to exit and returns its exit code, or None when
    /// `timeout` seconds passed first.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<i32>> {
        catch_panics(|| {
            let timeout = timeout_from_secs(timeout)?;
            let process = &self.inner;
            wait_interruptibly(py, timeout, |slice| process.wait_timeout(slice))
        })
    }

    /// Sends signal number `signal` to the process group; False when the
    /// child was already reaped.
    fn signal_group(&self, signal: i32) -> PyResult<bool> {
        catch_panics(|| {
            let signal = Signal::from_named_raw(signal)
                .ok_or_else(|| PyValueError::new_err(format!("invalid signal number: {signal}")))?;
            Ok(self.inner.signal_group(signal)?)
        })
    }

    /// Waits up to `timeout` seconds for the child to exit without reaping
    /// it; returns whether it exited.
    fn wait_exited(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        catch_panics(|| {
            let timeout = timeout_from_secs(Some(timeout))?.unwrap_or(Duration::ZERO);
            let process = &self.inner;
            let exited = wait_interruptibly(py, Some(timeout), |slice| {
                process
                    .wait_exited(slice)
                    .map(|exited| exited.then_some(()))
            })?;
            Ok(exited.is_some())
        })
    }

    /// After exit: waits up to `eof_grace` seconds for EOF on both pipes,
    /// stops the readers and records the exit code. Returns whether EOF came
    /// in time.
    fn finish(&self, py: Python<'_>, eof_grace: f64) -> PyResult<bool> {
        catch_panics(|| {
            let grace = timeout_from_secs(Some(eof_grace))?.unwrap_or(Duration::ZERO);
            let process = &self.inner;
            Ok(py.detach(|| process.finish(grace))?)
        })
    }
}
