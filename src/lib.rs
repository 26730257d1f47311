//! outcap: capture a child process's stdout and stderr in bounded memory.
//!
//! The core is plain Rust and builds without Python: a ring buffer per
//! stream ([`ring`]), a streaming ANSI escape stripper ([`ansi`]), gzip
//! ([`compress`]), the capture with its reader threads ([`capture`]), process
//! spawning ([`process`]), the output record ([`output`]) and live
//! stream cursors ([`stream`]). The Python
//! binding lives in `python/` behind the `python` feature.

pub mod ansi;
pub mod capture;
pub mod compress;
pub mod config;
pub mod error;
pub mod output;
pub mod process;
pub mod ring;
mod spawn;
pub mod stream;

#[cfg(feature = "python")]
mod python;
