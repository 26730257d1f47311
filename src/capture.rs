//! A capture of two output streams: one native reader thread per pipe, each
//! feeding its stream's ring buffer.
//!
//! Readers never wait on anything but their own pipe and the capture's wake-up
//! eventfd, so a child that fills one pipe while the other goes unread never
//! deadlocks, and a consumer that does not read never blocks the child.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::ansi::AnsiStripper;
use crate::compress;
use crate::config::CaptureConfig;
use crate::error::{Error, StreamKind};
use crate::output::ProcessOutput;
use crate::ring::RingBuffer;
use crate::stream::{Cursor, Next, ReadLog};

/// Bytes asked for per `read(2)`. Large enough to empty a default 64 KiB pipe
/// in one call and to keep per-read overhead small for fast writers.
pub const READ_BUFFER_SIZE: usize = 128 * 1024;

/// Most bytes a reader still drains from its pipe after a cancel, so that
/// output already written is kept even when a writer never stops.
const CANCEL_DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Maximum bytes that pile up in the rings before stream iterators are
/// woken, however recently they were woken before.
const WAKE_BATCH_SIZE: u64 = 1024 * 1024;

/// Stack for the reader threads: they keep their buffers on the heap.
const READER_STACK_SIZE: usize = 128 * 1024;

/// A file descriptor to read, and whether reads on it return `EAGAIN`
/// instead of blocking.
#[derive(Debug)]
pub struct Source {
    pub fd: OwnedFd,
    /// True only for descriptors whose open file description the capture owns
    /// alone (pipes it created): setting `O_NONBLOCK` on a shared one would
    /// change the caller's descriptor too.
    pub nonblocking: bool,
}

/// Counters of one capture, copied out at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub stdout_bytes_read: u64,
    pub stderr_bytes_read: u64,
    pub stdout_bytes_dropped: u64,
    pub stderr_bytes_dropped: u64,
    pub read_calls: u64,
    pub chunks_delivered: u64,
    pub ansi_bytes_removed: u64,
    /// Seconds spent compressing the most recent stored output.
    pub compression_seconds: f64,
    /// Uncompressed bytes divided by compressed bytes; `None` when not compressed.
    pub compression_ratio: Option<f64>,
}

/// The capture of up to two streams. All methods take `&self` and are safe to
/// call from any thread.
#[derive(Debug)]
pub struct Capture {
    shared: Arc<Shared>,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    config: CaptureConfig,
    streams: [StreamState; 2],
    /// Readable once the capture is cancelled; every poll in the readers
    /// includes it, so one write wakes them all. Each reader holds its own
    /// reference, and `close` drops this one, so the descriptor is released
    /// as soon as the capture is closed, not when the last handle goes.
    cancel_event: Mutex<Option<Arc<OwnedFd>>>,
    cancelled: AtomicBool,
    /// Order and time of the reads. Readers write a ring and record the read
    /// under this lock, so a cursor holding it finds both in step.
    log: Mutex<ReadLog>,
    state: Mutex<State>,
    /// Signalled when bytes arrive, a stream ends or the capture ends.
    changed: Condvar,
    read_calls: AtomicU64,
    chunks_delivered: AtomicU64,
    ansi_bytes_removed: AtomicU64,
}

#[derive(Debug)]
struct StreamState {
    ring: RingBuffer,
    bytes_read: AtomicU64,
}

#[derive(Debug)]
struct State {
    started: bool,
    closed: bool,
    /// Streams whose reader thread has not finished yet.
    open_streams: usize,
    /// Set by a process that owns this capture; it also decides the end time.
    owned_by_process: bool,
    exit_code: Option<i32>,
    started_at: SystemTime,
    started_instant: Instant,
    ended_after: Option<Duration>,
    /// Bumped on every change that a waiter may care about.
    generation: u64,
    last_wake: Option<Instant>,
    /// Bytes written to the rings since waiters were last woken.
    bytes_since_wake: u64,
    /// The first read error: the stream, the OS error code and the message.
    error: Option<(StreamKind, Option<i32>, String)>,
    compression_seconds: f64,
    compression_ratio: Option<f64>,
    /// The final output, kept once nothing can change it any more.
    final_output: Option<ProcessOutput>,
}

