//! The `outcap._native` extension module: blunt native building blocks.
//!
//! Defaults, argument checking, text decoding, timeouts and the asyncio glue
//! live in the Python package; these classes only move bytes, start and wait
//! for processes, and release the GIL while they block.

mod capture;
mod errors;
mod process;
mod stream;
mod wait;

use errors::catch_panics;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::output::ProcessOutput;

/// The module is free-threading safe: every class is `frozen` and keeps its
/// mutable state behind the core's own locks and atomics.
#[pymodule(gil_used = false)]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<capture::NativeCapture>()?;
    module.add_class::<process::NativeProcess>()?;
    module.add_class::<stream::NativeStream>()?;
    module.add_class::<stream::Chunk>()?;
    module.add_function(wrap_pyfunction!(strip_ansi, module)?)?;
    module.add_function(wrap_pyfunction!(gunzip, module)?)?;
    module.add_function(wrap_pyfunction!(gzip, module)?)?;
    module.add("GZIP_DEFAULT_LEVEL", crate::compress::DEFAULT_LEVEL)?;
    module.add_function(wrap_pyfunction!(output_to_json, module)?)?;
    module.add_function(wrap_pyfunction!(output_from_json, module)?)?;
    module.add("CaptureError", py.get_type::<errors::CaptureError>())?;
    module.add(
        "CaptureClosedError",
        py.get_type::<errors::CaptureClosedError>(),
    )?;
    module.add(
        "StreamingDisabledError",
        py.get_type::<errors::StreamingDisabledError>(),
    )?;
    module.add("READ_BUFFER_SIZE", crate::capture::READ_BUFFER_SIZE)?;
    module.add("MAX_STRING_LEN", crate::ansi::MAX_STRING_LEN)?;
    module.add("EOF_GRACE", crate::process::DEFAULT_EOF_GRACE.as_secs_f64())?;
    Ok(())
}

/// Removes ANSI escape sequences from `data`.
#[pyfunction]
fn strip_ansi<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    catch_panics(|| {
        let stripped = py.detach(|| crate::ansi::strip(data));
        Ok(PyBytes::new(py, &stripped))
    })
}

/// Compresses `data` as one gzip member at `level` (0-9), as stored output is.
#[pyfunction]
#[pyo3(signature = (data, level=crate::compress::DEFAULT_LEVEL))]
fn gzip<'py>(py: Python<'py>, data: &[u8], level: u32) -> PyResult<Bound<'py, PyBytes>> {
    catch_panics(|| {
        if level > 9 {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "invalid gzip level: {level}; expected 0 to 9"
            )));
        }
        let compressed = py.detach(|| crate::compress::gzip(data, level));
        Ok(PyBytes::new(py, &compressed))
    })
}

/// Decompresses gzip data (one or more members).
#[pyfunction]
fn gunzip<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    catch_panics(|| {
        let to_error = |error: std::io::Error| errors::CaptureError::new_err(error.to_string());

        // Decompressing straight into the bytes object saves a copy of the
        // whole output, which for a full ring is as large as the ring itself.
        if let Some(size) = crate::compress::trailer_size(data) {
            let mut exact = false;
            let bytes = PyBytes::new_with(py, size, |buffer| {
                exact = py
                    .detach(|| crate::compress::gunzip_exact_into(data, buffer))
                    .map_err(to_error)?;
                Ok(())
            })?;
            if exact {
                return Ok(bytes);
            }
        }

        let plain = py
            .detach(|| crate::compress::gunzip(data))
            .map_err(to_error)?;
        Ok(PyBytes::new(py, &plain))
    })
}

/// The fields of a `ProcessOutput` as a tuple, in the order of
/// `outcap.ProcessOutput._FIELDS`.
pub(crate) type OutputFields<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Option<i32>,
    i64,
    u64,
    u64,
    bool,
    bool,
    i64,
    i64,
    bool,
    Option<String>,
);

pub(crate) fn output_to_fields<'py>(py: Python<'py>, output: &ProcessOutput) -> OutputFields<'py> {
    (
        PyBytes::new(py, &output.stdout),
        PyBytes::new(py, &output.stderr),
        output.exit_code,
        output.duration_us,
        output.stdout_size,
        output.stderr_size,
        output.truncated,
        output.compressed,
        output.capture_started_us,
        output.capture_ended_us,
        output.streaming,
        output.stream_channel.clone(),
    )
}

/// Encodes the fields of a `ProcessOutput` as JSON in the Go service's format.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (stdout, stderr, exit_code, duration_us, stdout_size, stderr_size, truncated, compressed, capture_started_us, capture_ended_us, streaming, stream_channel))]
fn output_to_json(
    py: Python<'_>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit_code: Option<i32>,
    duration_us: i64,
    stdout_size: u64,
    stderr_size: u64,
    truncated: bool,
    compressed: bool,
    capture_started_us: i64,
    capture_ended_us: i64,
    streaming: bool,
    stream_channel: Option<String>,
) -> PyResult<String> {
    catch_panics(|| {
        let output = ProcessOutput {
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
        };
        Ok(py.detach(|| output.to_json()))
    })
}

/// Parses a JSON record into `ProcessOutput` fields; `ValueError` names the
/// field that is wrong.
#[pyfunction]
fn output_from_json<'py>(py: Python<'py>, text: &str) -> PyResult<OutputFields<'py>> {
    catch_panics(|| {
        let output = py
            .detach(|| ProcessOutput::from_json(text))
            .map_err(|error| pyo3::exceptions::PyValueError::new_err(error.to_string()))?;
        Ok(output_to_fields(py, &output))
    })
}
