//! Live iteration over a capture: cursors into the ring buffers.
//!
//! The ring buffer stays the one copy of the data. Besides the bytes, the
//! capture keeps a [`ReadLog`] of when the reads of the two streams happened
//! and in which order. With it, a cursor over both streams interleaves them
//! as they were read, and every chunk carries the read time of its first byte.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::StreamKind;
use crate::ring::RingBuffer;

/// Most segments the read log keeps. Past this, the oldest segments are
/// forgotten: their bytes are still delivered, but a cursor over both streams
/// may then deliver them ahead of the other stream's bytes of the same period.
/// Reads of one stream within one flush interval share a segment, so only
/// very long captures of sparse, alternating output reach this.
pub const MAX_SEGMENTS: usize = 1 << 16;

/// Largest chunk handed out at once.
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

/// Pending bytes at which a cursor delivers at once, even when it delivered
/// less than one flush interval ago.
const BATCH_SIZE: u64 = 64 * 1024;

/// A run of bytes of one stream that were read one after another.
#[derive(Debug, Clone)]
struct Segment {
    stream: StreamKind,
    start: u64,
    end: u64,
    /// Unix time in microseconds when the segment's first byte was read.
    read_at_us: i64,
    read_at: Instant,
}

/// The order and time of the reads of both streams.
#[derive(Debug, Default)]
pub struct ReadLog {
    segments: VecDeque<Segment>,
    /// Sequence number of `segments[0]`; segments keep their number for life.
    first_sequence: u64,
}

impl ReadLog {
    /// Records that `stream`'s bytes `[start, end)` were just read, and drops
    /// segments whose bytes `rings` no longer retain.
    pub fn record(
        &mut self,
        stream: StreamKind,
        start: u64,
        end: u64,
        merge_window: Duration,
        rings: [&RingBuffer; 2],
    ) {
        let now = Instant::now();
        match self.segments.back_mut() {
            Some(last)
                if last.stream == stream
                    && last.end == start
                    && now.duration_since(last.read_at) < merge_window =>
            {
                last.end = end;
            }
            _ => self.segments.push_back(Segment {
                stream,
                start,
                end,
                read_at_us: unix_micros_now(),
                read_at: now,
            }),
        }

        while let Some(first) = self.segments.front() {
            let ring = rings[first.stream.index()];
            let overwritten = first.end <= ring.total_written() - ring.len() as u64;
            if !overwritten && self.segments.len() <= MAX_SEGMENTS {
                break;
            }
            self.segments.pop_front();
            self.first_sequence += 1;
        }
    }

    fn get(&self, sequence: u64) -> Option<&Segment> {
        let index = sequence.checked_sub(self.first_sequence)?;
        self.segments.get(usize::try_from(index).ok()?)
    }

    fn last_sequence(&self) -> u64 {
        self.first_sequence + self.segments.len() as u64
    }

    /// Looks up the read time of `stream`'s byte at `offset`, searching forward from
    /// `hint` (a sequence number that only grows for one cursor).
    fn read_time(&self, stream: StreamKind, offset: u64, hint: &mut u64) -> Option<(i64, Instant)> {
        let mut sequence = (*hint).max(self.first_sequence);
        while let Some(segment) = self.get(sequence) {
            if segment.stream == stream && segment.start <= offset && offset < segment.end {
                *hint = sequence;
                return Some((segment.read_at_us, segment.read_at));
            }
            sequence += 1;
        }
        None
    }
}

/// Bytes of one stream handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub stream: StreamKind,
    pub data: Vec<u8>,
    /// Position of `data[0]` in the stream (after ANSI stripping).
    pub offset: u64,
    /// Bytes this cursor lost just before this chunk, overwritten in the ring.
    pub skipped: u64,
    /// Unix time in microseconds when the first byte of `data` was read.
    pub timestamp_us: i64,
}

/// Streams a cursor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    One(StreamKind),
    Both,
}

/// Result of asking a cursor for the next chunk.
#[derive(Debug)]
pub enum Next {
    Chunk(Chunk),
    /// Bytes are pending but held back to batch them; ask again at this time.
    HoldUntil(Instant),
    /// Nothing pending.
    Empty,
}