impl Capture {
    /// Creates a capture and reserves its two ring buffers.
    pub fn new(config: CaptureConfig) -> Result<Self, Error> {
        config.validate()?;
        let make_stream = || -> Result<StreamState, Error> {
            let ring = RingBuffer::new(config.max_buffer_size).map_err(|_| Error::OutOfMemory {
                bytes: config.max_buffer_size.saturating_mul(2),
            })?;
            Ok(StreamState {
                ring,
                bytes_read: AtomicU64::new(0),
            })
        };
        let streams = [make_stream()?, make_stream()?];
        let cancel_event =
            rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|errno| Error::io("eventfd", errno.into()))?;

        let shared = Shared {
            config,
            streams,
            cancel_event: Mutex::new(Some(Arc::new(cancel_event))),
            cancelled: AtomicBool::new(false),
            log: Mutex::new(ReadLog::default()),
            state: Mutex::new(State {
                started: false,
                closed: false,
                open_streams: 0,
                owned_by_process: false,
                exit_code: None,
                started_at: SystemTime::now(),
                started_instant: Instant::now(),
                ended_after: None,
                generation: 0,
                last_wake: None,
                bytes_since_wake: 0,
                error: None,
                compression_seconds: 0.0,
                compression_ratio: None,
                final_output: None,
            }),
            changed: Condvar::new(),
            read_calls: AtomicU64::new(0),
            chunks_delivered: AtomicU64::new(0),
            ansi_bytes_removed: AtomicU64::new(0),
        };
        Ok(Self {
            shared: Arc::new(shared),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Returns the configuration this capture copied when it was created.
    pub fn config(&self) -> &CaptureConfig {
        &self.shared.config
    }

    /// Starts one reader thread per given stream and returns at once.
    ///
    /// The capture takes ownership of each descriptor and closes it when its
    /// reader ends. A stream given as `None` counts as already at EOF.
    pub fn start(&self, stdout: Option<Source>, stderr: Option<Source>) -> Result<(), Error> {
        {
            let mut state = self.shared.lock_state();
            if state.closed {
                return Err(Error::Closed);
            }
            if state.started {
                return Err(Error::AlreadyStarted);
            }
            state.started = true;
            state.started_at = SystemTime::now();
            state.started_instant = Instant::now();
        }

        let cancel_event = self.cancel_event().ok_or(Error::Closed)?;
        let mut readers = lock(&self.readers);
        for (kind, source) in [(StreamKind::Stdout, stdout), (StreamKind::Stderr, stderr)] {
            let Some(source) = source else { continue };
            self.shared.lock_state().open_streams += 1;
            let shared = Arc::clone(&self.shared);
            let cancel_event = Arc::clone(&cancel_event);
            let spawned = std::thread::Builder::new()
                .name(format!("outcap-{}", kind.name()))
                .stack_size(READER_STACK_SIZE)
                .spawn(move || shared.read_stream(kind, source, &cancel_event));
            match spawned {
                Ok(handle) => readers.push(handle),
                Err(error) => {
                    self.shared.lock_state().open_streams -= 1;
                    drop(readers);
                    self.close();
                    return Err(Error::io("starting a reader thread", error));
                }
            }
        }
        if self.shared.lock_state().open_streams == 0 {
            self.shared.finish_if_done();
        }
        Ok(())
    }

    /// Marks this capture as owned by a process, which sets the exit code and
    /// the end time through [`Capture::set_ended`].
    pub(crate) fn set_owned_by_process(&self) {
        self.shared.lock_state().owned_by_process = true;
    }

    /// Records the exit code and ends the capture's clock.
    pub(crate) fn set_ended(&self, exit_code: Option<i32>) {
        let mut state = self.shared.lock_state();
        if state.ended_after.is_none() {
            state.exit_code = exit_code;
            state.ended_after = Some(state.started_instant.elapsed());
        }
        state.generation += 1;
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Blocks until every reader reached EOF or stopped after a cancel.
    ///
    /// Returns `Ok(false)` when `timeout` passed first. A read error on either
    /// stream is returned once the readers are done.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut state = self.shared.lock_state();
        while state.open_streams > 0 {
            state = match deadline {
                None => wait_condvar(&self.shared.changed, state),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(false);
                    }
                    wait_condvar_timeout(&self.shared.changed, state, deadline - now)
                }
            };
        }
        match state.read_error() {
            Some(error) => Err(error),
            None => Ok(true),
        }
    }

