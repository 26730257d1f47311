//! Gzip compression of stored output (RFC 1952), through flate2 with its
//! `zlib-rs` backend.
//!
//! [`gzip`] always writes exactly one gzip member, which `gzip -d`, Python's
//! `gzip.decompress` and `zlib.decompressobj(wbits=31)` all read whole, as the
//! tests check. [`gunzip`] reads any number of concatenated members, as
//! `gzip -d` does.

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Default gzip level used for stored output.
///
/// Level 3 sits at the knee of the speed/ratio curve on log text. On 10 MiB of
/// generated logs it compresses about 2.6 times as fast as level 6, and its
/// output is about 5% larger. Compression runs when a capture ends, so its
/// time adds to the caller's wait. `docs/compression.md` has the measurements
/// and the machine they come from.
pub const DEFAULT_LEVEL: u32 = 3;

/// Highest gzip level that zlib and its ports accept.
pub const MAX_LEVEL: u32 = 9;

/// Output capacity reserved up front, as a divisor of the input length. Log
/// text compresses to 26-37% of its size at levels 1-6, so half the input
/// leaves room for less compressible output before the Vec has to grow.
const EXPECTED_RATIO_DIVISOR: usize = 2;

/// Gzip header (10 bytes) plus trailer (CRC-32 and size, 8 bytes) as flate2
/// writes them, with no file name, comment or extra field.
const GZIP_FRAMING_LEN: usize = 18;

/// Cap on how far the size in a gzip trailer may pre-size decompressed output,
/// as a multiple of the compressed size. The trailer is untrusted, so the cap
/// keeps a corrupt 20-byte input from reserving gigabytes.
const MAX_PRESIZE_EXPANSION: usize = 16;

/// Compresses `data` as one gzip member at `level` (0 stores, 9 is smallest).
///
/// Levels above [`MAX_LEVEL`] are treated as [`MAX_LEVEL`]. Empty input still
/// produces a complete 20-byte member.
#[must_use]
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let capacity = data.len() / EXPECTED_RATIO_DIVISOR + GZIP_FRAMING_LEN;
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(capacity),
        Compression::new(level.min(MAX_LEVEL)),
    );

    // A Vec writer never fails, and deflate fails only on a misused stream,
    // which GzEncoder does not produce.
    encoder
        .write_all(data)
        .expect("gzip into a Vec has no I/O error");
    let mut compressed = encoder.finish().expect("gzip into a Vec has no I/O error");

    // The result usually lives as long as its ProcessOutput, so the spare
    // capacity left by the estimate or by growth is released.
    compressed.shrink_to_fit();
    compressed
}

/// Decompresses gzip data made of one or more concatenated members.
///
/// Empty input has no members and decompresses to empty output, as Python's
/// `gzip.decompress` does. A compressed record stores an empty stream that way.
///
/// # Errors
///
/// Returns an error when the input is not valid gzip data. Input that ends
/// inside a member, or has trailing bytes that do not start a member, gives
/// kind [`io::ErrorKind::UnexpectedEof`]. A bad header, bad deflate data and a
/// CRC-32 or size mismatch give other kinds. The message starts with "invalid
/// gzip data".
pub fn gunzip(data: &[u8]) -> io::Result<Vec<u8>> {
    if data.is_empty() {
        return Ok(Vec::new());
    }

    let mut decompressed = Vec::with_capacity(presize_hint(data));
    MultiGzDecoder::new(data)
        .read_to_end(&mut decompressed)
        .map_err(|error| io::Error::new(error.kind(), format!("invalid gzip data: {error}")))?;
    Ok(decompressed)
}

/// Decompresses single-member gzip `data` into `out`, which must be exactly
/// the decompressed size (see [`trailer_size`]). Returns `Ok(false)` when the
/// data decompresses to another size, so the caller can fall back to
/// [`gunzip`]; this lets a caller decompress straight into memory it
/// allocated once, such as a Python `bytes` object.
pub fn gunzip_exact_into(data: &[u8], out: &mut [u8]) -> io::Result<bool> {
    let mut decoder = MultiGzDecoder::new(data);
    let invalid =
        |error: io::Error| io::Error::new(error.kind(), format!("invalid gzip data: {error}"));
    match decoder.read_exact(out) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(error) => return Err(invalid(error)),
    }
    let mut extra = [0u8; 1];
    Ok(decoder.read(&mut extra).map_err(invalid)? == 0)
}

/// Most bytes DEFLATE can expand to per compressed byte (its longest match,
/// 258 bytes, coded in about two bits).
const MAX_DEFLATE_EXPANSION: usize = 1032;

