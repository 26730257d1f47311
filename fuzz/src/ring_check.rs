//! The `ring` fuzz target's check: `RingBuffer` against a model that keeps
//! every byte ever written.
//!
//! Input layout: two bytes give the capacity (1 + u16 mod 1024), then each
//! operation starts with a tag byte.
//!
//! - Tag bit 0 clear: write. The next byte times a multiplier (1, 4, 16 or
//!   64, from tag bits 1–2) is the length, so one write can exceed the
//!   capacity several times over. The bytes written are a function of their
//!   stream offset, so a byte copied to the wrong place is visible.
//! - Tag bit 0 set: `read_from(offset, max_len)`. Tag bits 1–2 pick the
//!   offset: `total - k`, `oldest + k`, `total + k` (k from the next byte) or
//!   any u64 (the next 8 bytes). The next byte is `max_len`, with 255
//!   meaning `usize::MAX`.

use outcap::ring::RingBuffer;

use crate::input::ByteReader;

/// Most operations decoded from one input, to bound the time per input.
const MAX_OPERATIONS: usize = 512;

/// Byte at stream offset `offset`: the top byte of a Fibonacci hash, so the
/// bytes have no short period and a copy from a shifted position shows up.
fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Runs the ring checks on one fuzzer input. Panics on a mismatch.
pub fn check(data: &[u8]) {
    let mut reader = ByteReader::new(data);
    let capacity = 1 + usize::from(reader.u16() % 1024);
    let ring = RingBuffer::new(capacity).expect("a ring of at most 1024 bytes allocates");
    assert_eq!(ring.capacity(), capacity);
    assert!(ring.is_empty());

    let mut model: Vec<u8> = Vec::new();
    let mut operations = 0;
    while !reader.is_empty() && operations < MAX_OPERATIONS {
        operations += 1;
        let tag = reader.u8();
        if tag & 1 == 0 {
            let multiplier = 1usize << (2 * ((tag >> 1) & 3));
            let len = usize::from(reader.u8()) * multiplier;
            let start = model.len() as u64;
            let bytes: Vec<u8> = (start..start + len as u64).map(pattern_byte).collect();
            ring.write(&bytes);
            model.extend_from_slice(&bytes);
            check_contents(&ring, &model);
        } else {
            let total = model.len() as u64;
            let oldest = total.saturating_sub(capacity as u64);
            let offset = match (tag >> 1) & 3 {
                0 => total.saturating_sub(u64::from(reader.u8())),
                1 => oldest + u64::from(reader.u8()),
                2 => total + u64::from(reader.u8()),
                _ => reader.u64(),
            };
            let max_len = match reader.u8() {
                255 => usize::MAX,
                byte => usize::from(byte),
            };
            check_read(&ring, &model, offset, max_len);
        }
    }
}

/// Checks the counters and the snapshot against the model.
fn check_contents(ring: &RingBuffer, model: &[u8]) {
    let capacity = ring.capacity();
    let oldest = model.len().saturating_sub(capacity);
    assert_eq!(ring.total_written(), model.len() as u64, "total_written");
    assert_eq!(ring.overwritten(), oldest as u64, "overwritten");
    assert_eq!(ring.len(), model.len() - oldest, "len");
    assert_eq!(ring.is_empty(), model.is_empty(), "is_empty");
    assert!(
        ring.snapshot() == model[oldest..],
        "snapshot differs from the last {capacity} bytes written ({} in all)",
        model.len()
    );
}

/// Checks one `read_from` call: the bytes copied and the span reported.
fn check_read(ring: &RingBuffer, model: &[u8], offset: u64, max_len: usize) {
    let total = model.len() as u64;
    let oldest = total.saturating_sub(ring.capacity() as u64);
    let start = offset.clamp(oldest, total);
    let end = start.saturating_add(max_len as u64).min(total);

    let mut out = b"prefix".to_vec();
    let span = ring.read_from(offset, max_len, &mut out);

    assert_eq!(
        &out[..6],
        b"prefix",
        "read_from changed bytes already in out"
    );
    assert!(
        out[6..] == model[start as usize..end as usize],
        "read_from({offset}, {max_len}) copied the wrong bytes (total {total}, oldest {oldest})"
    );
    assert_eq!(
        span.start, start,
        "span.start for read_from({offset}, {max_len})"
    );
    assert_eq!(
        span.skipped,
        start.saturating_sub(offset),
        "span.skipped for read_from({offset}, {max_len})"
    );
    assert_eq!(span.end, end, "span.end for read_from({offset}, {max_len})");
}
