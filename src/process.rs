//! Spawning a command in its own process group with both output streams
//! captured, feeding its stdin, waiting for it and signalling its group.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitOptions, WaitStatus};

use crate::capture::{Capture, Source};
use crate::config::CaptureConfig;
use crate::error::Error;
use crate::spawn::{spawn, ChildStdio};

/// Pipe size asked for on the output pipes the capture creates. A larger
/// pipe lets a fast writer run ahead of the reader thread with fewer context
/// switches; the kernel may grant less, which is fine.
const OUTPUT_PIPE_SIZE: usize = 1024 * 1024;

/// How long the capture keeps reading after the child exits, for output that
/// a background grandchild still holding the pipes writes. Bytes already in
/// the pipes are kept even when the grace runs out.
pub const DEFAULT_EOF_GRACE: Duration = Duration::from_millis(100);

/// Source of the child's stdin.
#[derive(Debug, Default)]
pub enum Stdin {
    /// `/dev/null`, so a captured command never waits on a terminal.
    #[default]
    Null,
    /// These bytes, written by a feeder thread, then EOF.
    Bytes(Vec<u8>),
    /// A descriptor the child inherits (a duplicate of the caller's).
    Fd(OwnedFd),
}

/// A command to run.
#[derive(Debug, Default)]
pub struct CommandSpec {
    pub program: OsString,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// The child's whole environment; `None` inherits this process's.
    pub env: Option<Vec<(OsString, OsString)>>,
    pub stdin: Stdin,
}

/// A running (or finished) child process whose output is being captured.
///
/// All methods take `&self`, so one thread may wait while another signals.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    /// Lets a wait sleep in `poll(2)` until the child exits; `None` on
    /// kernels without `pidfd_open` (before Linux 5.3), which fall back to
    /// sleeping in short steps.
    pidfd: Mutex<Option<OwnedFd>>,
    /// Reaping happens under this lock, and signals are sent under it too, so
    /// a signal never reaches a recycled process ID.
    child: Mutex<ChildState>,
    capture: Arc<Capture>,
    stdin_feeder: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct ChildState {
    pid: Pid,
    /// The exit code once the child was reaped (see [`exit_code`]).
    status: Option<i32>,
    /// When this process first saw the child's exit status.
    exited_at: Option<Instant>,
}

impl ChildState {
    /// Reaps the child if it has exited; with `block`, waits until it does.
    fn poll_status(&mut self, block: bool) -> io::Result<Option<i32>> {
        if self.status.is_none() {
            let options = if block {
                WaitOptions::empty()
            } else {
                WaitOptions::NOHANG
            };
            let reaped = loop {
                match rustix::process::waitpid(Some(self.pid), options) {
                    Err(Errno::INTR) => continue,
                    other => break other?,
                }
            };
            if let Some((_, status)) = reaped {
                self.status = Some(exit_code(status));
                self.exited_at = Some(Instant::now());
            }
        }
        Ok(self.status)
    }
}

