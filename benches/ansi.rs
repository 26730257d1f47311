//! Throughput of ANSI escape stripping on 50 MiB of log text with escapes
//! and on 50 MiB of the same text without escapes.
//!
//! The log comes from [`GENERATOR_SCRIPT`] when that script exists.
//! Otherwise a built-in generator writes text of the same shape. The bench
//! prints which one it used, and caches the log under Cargo's target
//! directory.

use std::fmt::Write;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outcap::ansi::{strip, AnsiStripper};

const LOG_SIZE: usize = 50 * 1024 * 1024;

/// Python log generator, relative to the crate root, run as
/// `python3 SCRIPT SIZE_BYTES OUTPUT_PATH`.
const GENERATOR_SCRIPT: &str = "benches/gen_log.py";

/// Chunk size for the streaming case, the order of a pipe read.
const CHUNK_SIZE: usize = 64 * 1024;

fn cached_log_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ansi-bench-log-{LOG_SIZE}.txt"))
}

/// Returns the benchmark log, generating and caching it on first use.
fn load_log() -> Vec<u8> {
    let path = cached_log_path();
    if let Ok(log) = std::fs::read(&path) {
        if log.len() == LOG_SIZE {
            eprintln!("ansi bench: log read from {}", path.display());
            return log;
        }
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(GENERATOR_SCRIPT);
    if script.is_file() {
        let status = Command::new("python3")
            .arg(&script)
            .arg(LOG_SIZE.to_string())
            .arg(&path)
            .status();
        match status {
            Ok(status) if status.success() => {
                eprintln!("ansi bench: log written by {}", script.display());
                return std::fs::read(&path).expect("generated log is readable");
            }
            Ok(status) => eprintln!("ansi bench: {} failed with {status}", script.display()),
            Err(error) => eprintln!("ansi bench: failed to run python3: {error}"),
        }
    }

    eprintln!("ansi bench: log written by the built-in generator");
    let log = generate_log(LOG_SIZE);
    if let Err(error) = std::fs::write(&path, &log) {
        eprintln!(
            "ansi bench: failed to cache log at {}: {error}",
            path.display()
        );
    }
    log
}

/// `SplitMix64` generator, so the built-in log is the same on every run.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a value in `0..bound`. The modulo bias is negligible for
    /// the small bounds used here.
    fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Builds `size` bytes of timestamped log lines. About 60% of level tags
/// are SGR-coloured, and 1% of lines are progress bars that erase the line
/// and return the carriage. 0.2% of lines set a window title with OSC 0
/// ended by BEL, and 0.3% carry an OSC 8 hyperlink ended by ST.
fn generate_log(size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "request", "response", "cache", "miss", "timeout", "retry", "queue", "worker", "commit",
        "rollback", "token", "config", "reload", "listen", "accept", "flush", "upload", "checksum",
        "handler", "replica", "leader", "snapshot", "bucket", "latency", "payload", "invalid",
    ];
    const MODULES: &[&str] = &[
        "http.server",
        "db.pool",
        "auth.jwt",
        "storage.s3",
        "scheduler",
    ];
    const THREADS: &[&str] = &["main", "worker-1", "worker-2", "io-0"];
    const LEVELS: &[(&str, &str)] = &[
        ("DEBUG", "\x1b[36m"),
        ("INFO ", "\x1b[32m"),
        ("INFO ", "\x1b[32m"),
        ("WARN ", "\x1b[33m"),
        ("ERROR", "\x1b[31;1m"),
        ("TRACE", "\x1b[38;5;244m"),
    ];

    // Writing to a String cannot fail, so the `write!` results are ignored.
    let mut rng = SplitMix64(1);
    let mut log = String::with_capacity(size + 512);
    let mut millis = 0;
    while log.len() < size {
        millis += rng.below(20);
        let mut message = String::new();
        for _ in 0..3 + rng.below(10) {
            message.push_str(rng.pick(WORDS));
            message.push(' ');
        }

        let roll = rng.below(1000);
        if roll < 10 {
            let percent = rng.below(101);
            let bar = format!(
                "{}{}",
                "#".repeat(percent / 5),
                ".".repeat(20 - percent / 5)
            );
            let _ = writeln!(log, "\x1b[2K\r\x1b[1m{percent:3}%\x1b[0m [{bar}] {message}");
            continue;
        }
        if roll < 12 {
            let _ = write!(log, "\x1b]0;build: {message}\x07");
        }

        let (level, colour) = LEVELS[rng.below(LEVELS.len())];
        let seconds = millis / 1000;
        let _ = write!(
            log,
            "2024-06-01T{:02}:{:02}:{:02}.{:03}Z ",
            seconds / 3600 % 24,
            seconds / 60 % 60,
            seconds % 60,
            millis % 1000
        );
        if rng.below(10) < 6 {
            let _ = write!(log, "{colour}{level}\x1b[0m");
        } else {
            log.push_str(level);
        }
        let _ = write!(
            log,
            " [{}] {}: {message}{}={}",
            rng.pick(THREADS),
            rng.pick(MODULES),
            rng.pick(WORDS),
            rng.below(100_000)
        );
        if (12..15).contains(&roll) {
            let target = rng.below(1 << 24);
            let _ = write!(
                log,
                " see \x1b]8;;https://example.invalid/{target:06x}\x1b\\docs\x1b]8;;\x1b\\"
            );
        }
        log.push('\n');
    }

    let mut bytes = log.into_bytes();
    bytes.truncate(size);
    bytes
}

/// Repeats the stripped log up to the log's size, for text with no ESC.
fn escape_free_text(log: &[u8]) -> Vec<u8> {
    let stripped = strip(log);
    assert!(!stripped.is_empty(), "stripped log is empty");
    stripped.iter().copied().cycle().take(log.len()).collect()
}

fn bench_strip(c: &mut Criterion) {
    let log = load_log();
    let text = escape_free_text(&log);

    let mut group = c.benchmark_group("ansi");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    for (name, input) in [("log", &log), ("escape_free", &text)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(format!("strip/{name}"), |b| {
            b.iter(|| strip(black_box(input)));
        });

        // This case models a reader that feeds 64 KiB reads to one stripper
        // and reuses one output buffer, so it excludes the allocation that
        // `strip` pays for its 50 MiB result.
        group.bench_function(format!("strip_into_64KiB_chunks/{name}"), |b| {
            let mut out = Vec::with_capacity(CHUNK_SIZE);
            b.iter(|| {
                let mut stripper = AnsiStripper::new();
                let mut kept_len = 0;
                for chunk in black_box(input).chunks(CHUNK_SIZE) {
                    out.clear();
                    stripper.strip_into(chunk, &mut out);
                    kept_len += out.len();
                }
                stripper.finish();
                kept_len
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_strip);
criterion_main!(benches);