/// A consumer's position in one or both streams.
#[derive(Debug)]
pub struct Cursor {
    selection: Selection,
    /// Next offset to deliver, per stream. Starting at 0 makes the first
    /// chunk report every byte overwritten before the cursor existed.
    offsets: [u64; 2],
    /// Next segment to deliver from, for a cursor over both streams.
    sequence: u64,
    /// Per stream, the segment where the last read-time lookup found its byte.
    time_hints: [u64; 2],
    last_delivery: Option<Instant>,
}

impl Cursor {
    pub fn new(selection: Selection) -> Self {
        Self {
            selection,
            offsets: [0; 2],
            sequence: 0,
            time_hints: [0; 2],
            last_delivery: None,
        }
    }

    /// Takes the next chunk out of `rings`, batching small amounts of data
    /// that arrive within `flush_interval` of the previous delivery unless
    /// `finished` (no more bytes will come).
    pub fn next(
        &mut self,
        log: &ReadLog,
        rings: [&RingBuffer; 2],
        flush_interval: Duration,
        finished: bool,
    ) -> Next {
        if !finished && !flush_interval.is_zero() {
            if let Some(last) = self.last_delivery {
                // An interval too long to add is never due.
                let due = last.checked_add(flush_interval);
                let held = due.is_none_or(|due| Instant::now() < due);
                if held && self.pending(rings) < BATCH_SIZE {
                    return if self.pending(rings) == 0 {
                        Next::Empty
                    } else {
                        // Waiters also wake when more bytes arrive, so an
                        // hour is as good as "never" here.
                        Next::HoldUntil(
                            due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
                        )
                    };
                }
            }
        }
        let chunk = match self.selection {
            Selection::One(stream) => self.next_of_stream(stream, log, rings[stream.index()]),
            Selection::Both => self.next_of_both(log, rings),
        };
        match chunk {
            Some(chunk) => {
                self.last_delivery = Some(Instant::now());
                Next::Chunk(chunk)
            }
            None => Next::Empty,
        }
    }

    /// Bytes written to the followed streams that this cursor has not delivered.
    fn pending(&self, rings: [&RingBuffer; 2]) -> u64 {
        let streams: &[StreamKind] = match &self.selection {
            Selection::One(stream) => std::slice::from_ref(stream),
            Selection::Both => &StreamKind::BOTH,
        };
        streams
            .iter()
            .map(|stream| rings[stream.index()].total_written() - self.offsets[stream.index()])
            .sum()
    }

    fn next_of_stream(
        &mut self,
        stream: StreamKind,
        log: &ReadLog,
        ring: &RingBuffer,
    ) -> Option<Chunk> {
        self.read(stream, log, ring, MAX_CHUNK_SIZE)
    }

    fn next_of_both(&mut self, log: &ReadLog, rings: [&RingBuffer; 2]) -> Option<Chunk> {
        self.sequence = self.sequence.max(log.first_sequence);
        while self.sequence < log.last_sequence() {
            let segment = log
                .get(self.sequence)
                .expect("sequence is within the log")
                .clone();
            let index = segment.stream.index();
            let is_last = self.sequence + 1 == log.last_sequence();
            let ring = rings[index];
            let oldest = ring.total_written() - ring.len() as u64;
            let start = self.offsets[index].max(oldest);
            if start >= segment.end {
                if is_last {
                    return None;
                }
                self.sequence += 1;
                continue;
            }
            let max_len = ((segment.end - start) as usize).min(MAX_CHUNK_SIZE);
            let chunk = self.read(segment.stream, log, ring, max_len);
            if self.offsets[index] >= segment.end && !is_last {
                self.sequence += 1;
            }
            return chunk;
        }
        None
    }

    fn read(
        &mut self,
        stream: StreamKind,
        log: &ReadLog,
        ring: &RingBuffer,
        max_len: usize,
    ) -> Option<Chunk> {
        let index = stream.index();
        let offset = self.offsets[index];
        let mut data = Vec::new();
        let span = ring.read_from(offset, max_len, &mut data);
        if data.is_empty() {
            return None;
        }
        self.offsets[index] = span.end;
        let timestamp_us = log
            .read_time(stream, span.start, &mut self.time_hints[index])
            .map(|(micros, _)| micros)
            .unwrap_or_else(unix_micros_now);
        Some(Chunk {
            stream,
            data,
            offset: span.start,
            skipped: span.skipped,
            timestamp_us,
        })
    }
}