impl Process {
    /// Starts `spec` in a new process group with stdout and stderr captured
    /// under `config`.
    pub fn spawn(spec: CommandSpec, config: CaptureConfig) -> Result<Self, Error> {
        let capture = Arc::new(Capture::new(config)?);
        let (stdout_read, stdout_write) = output_pipe()?;
        let (stderr_read, stderr_write) = output_pipe()?;

        let (stdin_read, stdin_write, input) = match spec.stdin {
            Stdin::Null => (None, None, None),
            Stdin::Bytes(bytes) => {
                let (read_end, write_end) = pipe_with(PipeFlags::CLOEXEC)
                    .map_err(|errno| Error::io("pipe", errno.into()))?;
                (Some(read_end), Some(write_end), Some(bytes))
            }
            Stdin::Fd(fd) => (Some(fd), None, None),
        };

        capture.set_owned_by_process();
        capture.start(
            Some(Source {
                fd: stdout_read,
                nonblocking: true,
            }),
            Some(Source {
                fd: stderr_read,
                nonblocking: true,
            }),
        )?;
        let stdio = ChildStdio {
            stdin: stdin_read.as_ref().map(AsFd::as_fd),
            stdout: stdout_write.as_fd(),
            stderr: stderr_write.as_fd(),
        };
        let spawned = spawn(
            &spec.program,
            &spec.args,
            spec.cwd.as_deref(),
            spec.env.as_deref(),
            &stdio,
        );
        // Closing this process's copies of the child's ends lets the readers
        // see EOF once the child's side closes.
        drop(stdio);
        drop(stdin_read);
        drop(stdout_write);
        drop(stderr_write);
        let pid = match spawned {
            Ok(pid) => Pid::from_raw(pid).expect("posix_spawn returns a positive process ID"),
            Err(source) => {
                capture.set_ended(None);
                capture.close();
                return Err(Error::Spawn {
                    program: spec.program,
                    source,
                });
            }
        };

        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok();
        let process = Self {
            pid: pid.as_raw_nonzero().get() as u32,
            pidfd: Mutex::new(pidfd),
            child: Mutex::new(ChildState {
                pid,
                status: None,
                exited_at: None,
            }),
            capture,
            stdin_feeder: Mutex::new(None),
        };
        if let (Some(bytes), Some(stdin)) = (input, stdin_write) {
            // On failure, dropping `process` kills and reaps the child.
            let feeder = start_stdin_feeder(stdin, bytes, &process.capture)?;
            *lock(&process.stdin_feeder) = Some(feeder);
        }
        Ok(process)
    }

    /// Returns the child's process ID, which is also its process group ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Returns the capture of the child's stdout and stderr.
    pub fn capture(&self) -> &Arc<Capture> {
        &self.capture
    }

    /// Returns the exit code if the child has exited (reaping it), without blocking.
    pub fn try_wait(&self) -> io::Result<Option<i32>> {
        self.lock_child().poll_status(false)
    }

    /// Returns how long ago the child was seen to exit, checking without blocking.
    pub fn exited_for(&self) -> io::Result<Option<Duration>> {
        let mut child = self.lock_child();
        child.poll_status(false)?;
        Ok(child.exited_at.map(|exited_at| exited_at.elapsed()))
    }

    /// Waits up to `timeout` for the child to exit and returns its exit
    /// code, or `None` if it is still running.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let remaining = deadline - now;
            let pidfd = lock(&self.pidfd);
            match pidfd.as_ref() {
                Some(pidfd) => {
                    let timespec = Timespec {
                        tv_sec: remaining.as_secs() as _,
                        tv_nsec: remaining.subsec_nanos() as _,
                    };
                    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
                    match poll(&mut fds, Some(&timespec)) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(errno) => return Err(errno.into()),
                    }
                }
                None => std::thread::sleep(remaining.min(Duration::from_millis(2))),
            }
        }
    }

    /// Sends `signal` to the child's whole process group, unless the child
    /// was already reaped. Returns whether the signal was sent.
    ///
    /// After reaping, the group ID may belong to an unrelated new group, so
    /// signalling it could hit the wrong processes.
    ///
    /// A child that has exited but is not reaped yet (a zombie) still
    /// reserves the group ID, so this also reaches group members that
    /// outlive the child, such as a background job that ignores SIGTERM.
    pub fn signal_group(&self, signal: Signal) -> io::Result<bool> {
        let child = self.lock_child();
        if child.status.is_some() {
            return Ok(false);
        }
        match rustix::process::kill_process_group(child.pid, signal) {
            Ok(()) => Ok(true),
            Err(Errno::SRCH) => Ok(false),
            Err(errno) => Err(errno.into()),
        }
    }

    /// Waits up to `timeout` for the child to exit without reaping it, so
    /// that its process group ID stays reserved for [`Process::signal_group`].
    /// Returns whether it exited.
    pub fn wait_exited(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.lock_child();
            if child.status.is_some() {
                return Ok(true);
            }
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
            match rustix::process::waitid(WaitId::Pid(child.pid), options) {
                Ok(Some(_)) => return Ok(true),
                Ok(None) | Err(Errno::INTR) => {}
                Err(errno) => return Err(errno.into()),
            }
            drop(child);
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }

    /// Ends the capture once the child has exited: waits up to `eof_grace`
    /// for both pipes to reach EOF (a background grandchild may still hold
    /// them open), then cancels the readers, joins every thread and records
    /// the exit status. Returns whether both pipes reached EOF in time.
    pub fn finish(&self, eof_grace: Duration) -> Result<bool, Error> {
        let status = self.lock_child().status;
        let reached_eof = self.capture.wait(Some(eof_grace));
        // Stop rather than close: the caller may still iterate over the
        // retained output; closing is the owner's last step.
        self.capture.stop();
        if let Some(feeder) = lock(&self.stdin_feeder).take() {
            let _ = feeder.join();
        }
        self.capture.set_ended(status);
        if status.is_some() {
            // Reaped: nothing is left to wait for, so release the descriptor now.
            lock(&self.pidfd).take();
        }
        reached_eof
    }
}

