//! Checks that the fuzz targets in `fuzz_targets/` run on each input.
//!
//! Every check panics on a failure, which libFuzzer reports as a crash. The
//! checks live in this library instead of the target files so that
//! `cargo test` in this crate can replay the saved inputs under
//! `regressions/` and `seeds/` without libFuzzer (see `tests/replay.rs`).

pub mod ansi_check;
pub mod ansi_model;
pub mod compress_check;
pub mod input;
pub mod output_json_check;
pub mod ring_check;
