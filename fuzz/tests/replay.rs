//! Replays the saved inputs of each fuzz target through its check, without
//! libFuzzer: `cargo test` in `fuzz/`.
//!
//! `seeds/TARGET/` contains the starting corpus that `scripts/fuzz.sh`
//! copies into `corpus/TARGET/`. `regressions/TARGET/`, where present,
//! contains inputs that once failed a check, each named after what it
//! reproduces: copy a crash input from `artifacts/TARGET/` there.

use std::fs;
use std::path::{Path, PathBuf};

fn saved_inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for folder in ["seeds", "regressions"] {
        let dir = root.join(folder).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_file() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

/// Runs `check` on every saved input of `target` and reports all failures
/// together, each with the file that caused it.
fn replay(target: &str, check: fn(&[u8])) {
    let paths = saved_inputs(target);
    assert!(!paths.is_empty(), "no saved inputs for target {target}");

    let mut failures = Vec::new();
    for path in &paths {
        let data = fs::read(path).expect("readable input file");
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("non-string panic");
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} saved inputs failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn replay_ansi_inputs() {
    replay("ansi", outcap_fuzz::ansi_check::check);
}

#[test]
fn replay_compress_inputs() {
    replay("compress", outcap_fuzz::compress_check::check);
}

#[test]
fn replay_ring_inputs() {
    replay("ring", outcap_fuzz::ring_check::check);
}

#[test]
fn replay_output_json_inputs() {
    replay("output_json", outcap_fuzz::output_json_check::check);
}
