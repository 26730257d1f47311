//! The `ansi` fuzz target's check.
//!
//! Input layout: the first byte gives the number of cuts (0–8, the byte mod
//! 9), the next two bytes per cut give a cut position (little endian, taken
//! mod `len + 1`), and the remaining bytes are the stream to strip.

use outcap::ansi::{strip, AnsiStripper};

use crate::ansi_model::{model_strip, ModelStripper};
use crate::input::ByteReader;

const MAX_CUTS: u8 = 8;

/// Splits fuzzer bytes into sorted cut positions and the stream.
pub fn decode(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let mut reader = ByteReader::new(data);
    let cut_count = reader.u8() % (MAX_CUTS + 1);
    let raw_cuts: Vec<u16> = (0..cut_count).map(|_| reader.u16()).collect();
    let stream = reader.take_rest();

    let mut cuts: Vec<usize> = raw_cuts
        .into_iter()
        .map(|raw| usize::from(raw) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    (cuts, stream)
}

/// Maximum input length that a failure message shows in full.
const MAX_SHOWN_BYTES: usize = 64;

/// Formats `bytes` for a failure message: in full when short, else the
/// first `MAX_SHOWN_BYTES` and the length. libFuzzer saves the whole input.
fn shown(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_SHOWN_BYTES {
        format!("{bytes:x?}")
    } else {
        format!(
            "{:x?}... ({} bytes)",
            &bytes[..MAX_SHOWN_BYTES],
            bytes.len()
        )
    }
}

/// Returns the index of the first byte where `a` and `b` differ, or the
/// shorter length when one is a prefix of the other.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Panics with both outputs around their first difference unless they are equal.
fn assert_same_output(got: &[u8], expected: &[u8], comparison: &str, stream: &[u8]) {
    if got == expected {
        return;
    }
    let at = first_difference(got, expected);
    let from = at.saturating_sub(8);
    panic!(
        "{comparison}: outputs differ at output byte {at} (lengths {} and {})\n  got:      {}\n  expected: {}\n  input: {}",
        got.len(),
        expected.len(),
        shown(&got[from..got.len().min(at + 16)]),
        shown(&expected[from..expected.len().min(at + 16)]),
        shown(stream),
    );
}

/// Runs every ANSI check on one fuzzer input. Panics on a mismatch.
pub fn check(data: &[u8]) {
    let (cuts, stream) = decode(data);
    check_stream(stream, &cuts);
}

/// Checks `outcap::ansi` on `stream` cut at `cuts` (sorted offsets).
pub fn check_stream(stream: &[u8], cuts: &[usize]) {
    let one_shot = strip(stream);
    let expected = model_strip(stream);
    assert_same_output(&one_shot, &expected, "strip vs reference model", stream);

    assert!(
        !one_shot.contains(&0x1B),
        "output contains ESC for input {}",
        shown(stream)
    );
    assert!(one_shot.len() <= stream.len(), "output longer than input");

    let split = strip_in_chunks(stream, cuts);
    let comparison = format!("strip in chunks cut at {cuts:?} vs one-shot strip");
    assert_same_output(&split, &one_shot, &comparison, stream);

    let every_byte: Vec<usize> = (1..stream.len()).collect();
    let byte_by_byte = strip_in_chunks(stream, &every_byte);
    assert_same_output(
        &byte_by_byte,
        &one_shot,
        "byte-at-a-time strip vs one-shot strip",
        stream,
    );
}

/// Strips `stream` in chunks cut at `cuts` and checks after every chunk that
/// the output so far and `in_sequence()` agree with the reference model fed
/// the same bytes.
fn strip_in_chunks(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut stripper = AnsiStripper::new();
    let mut model = ModelStripper::default();
    let mut out = Vec::new();
    let mut model_out = Vec::new();

    // Output bytes already compared. Comparing only the new bytes after each
    // chunk keeps a byte-at-a-time run linear in the input length.
    let mut compared = 0;
    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        let chunk = &stream[start..end];
        stripper.strip_into(chunk, &mut out);
        for &byte in chunk {
            model.push(byte, &mut model_out);
        }
        if out[compared..] != model_out[compared..] {
            assert_same_output(
                &out,
                &model_out,
                &format!("output after {end} input bytes vs reference model, cuts {cuts:?}"),
                stream,
            );
        }
        compared = out.len();
        assert_eq!(
            stripper.in_sequence(),
            model.in_sequence(),
            "in_sequence() after {end} bytes differs from the reference model (state {:?}), cuts {cuts:?}",
            model.state
        );
        start = end;
    }

    stripper.finish();
    assert!(!stripper.in_sequence(), "in_sequence() after finish()");
    out
}