    /// Takes the next chunk for `cursor`. Returns the result and whether the
    /// capture had finished before looking (so `Next::Empty` is final), and
    /// the read error to raise once a finished cursor is empty.
    pub fn next_chunk(&self, cursor: &mut Cursor) -> Result<(Next, bool), Error> {
        let finished = self.is_finished();
        let next = {
            let log = lock(&self.shared.log);
            let [stdout, stderr] = &self.shared.streams;
            cursor.next(
                &log,
                [&stdout.ring, &stderr.ring],
                self.shared.config.flush_interval,
                finished,
            )
        };
        if matches!(next, Next::Chunk(_)) {
            self.shared.chunks_delivered.fetch_add(1, Ordering::Relaxed);
        }
        if finished && matches!(next, Next::Empty) {
            if let Some(error) = self.shared.lock_state().read_error() {
                return Err(error);
            }
        }
        Ok((next, finished))
    }

    /// True once every reader has finished.
    pub fn is_finished(&self) -> bool {
        self.shared.lock_state().open_streams == 0
    }

    /// Stops reading. Readers drain what their pipe already contains (up to a
    /// bound) and exit. Everything read so far stays available.
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Cancels and joins the reader threads. The capture stays open: its
    /// output and stream iterators remain usable.
    pub fn stop(&self) {
        self.shared.cancel();
        let handles = std::mem::take(&mut *lock(&self.readers));
        for handle in handles {
            // A reader that panicked has already recorded nothing more to do;
            // its ring stays consistent (see `RingBuffer::lock`).
            let _ = handle.join();
        }
    }

    /// Stops the readers and releases every descriptor. Safe to call more
    /// than once.
    pub fn close(&self) {
        self.stop();
        lock(&self.shared.cancel_event).take();
        let mut state = self.shared.lock_state();
        state.closed = true;
        state.generation += 1;
        drop(state);
        self.shared.changed.notify_all();
    }

    /// True once [`Capture::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock_state().closed
    }

    /// Returns the current change counter, to pass to [`Capture::wait_for_change`].
    pub fn generation(&self) -> u64 {
        self.shared.lock_state().generation
    }

    /// Blocks until the change counter moves past `seen` or `timeout` passes,
    /// and returns the counter.
    pub fn wait_for_change(&self, seen: u64, timeout: Duration) -> u64 {
        let state = self.shared.lock_state();
        if state.generation != seen {
            return state.generation;
        }
        wait_condvar_timeout(&self.shared.changed, state, timeout).generation
    }

    /// Returns the output retained so far, compressed when the configuration
    /// enables it and it exceeds the threshold.
    ///
    /// Once the capture has ended for good the result is computed once and kept.
    pub fn output(&self) -> ProcessOutput {
        let (is_final, started_at, duration, exit_code) = {
            let state = self.shared.lock_state();
            if let Some(output) = &state.final_output {
                return output.clone();
            }
            let readers_done = state.started && state.open_streams == 0;
            let ended = if state.owned_by_process {
                state.ended_after.filter(|_| readers_done)
            } else if readers_done {
                state.ended_after
            } else {
                None
            };
            let duration = ended.unwrap_or_else(|| {
                if state.started {
                    state.started_instant.elapsed()
                } else {
                    Duration::ZERO
                }
            });
            (ended.is_some(), state.started_at, duration, state.exit_code)
        };

        let [stdout_state, stderr_state] = &self.shared.streams;
        let mut stdout = stdout_state.ring.snapshot();
        let mut stderr = stderr_state.ring.snapshot();
        let truncated = stdout_state.ring.overwritten() > 0 || stderr_state.ring.overwritten() > 0;

        let config = &self.shared.config;
        let retained = (stdout.len() + stderr.len()) as u64;
        let compressed = config.compression_enabled && retained > config.compression_threshold;
        if compressed {
            let began = Instant::now();
            (stdout, stderr) = compress_pair(&stdout, &stderr);
            let seconds = began.elapsed().as_secs_f64();
            let stored = (stdout.len() + stderr.len()).max(1) as f64;
            let mut state = self.shared.lock_state();
            state.compression_seconds = seconds;
            state.compression_ratio = Some(retained as f64 / stored);
        }

        let started_us = system_time_micros(started_at);
        let duration_us = duration.as_micros() as i64;
        let output = ProcessOutput {
            stdout,
            stderr,
            exit_code,
            duration_us,
            stdout_size: stdout_state.bytes_read.load(Ordering::Acquire),
            stderr_size: stderr_state.bytes_read.load(Ordering::Acquire),
            truncated,
            compressed,
            capture_started_us: started_us,
            capture_ended_us: started_us + duration_us,
            streaming: config.streaming_enabled,
            stream_channel: None,
        };
        if is_final {
            self.shared.lock_state().final_output = Some(output.clone());
        }
        output
    }

    /// Returns the capture's counters at this moment.
    pub fn stats(&self) -> Stats {
        let shared = &self.shared;
        let state = shared.lock_state();
        let [stdout, stderr] = &shared.streams;
        Stats {
            stdout_bytes_read: stdout.bytes_read.load(Ordering::Acquire),
            stderr_bytes_read: stderr.bytes_read.load(Ordering::Acquire),
            stdout_bytes_dropped: stdout.ring.overwritten(),
            stderr_bytes_dropped: stderr.ring.overwritten(),
            read_calls: shared.read_calls.load(Ordering::Relaxed),
            chunks_delivered: shared.chunks_delivered.load(Ordering::Relaxed),
            ansi_bytes_removed: shared.ansi_bytes_removed.load(Ordering::Relaxed),
            compression_seconds: state.compression_seconds,
            compression_ratio: state.compression_ratio,
        }
    }

    /// The cancel eventfd, for other waits (such as the stdin feeder) that
    /// must stop when the capture does; `None` once the capture is closed.
    pub(crate) fn cancel_event(&self) -> Option<Arc<OwnedFd>> {
        lock(&self.shared.cancel_event).clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.close();
    }
}

