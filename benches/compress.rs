//! Gzip and gunzip throughput on 10 MiB of log text, at the default level and
//! at level 6 (zlib's default). criterion reports MiB/s of uncompressed data.
//!
//! The input comes from `benches/gen_log.py` in the repository
//! when that script and `python3` are present, so the numbers compare with
//! `docs/compression.md`. Otherwise a built-in generator writes log text of
//! the same shape, whose ratios differ by up to 0.02 from the script's.
//!
//! Run: `cargo bench --bench compress`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use outcap::compress::{gunzip, gzip, DEFAULT_LEVEL};

const INPUT_LEN: usize = 10 * 1024 * 1024;

/// zlib's default level, for comparison with the level chosen here.
const ZLIB_DEFAULT_LEVEL: u32 = 6;

/// Ten samples of level-6 gzip on 10 MiB took about 9 s on the machine in
/// `docs/compression.md`, more than criterion's default 5 s.
const MEASUREMENT_TIME: Duration = Duration::from_secs(12);

fn bench_levels() -> Vec<u32> {
    let mut levels = vec![DEFAULT_LEVEL];
    if DEFAULT_LEVEL != ZLIB_DEFAULT_LEVEL {
        levels.push(ZLIB_DEFAULT_LEVEL);
    }
    levels
}

fn bench_gzip(c: &mut Criterion) {
    let data = log_input();
    let mut group = c.benchmark_group("gzip");
    group.sample_size(10);
    group.measurement_time(MEASUREMENT_TIME);
    group.throughput(Throughput::Bytes(data.len() as u64));

    for level in bench_levels() {
        group.bench_with_input(BenchmarkId::new("level", level), data, |b, data| {
            b.iter(|| gzip(black_box(data), level));
        });
    }
    group.finish();
}

fn bench_gunzip(c: &mut Criterion) {
    let data = log_input();
    let mut group = c.benchmark_group("gunzip");
    group.sample_size(10);
    group.measurement_time(MEASUREMENT_TIME);
    // Throughput counts uncompressed bytes, so gzip and gunzip rates compare.
    group.throughput(Throughput::Bytes(data.len() as u64));

    for level in bench_levels() {
        let compressed = gzip(data, level);
        group.bench_with_input(
            BenchmarkId::new("level", level),
            &compressed,
            |b, compressed| {
                b.iter(|| gunzip(black_box(compressed)).expect("benchmark input is valid gzip"));
            },
        );
    }
    group.finish();
}

/// Returns 10 MiB of log text, from the generator script if it runs,
/// else from [`generate_log`]. Both benchmark groups share one copy.
fn log_input() -> &'static [u8] {
    static INPUT: OnceLock<Vec<u8>> = OnceLock::new();
    INPUT.get_or_init(load_log_input)
}

fn load_log_input() -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_log.py");
    if script.is_file() {
        match run_log_script(&script) {
            Ok(data) => {
                eprintln!("input: {} bytes from {}", data.len(), script.display());
                return data;
            }
            Err(message) => eprintln!("{message}. Using the built-in log generator instead."),
        }
    }
    let data = generate_log(INPUT_LEN);
    eprintln!(
        "input: {} bytes from the built-in log generator",
        data.len()
    );
    data
}

fn run_log_script(script: &Path) -> Result<Vec<u8>, String> {
    let output_path: PathBuf = std::env::temp_dir().join("outcap-bench-log-10MiB.txt");
    let status = Command::new("python3")
        .arg(script)
        .arg(INPUT_LEN.to_string())
        .arg(&output_path)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|error| format!("failed to run python3 {}: {error}", script.display()))?;
    if !status.success() {
        return Err(format!("{} failed: {status}", script.display()));
    }

    let data = std::fs::read(&output_path)
        .map_err(|error| format!("failed to read {}: {error}", output_path.display()))?;
    // The file is only scratch space for this run.
    let _ = std::fs::remove_file(&output_path);
    if data.len() != INPUT_LEN {
        return Err(format!(
            "{} wrote {} bytes, expected {INPUT_LEN}",
            script.display(),
            data.len()
        ));
    }
    Ok(data)
}

/// Generates `len` bytes of deterministic log lines in the shape of a service
/// log: ISO timestamp, level (SGR-coloured in about 60% of lines), thread,
/// module, a few words and `key=value` pairs.
fn generate_log(len: usize) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "request", "response", "session", "cache", "miss", "hit", "connect", "timeout", "retry",
        "queue", "worker", "job", "batch", "record", "commit", "rollback", "token", "config",
        "reload", "listen", "flush", "upload", "checksum", "parse", "route", "handler", "database",
        "replica", "snapshot", "latency", "status", "rejected",
    ];
    const LEVELS: [(&str, &str); 5] = [
        ("DEBUG", "\x1b[36m"),
        ("INFO ", "\x1b[32m"),
        ("INFO ", "\x1b[32m"),
        ("WARN ", "\x1b[33m"),
        ("ERROR", "\x1b[31;1m"),
    ];
    const THREADS: [&str; 4] = ["main", "worker-1", "worker-2", "io-0"];
    const MODULES: [&str; 6] = [
        "http.server",
        "db.pool",
        "cache.redis",
        "auth.jwt",
        "worker.queue",
        "scheduler",
    ];

    let mut rng = XorShift64(0x9e37_79b9_7f4a_7c15);
    let mut micros: u64 = 0;
    let mut log = String::with_capacity(len + 256);

    while log.len() < len {
        micros += rng.below(10_000);
        let seconds = micros / 1_000_000;
        let (level, colour) = LEVELS[rng.below(LEVELS.len() as u64) as usize];
        let level_text = if rng.below(10) < 6 {
            format!("{colour}{level}\x1b[0m")
        } else {
            level.to_owned()
        };
        log.push_str(&format!(
            "2024-06-01T{:02}:{:02}:{:02}.{:06}Z {level_text} [{}] {}:",
            seconds / 3600 % 24,
            seconds / 60 % 60,
            seconds % 60,
            micros % 1_000_000,
            THREADS[rng.below(THREADS.len() as u64) as usize],
            MODULES[rng.below(MODULES.len() as u64) as usize],
        ));
        for _ in 0..3 + rng.below(10) {
            log.push(' ');
            log.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        for _ in 0..rng.below(5) {
            let key = WORDS[rng.below(WORDS.len() as u64) as usize];
            log.push_str(&format!(" {key}={:08x}", rng.below(1 << 32)));
        }
        log.push('\n');
    }

    let mut bytes = log.into_bytes();
    bytes.truncate(len);
    bytes
}

/// Marsaglia's xorshift64: deterministic and dependency-free, which is all
/// test data needs.
struct XorShift64(u64);

impl XorShift64 {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

criterion_group!(benches, bench_gzip, bench_gunzip);
criterion_main!(benches);
