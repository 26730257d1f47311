//! Spawning a command in its own process group with both output streams
//! captured, feeding its stdin, waiting for it and signalling its group.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{Pid, Signal};

use crate::capture::{Capture, Source};
use crate::config::CaptureConfig;
use crate::error::Error;

/// Pipe size asked for on the output pipes the capture creates. A larger
/// pipe lets a fast writer run ahead of the reader thread with fewer context
/// switches; the kernel may grant less, which is fine.
const OUTPUT_PIPE_SIZE: usize = 1024 * 1024;

/// How long the capture keeps reading after the child exits, for output that
/// a background grandchild still holding the pipes writes. Bytes already in
/// the pipes are kept even when the grace runs out.
pub const DEFAULT_EOF_GRACE: Duration = Duration::from_millis(100);

/// What the child reads on stdin.
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
    pidfd: Option<OwnedFd>,
    /// Reaping happens under this lock, and signals are sent under it too, so
    /// a signal never reaches a recycled process ID.
    child: Mutex<ChildState>,
    capture: Arc<Capture>,
    stdin_feeder: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct ChildState {
    child: Child,
    status: Option<ExitStatus>,
    /// When this process first saw the child's exit status.
    exited_at: Option<Instant>,
}

impl ChildState {
    fn poll_status(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
            if self.status.is_some() {
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

        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .stdout(Stdio::from(stdout_write))
            .stderr(Stdio::from(stderr_write))
            .process_group(0);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        if let Some(env) = &spec.env {
            command.env_clear().envs(env.iter().map(|(key, value)| (key, value)));
        }
        let input = match spec.stdin {
            Stdin::Null => {
                command.stdin(Stdio::null());
                None
            }
            Stdin::Bytes(bytes) => {
                command.stdin(Stdio::piped());
                Some(bytes)
            }
            Stdin::Fd(fd) => {
                command.stdin(Stdio::from(fd));
                None
            }
        };
        // SAFETY: the closure runs in the forked child before exec and only
        // calls sigaction and sigprocmask, which are async-signal-safe.
        unsafe {
            command.pre_exec(reset_signal_dispositions);
        }

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
        let spawned = command.spawn();
        // Dropping the command closes this process's copies of the write
        // ends, so the readers see EOF once the child's side closes.
        drop(command);
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                capture.set_ended(None);
                capture.close();
                return Err(Error::Spawn {
                    program: spec.program,
                    source,
                });
            }
        };

        let pid = child.id();
        let pidfd = Pid::from_raw(pid as i32)
            .and_then(|pid| rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok());
        let stdin_feeder = match (input, child.stdin.take()) {
            (Some(bytes), Some(stdin)) => Some(start_stdin_feeder(OwnedFd::from(stdin), bytes, &capture)?),
            _ => None,
        };

        Ok(Self {
            pid,
            pidfd,
            child: Mutex::new(ChildState {
                child,
                status: None,
                exited_at: None,
            }),
            capture,
            stdin_feeder: Mutex::new(stdin_feeder),
        })
    }

    /// The child's process ID, which is also its process group ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The capture of the child's stdout and stderr.
    pub fn capture(&self) -> &Arc<Capture> {
        &self.capture
    }

    /// The exit status if the child has exited (reaping it), without blocking.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        self.lock_child().poll_status()
    }

    /// How long ago the child was seen to exit, checking without blocking.
    pub fn exited_for(&self) -> io::Result<Option<Duration>> {
        let mut child = self.lock_child();
        child.poll_status()?;
        Ok(child.exited_at.map(|exited_at| exited_at.elapsed()))
    }

    /// Waits up to `timeout` for the child to exit and returns its status, or
    /// `None` if it is still running.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
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
            match &self.pidfd {
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
    pub fn signal_group(&self, signal: Signal) -> io::Result<bool> {
        let mut child = self.lock_child();
        if child.poll_status()?.is_some() {
            return Ok(false);
        }
        let pid = Pid::from_raw(self.pid as i32).expect("a child's process ID is positive");
        match rustix::process::kill_process_group(pid, signal) {
            Ok(()) => Ok(true),
            // The group may be gone between the check and the call only if
            // the leader is a zombie with no other members; nothing to signal.
            Err(Errno::SRCH) => Ok(false),
            Err(errno) => Err(errno.into()),
        }
    }

    /// Ends the capture once the child has exited: waits up to `eof_grace`
    /// for both pipes to reach EOF (a background grandchild may still hold
    /// them open), then cancels the readers, joins every thread and records
    /// the exit status. Returns whether both pipes reached EOF in time.
    pub fn finish(&self, eof_grace: Duration) -> Result<bool, Error> {
        let status = self.lock_child().status;
        let reached_eof = self.capture.wait(Some(eof_grace));
        self.capture.close();
        if let Some(feeder) = lock(&self.stdin_feeder).take() {
            let _ = feeder.join();
        }
        self.capture.set_ended(status.map(exit_code));
        reached_eof
    }
}

impl Drop for Process {
    /// Kills a child still running and reaps it, so neither a process nor a
    /// zombie outlives its handle; then stops the capture's threads.
    fn drop(&mut self) {
        let running = self.try_wait().map(|status| status.is_none()).unwrap_or(false);
        if running {
            let _ = self.signal_group(Signal::KILL);
            let mut child = self.lock_child();
            if let Ok(status) = child.child.wait() {
                child.status = Some(status);
                child.exited_at = Some(Instant::now());
            }
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

/// The exit code as `subprocess` reports it: the status, or `-N` for signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => -signal,
        (None, None) => -1,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// Resets every catchable signal to its default action and unblocks all
/// signals, so the child does not inherit this process's ignored signals
/// (Python ignores SIGPIPE and SIGXFSZ, for one).
fn reset_signal_dispositions() -> io::Result<()> {
    // SAFETY: sigemptyset, sigaction and sigprocmask are async-signal-safe
    // and given valid pointers to stack values.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        for signal in 1..libc::SIGRTMIN() {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    Ok(())
}

/// Writes `input` to the child's stdin on a thread of its own, then closes it.
///
/// The child may never read its stdin, or exit early: `EPIPE` ends the feeder
/// quietly (this process ignores SIGPIPE, as Rust and Python both set up), and
/// a cancelled capture stops it while it waits for room in the pipe.
fn start_stdin_feeder(stdin: OwnedFd, input: Vec<u8>, capture: &Arc<Capture>) -> Result<JoinHandle<()>, Error> {
    set_nonblocking(&stdin).map_err(|error| Error::io("fcntl(O_NONBLOCK)", error))?;
    let capture = Arc::clone(capture);
    std::thread::Builder::new()
        .name("outcap-stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || feed_stdin(&stdin, &input, &capture))
        .map_err(|error| Error::io("starting the stdin feeder thread", error))
}

fn feed_stdin(stdin: &OwnedFd, mut input: &[u8], capture: &Capture) {
    while !input.is_empty() {
        match rustix::io::write(stdin, input) {
            Ok(written) => input = &input[written..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [
                    PollFd::new(stdin, PollFlags::OUT),
                    PollFd::from_borrowed_fd(capture.cancel_event(), PollFlags::IN),
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