impl State {
    fn read_error(&self) -> Option<Error> {
        let (stream, code, message) = self.error.as_ref()?;
        let source = match code {
            Some(code) => io::Error::from_raw_os_error(*code),
            None => io::Error::other(message.clone()),
        };
        Some(Error::Read {
            stream: *stream,
            source,
        })
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        // The eventfd counter only grows, so it stays readable for every poller.
        if let Some(cancel_event) = lock(&self.cancel_event).as_ref() {
            if let Err(errno) = rustix::io::write(cancel_event, &1u64.to_ne_bytes()) {
                debug_assert!(false, "writing the cancel eventfd failed: {errno}");
            }
        }
    }

    /// Runs a reader thread: reads `source` until EOF or cancel, then ends the stream.
    fn read_stream(&self, kind: StreamKind, source: Source, cancel_event: &OwnedFd) {
        // A panic must still end the stream below, or `wait` would block forever.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.read_until_eof(kind, &source, cancel_event)
        }))
        .unwrap_or_else(|payload| {
            Err(io::Error::other(format!(
                "the reader thread failed: {}",
                crate::error::panic_message(payload.as_ref())
            )))
        });
        drop(source);

        let mut state = self.lock_state();
        if let Err(error) = result {
            state
                .error
                .get_or_insert((kind, error.raw_os_error(), error.to_string()));
        }
        state.open_streams -= 1;
        drop(state);
        self.finish_if_done();
    }

    fn read_until_eof(
        &self,
        kind: StreamKind,
        source: &Source,
        cancel_event: &OwnedFd,
    ) -> io::Result<()> {
        let stream = &self.streams[kind.index()];
        let mut buffer = vec![0u8; READ_BUFFER_SIZE];
        let mut stripped = Vec::with_capacity(if self.config.process_ansi {
            READ_BUFFER_SIZE
        } else {
            0
        });
        let mut stripper = AnsiStripper::new();
        let mut must_poll = !source.nonblocking;
        let mut drain_budget: Option<u64> = None;

        loop {
            if must_poll {
                match drain_budget {
                    Some(_) => {
                        if !poll_readable(source, cancel_event, Some(Duration::ZERO))? {
                            break;
                        }
                    }
                    None => {
                        if !poll_readable(source, cancel_event, None)? {
                            drain_budget = Some(CANCEL_DRAIN_LIMIT);
                            continue;
                        }
                    }
                }
            }

            let count = match rustix::io::read(&source.fd, &mut buffer[..]) {
                Ok(0) => break,
                Ok(count) => count,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    must_poll = true;
                    continue;
                }
                Err(errno) => return Err(errno.into()),
            };
            must_poll = !source.nonblocking;
            self.read_calls.fetch_add(1, Ordering::Relaxed);

            let read = &buffer[..count];
            // Most reads hold no escape at all; they go to the ring as read,
            // without the copy through the stripper.
            let plain = !stripper.in_sequence() && memchr::memchr(0x1b, read).is_none();
            let data = if self.config.process_ansi && !plain {
                stripped.clear();
                stripper.strip_into(&buffer[..count], &mut stripped);
                let removed = (count - stripped.len()) as u64;
                if removed > 0 {
                    self.ansi_bytes_removed
                        .fetch_add(removed, Ordering::Relaxed);
                }
                &stripped[..]
            } else {
                read
            };
            if !data.is_empty() {
                let mut log = lock(&self.log);
                let start = stream.ring.total_written();
                stream.ring.write(data);
                let [stdout, stderr] = &self.streams;
                let merge_window = self.config.flush_interval.max(Duration::from_millis(1));
                log.record(
                    kind,
                    start,
                    start + data.len() as u64,
                    merge_window,
                    [&stdout.ring, &stderr.ring],
                );
            }
            stream.bytes_read.fetch_add(count as u64, Ordering::Release);
            self.wake_waiters(data.len() as u64);

            if let Some(budget) = drain_budget.as_mut() {
                *budget = budget.saturating_sub(count as u64);
                if *budget == 0 {
                    break;
                }
                must_poll = true;
            } else if self.cancelled.load(Ordering::Acquire) {
                drain_budget = Some(CANCEL_DRAIN_LIMIT);
                must_poll = true;
            }
        }
        stripper.finish();
        Ok(())
    }

    /// Wakes stream iterators after `written` more bytes: at once when the
    /// last wake-up is a flush interval old, else only once a batch of bytes
    /// has piled up. Waiters also wake on their own after one flush interval,
    /// so no byte waits longer than that, and the batch bound (a quarter of
    /// the ring at most) wakes them well before fast output overwrites what
    /// they have not read.
    fn wake_waiters(&self, written: u64) {
        let interval = self.config.flush_interval;
        let batch = (self.config.max_buffer_size as u64 / 4).clamp(1, WAKE_BATCH_SIZE);
        let mut state = self.lock_state();
        state.generation += 1;
        state.bytes_since_wake += written;
        let now = Instant::now();
        let due = match state.last_wake {
            Some(last) => now.duration_since(last) >= interval || state.bytes_since_wake >= batch,
            None => true,
        };
        if due {
            state.last_wake = Some(now);
            state.bytes_since_wake = 0;
            drop(state);
            self.changed.notify_all();
        }
    }

    /// Ends a raw capture's clock when its last reader finishes, and wakes
    /// every waiter.
    fn finish_if_done(&self) {
        let mut state = self.lock_state();
        if state.open_streams == 0 && !state.owned_by_process && state.ended_after.is_none() {
            state.ended_after = Some(state.started_instant.elapsed());
        }
        state.generation += 1;
        drop(state);
        self.changed.notify_all();
    }
}