fn unix_micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(log: &mut ReadLog, rings: [&RingBuffer; 2], stream: StreamKind, data: &[u8]) {
        let ring = rings[stream.index()];
        let start = ring.total_written();
        ring.write(data);
        log.record(
            stream,
            start,
            start + data.len() as u64,
            Duration::ZERO,
            rings,
        );
    }

    fn drain(cursor: &mut Cursor, log: &ReadLog, rings: [&RingBuffer; 2]) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        while let Next::Chunk(chunk) = cursor.next(log, rings, Duration::ZERO, true) {
            chunks.push(chunk);
        }
        chunks
    }

    #[test]
    fn both_interleaves_in_read_order() {
        let (out, err) = (RingBuffer::new(100).unwrap(), RingBuffer::new(100).unwrap());
        let rings = [&out, &err];
        let mut log = ReadLog::default();
        write(&mut log, rings, StreamKind::Stdout, b"a");
        write(&mut log, rings, StreamKind::Stderr, b"B");
        write(&mut log, rings, StreamKind::Stdout, b"c");
        let mut cursor = Cursor::new(Selection::Both);
        let chunks = drain(&mut cursor, &log, rings);
        let seen: Vec<(StreamKind, &[u8])> =
            chunks.iter().map(|c| (c.stream, &c.data[..])).collect();
        assert_eq!(
            seen,
            vec![
                (StreamKind::Stdout, &b"a"[..]),
                (StreamKind::Stderr, &b"B"[..]),
                (StreamKind::Stdout, &b"c"[..])
            ]
        );
        assert_eq!(chunks[2].offset, 1);
    }

    #[test]
    fn lagging_cursor_reports_exact_skipped_bytes() {
        let (out, err) = (RingBuffer::new(4).unwrap(), RingBuffer::new(4).unwrap());
        let rings = [&out, &err];
        let mut log = ReadLog::default();
        for piece in [&b"abc"[..], b"def", b"gh"] {
            write(&mut log, rings, StreamKind::Stdout, piece);
        }
        for selection in [Selection::Both, Selection::One(StreamKind::Stdout)] {
            let mut cursor = Cursor::new(selection);
            let chunks = drain(&mut cursor, &log, rings);
            let delivered: u64 = chunks.iter().map(|c| c.data.len() as u64 + c.skipped).sum();
            assert_eq!(delivered, 8);
            let data: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
            assert_eq!(data, b"efgh");
            assert_eq!(chunks[0].skipped, 4);
        }
    }

    #[test]
    fn two_cursors_each_see_every_byte() {
        let (out, err) = (RingBuffer::new(64).unwrap(), RingBuffer::new(64).unwrap());
        let rings = [&out, &err];
        let mut log = ReadLog::default();
        let mut first = Cursor::new(Selection::One(StreamKind::Stdout));
        let mut second = Cursor::new(Selection::One(StreamKind::Stdout));
        write(&mut log, rings, StreamKind::Stdout, b"one ");
        let early = drain(&mut first, &log, rings);
        write(&mut log, rings, StreamKind::Stdout, b"two");
        let late = drain(&mut first, &log, rings);
        let all = drain(&mut second, &log, rings);
        assert_eq!(early[0].data, b"one ");
        assert_eq!(late[0].data, b"two");
        assert_eq!(all[0].data, b"one two");
    }

    #[test]
    fn small_pending_data_is_held_within_flush_interval() {
        let (out, err) = (RingBuffer::new(64).unwrap(), RingBuffer::new(64).unwrap());
        let rings = [&out, &err];
        let mut log = ReadLog::default();
        let mut cursor = Cursor::new(Selection::One(StreamKind::Stdout));
        let interval = Duration::from_secs(10);
        write(&mut log, rings, StreamKind::Stdout, b"first");
        assert!(matches!(
            cursor.next(&log, rings, interval, false),
            Next::Chunk(_)
        ));
        write(&mut log, rings, StreamKind::Stdout, b"second");
        assert!(matches!(
            cursor.next(&log, rings, interval, false),
            Next::HoldUntil(_)
        ));
        assert!(matches!(
            cursor.next(&log, rings, interval, true),
            Next::Chunk(_)
        ));
    }
}