/// The uncompressed size that the last member's trailer records (ISIZE, the
/// size modulo 2^32), or `None` when `data` is too short to have one or the
/// size is more than DEFLATE can produce from `data`: a corrupt or hostile
/// trailer must not decide how much memory is reserved.
pub fn trailer_size(data: &[u8]) -> Option<usize> {
    if data.len() < 18 {
        return None;
    }
    let size = u32::from_le_bytes(*data.last_chunk::<4>()?) as usize;
    (size <= data.len().saturating_mul(MAX_DEFLATE_EXPANSION)).then_some(size)
}

/// Reads the uncompressed size from the last member's trailer (ISIZE, the size
/// modulo 2^32), capped by [`MAX_PRESIZE_EXPANSION`].
fn presize_hint(data: &[u8]) -> usize {
    let Some(trailer) = data.last_chunk::<4>() else {
        return 0;
    };
    let isize_field = u32::from_le_bytes(*trailer) as usize;
    isize_field.min(data.len().saturating_mul(MAX_PRESIZE_EXPANSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::ErrorKind;
    use std::process::{Command, Stdio};

    use proptest::prelude::*;

    const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

    #[test]
    fn gunzip_exact_into_matches_gunzip() {
        let data = b"exact size ".repeat(1000);
        let compressed = gzip(&data, DEFAULT_LEVEL);
        let size = trailer_size(&compressed).unwrap();
        assert_eq!(size, data.len());
        let mut out = vec![0u8; size];
        assert!(gunzip_exact_into(&compressed, &mut out).unwrap());
        assert_eq!(out, data);
    }

    #[test]
    fn trailer_size_rejects_impossible_sizes() {
        let mut compressed = gzip(b"hello", DEFAULT_LEVEL);
        let length = compressed.len();
        compressed[length - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(trailer_size(&compressed), None);
    }

    #[test]
    fn gunzip_exact_into_reports_other_sizes() {
        let compressed = gzip(b"twelve bytes", DEFAULT_LEVEL);
        let mut short = vec![0u8; 11];
        assert!(!gunzip_exact_into(&compressed, &mut short).unwrap());
        let mut long = vec![0u8; 13];
        assert!(!gunzip_exact_into(&compressed, &mut long).unwrap());
    }

    fn sample_log() -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..5000 {
            let line = format!(
                "2024-06-01T12:{:02}:{:02}.{:06}Z \x1b[32mINFO \x1b[0m [worker-{}] http.server: request id={} status={}\n",
                (i / 60) % 60,
                i % 60,
                i * 7919 % 1_000_000,
                i % 4,
                i * 31,
                if i % 17 == 0 { 500 } else { 200 },
            );
            text.extend_from_slice(line.as_bytes());
        }
        text
    }

    /// Counts the gzip members by decoding them one at a time with a
    /// single-member decoder, which stops at the end of the first member.
    fn count_members(mut data: &[u8]) -> usize {
        let mut members = 0;
        while !data.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(data);
            io::copy(&mut decoder, &mut io::sink()).expect("member decodes");
            data = decoder.into_inner();
            members += 1;
        }
        members
    }

    /// Runs `program` with `input` on stdin and returns its stdout, or `None`
    /// when the program is not installed.
    fn run_filter(program: &str, args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                eprintln!("skipping: {program} is not installed");
                return None;
            }
            Err(error) => panic!("failed to start {program}: {error}"),
        };

        // Write stdin from another thread: a filter that fills its stdout pipe
        // before reading all of stdin would deadlock a sequential write.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().expect("wait for filter");
        writer.join().unwrap().expect("write filter stdin");

        assert!(
            output.status.success(),
            "{program} failed: {}",
            output.status
        );
        Some(output.stdout)
    }

    #[test]
    fn gzip_round_trip_every_level() {
        let data = sample_log();
        for level in 0..=MAX_LEVEL {
            let compressed = gzip(&data, level);
            assert_eq!(gunzip(&compressed).unwrap(), data, "level {level}");
        }
    }

    #[test]
    fn gzip_compresses_log_text() {
        let data = sample_log();
        let compressed = gzip(&data, DEFAULT_LEVEL);
        assert!(
            compressed.len() < data.len() / 3,
            "{} bytes compressed to {}",
            data.len(),
            compressed.len()
        );
    }

    #[test]
    fn gzip_writes_one_member_with_magic() {
        for data in [b"".as_slice(), b"hello\n", &sample_log()] {
            let compressed = gzip(data, DEFAULT_LEVEL);
            assert_eq!(compressed[..2], GZIP_MAGIC);
            assert_eq!(compressed[2], 8, "compression method is deflate");
            assert_eq!(count_members(&compressed), 1);
        }
    }

    #[test]
    fn gzip_empty_input_is_complete_member() {
        let compressed = gzip(b"", DEFAULT_LEVEL);
        assert_eq!(compressed.len(), 20);
        assert_eq!(gunzip(&compressed).unwrap(), b"");
    }

    #[test]
    fn gzip_level_above_max_is_clamped() {
        let data = sample_log();
        assert_eq!(gzip(&data, 42), gzip(&data, MAX_LEVEL));
    }

    #[test]
    fn gzip_returns_no_spare_capacity() {
        let compressed = gzip(&sample_log(), DEFAULT_LEVEL);
        assert_eq!(compressed.capacity(), compressed.len());
    }

    #[test]
    fn gunzip_empty_input_is_empty() {
        assert_eq!(gunzip(b"").unwrap(), b"");
    }

    #[test]
    fn gunzip_concatenated_members() {
        let mut data = gzip(b"hello ", 1);
        data.extend_from_slice(&gzip(b"world\n", 9));
        assert_eq!(gunzip(&data).unwrap(), b"hello world\n");
    }

    #[test]
    fn gunzip_rejects_truncated_input() {
        let compressed = gzip(&sample_log(), DEFAULT_LEVEL);
        for len in [1, 2, 10, compressed.len() / 2, compressed.len() - 1] {
            let error = gunzip(&compressed[..len]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "length {len}");
            assert!(
                error.to_string().starts_with("invalid gzip data"),
                "{error}"
            );
        }
    }

    #[test]
    fn gunzip_rejects_checksum_mismatch() {
        let mut compressed = gzip(b"hello\n", DEFAULT_LEVEL);
        let crc_offset = compressed.len() - 8;
        compressed[crc_offset] ^= 0x01;
        let error = gunzip(&compressed).unwrap_err();
        assert!(error.to_string().contains("checksum"), "{error}");
    }

    #[test]
    fn gunzip_rejects_bad_magic() {
        let mut compressed = gzip(b"hello\n", DEFAULT_LEVEL);
        compressed[0] = b'x';
        assert!(gunzip(&compressed).is_err());
        assert!(gunzip(b"plain text, not gzip").is_err());
    }

    #[test]
    fn gunzip_rejects_trailing_garbage() {
        let mut compressed = gzip(b"hello\n", DEFAULT_LEVEL);
        compressed.extend_from_slice(b"garbage");
        assert!(gunzip(&compressed).is_err());
    }

    #[test]
    fn gunzip_huge_trailer_size_is_capped() {
        // A corrupt member claiming 4 GiB must fail without reserving it.
        let mut compressed = gzip(b"hello\n", DEFAULT_LEVEL);
        let len = compressed.len();
        compressed[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(presize_hint(&compressed) <= len * MAX_PRESIZE_EXPANSION);
        assert!(gunzip(&compressed).is_err());
    }

    #[test]
    fn gzip_output_decodes_with_gzip_tool() {
        let data = sample_log();
        let compressed = gzip(&data, DEFAULT_LEVEL);
        if let Some(decoded) = run_filter("gzip", &["-dc"], &compressed) {
            assert_eq!(decoded, data);
        }
    }

    #[test]
    fn gzip_output_decodes_with_python() {
        // gzip.decompress reads every member, and zlib.decompressobj with
        // wbits=31 reads exactly one gzip member, leaving any rest in
        // unused_data, so both together prove a single complete member.
        let script = "import gzip, sys, zlib\n\
                      data = sys.stdin.buffer.read()\n\
                      whole = gzip.decompress(data)\n\
                      d = zlib.decompressobj(wbits=31)\n\
                      one = d.decompress(data) + d.flush()\n\
                      assert d.eof and d.unused_data == b'', 'not one whole member'\n\
                      assert one == whole, 'zlib and gzip disagree'\n\
                      sys.stdout.buffer.write(whole)\n";
        let data = sample_log();
        let compressed = gzip(&data, DEFAULT_LEVEL);
        if let Some(decoded) = run_filter("python3", &["-c", script], &compressed) {
            assert_eq!(decoded, data);
        }
    }

    proptest! {
        #[test]
        fn gzip_round_trip_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096), level in 0..=MAX_LEVEL) {
            let compressed = gzip(&data, level);
            prop_assert_eq!(gunzip(&compressed).unwrap(), data);
        }

        #[test]
        fn gunzip_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = gunzip(&data);
        }

        #[test]
        fn gunzip_corrupted_member_never_panics(index in any::<usize>(), flip in 1..=u8::MAX) {
            let mut compressed = gzip(b"some log line\nanother log line\n", DEFAULT_LEVEL);
            let index = index % compressed.len();
            compressed[index] ^= flip;
            let _ = gunzip(&compressed);
        }
    }
}