/// Waits until `source` is readable (true) or the capture is cancelled
/// (false). With a zero timeout, only checks whether it is readable now.
fn poll_readable(
    source: &Source,
    cancel_event: &OwnedFd,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let timespec = timeout.map(|timeout| Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    });
    loop {
        let mut fds = [
            PollFd::new(&source.fd, PollFlags::IN),
            PollFd::new(cancel_event, PollFlags::IN),
        ];
        let polled = if timeout.is_some() {
            poll(&mut fds[..1], timespec.as_ref())
        } else {
            poll(&mut fds, None)
        };
        match polled {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
        // POLLHUP and POLLERR also mean a read will not block: it returns
        // EOF or the error.
        if !fds[0].revents().is_empty() {
            return Ok(true);
        }
        return Ok(false);
    }
}

/// Compresses both streams, in parallel when both are large enough for a
/// thread to pay off. An empty stream stays empty.
fn compress_pair(stdout: &[u8], stderr: &[u8]) -> (Vec<u8>, Vec<u8>) {
    const PARALLEL_MIN_BYTES: usize = 256 * 1024;
    let compress_one = |data: &[u8]| {
        if data.is_empty() {
            Vec::new()
        } else {
            compress::gzip(data, compress::DEFAULT_LEVEL)
        }
    };
    if stdout.len().min(stderr.len()) >= PARALLEL_MIN_BYTES {
        std::thread::scope(|scope| {
            let stderr_job = scope.spawn(|| compress_one(stderr));
            let stdout = compress_one(stdout);
            let stderr = stderr_job
                .join()
                .expect("gzip of a byte slice does not panic");
            (stdout, stderr)
        })
    } else {
        (compress_one(stdout), compress_one(stderr))
    }
}

fn system_time_micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_micros() as i64,
        Err(before) => -(before.duration().as_micros() as i64),
    }
}

/// Locks a mutex, keeping the data when a panicking thread poisoned it: every
/// critical section here leaves the data consistent before it can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wait_condvar<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wait_condvar_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