impl Drop for Process {
    /// Kills a child still running and reaps it, so neither a process nor a
    /// zombie outlives its handle; then stops the capture's threads.
    fn drop(&mut self) {
        let running = self
            .try_wait()
            .map(|status| status.is_none())
            .unwrap_or(false);
        if running {
            let _ = self.signal_group(Signal::KILL);
            let _ = self.lock_child().poll_status(true);
        }
        self.capture.close();
        if let Some(feeder) = lock(&self.stdin_feeder).take() {
            let _ = feeder.join();
        }
    }
}

impl Process {
    fn lock_child(&self) -> MutexGuard<'_, ChildState> {
        lock(&self.child)
    }
}

/// Converts a wait status to the exit code `subprocess` reports: the status, or `-N` for signal N.
pub fn exit_code(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => -signal,
        (None, None) => -1,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Creates a pipe for one output stream: a non-blocking read end that only
/// the capture holds, and a write end for the child.
fn output_pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let (read_end, write_end) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|errno| Error::io("pipe", errno.into()))?;
    set_nonblocking(&read_end).map_err(|error| Error::io("fcntl(O_NONBLOCK)", error))?;
    // NOTE: an unprivileged process may be refused a size above
    // /proc/sys/fs/pipe-max-size (1 MiB by default); the default pipe then
    // stays, which only costs speed.
    let _ = rustix::pipe::fcntl_setpipe_size(&read_end, OUTPUT_PIPE_SIZE);
    Ok((read_end, write_end))
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = fcntl_getfl(fd)?;
    fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}

/// Writes `input` to the child's stdin on a thread of its own, then closes it.
///
/// The child may never read its stdin, or exit early: `EPIPE` ends the feeder
/// quietly (this process ignores SIGPIPE, as Rust and Python both set up), and
/// a cancelled capture stops it while it waits for room in the pipe.
fn start_stdin_feeder(
    stdin: OwnedFd,
    input: Vec<u8>,
    capture: &Arc<Capture>,
) -> Result<JoinHandle<()>, Error> {
    set_nonblocking(&stdin).map_err(|error| Error::io("fcntl(O_NONBLOCK)", error))?;
    let cancel_event = capture.cancel_event().ok_or(Error::Closed)?;
    std::thread::Builder::new()
        .name("outcap-stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || feed_stdin(&stdin, &input, &cancel_event))
        .map_err(|error| Error::io("starting the stdin feeder thread", error))
}

fn feed_stdin(stdin: &OwnedFd, mut input: &[u8], cancel_event: &OwnedFd) {
    while !input.is_empty() {
        match rustix::io::write(stdin, input) {
            Ok(written) => input = &input[written..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [
                    PollFd::new(stdin, PollFlags::OUT),
                    PollFd::new(cancel_event, PollFlags::IN),
                ];
                match poll(&mut fds, None) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(_) => return,
                }
                if !fds[1].revents().is_empty() {
                    return;
                }
            }
            // EPIPE: the child closed its stdin; any other error also means
            // no more input can reach it.
            Err(_) => return,
        }
    }
}
