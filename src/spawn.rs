//! Starting a child with `posix_spawn(3)`.
//!
//! glibc implements `posix_spawn` with `clone(CLONE_VM | CLONE_VFORK)`, so
//! starting a child costs the same however much memory this process maps,
//! where `fork` copies the page tables (milliseconds for a large Python
//! process). `std::process::Command` takes that path too, but it resets only
//! SIGPIPE to its default action. A captured command should start with every
//! signal at its default action, because Python ignores SIGXFSZ and a shell
//! run under `nohup` ignores SIGHUP. So outcap sets the spawn attributes itself.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Descriptors the child gets as its stdin, stdout and stderr.
#[derive(Debug)]
pub struct ChildStdio<'a> {
    /// `None` opens `/dev/null`.
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

/// Starts `program` with `args` in a new process group whose ID is the
/// child's PID, with every signal at its default action and none blocked.
///
/// A `program` without a slash is searched in the `PATH` of `env` when given,
/// else of this process. Errors from the search and from `exec` itself
/// (`ENOENT`, `EACCES`, `ENOEXEC`) are returned here.
pub fn spawn(
    program: &OsStr,
    args: &[OsString],
    cwd: Option<&Path>,
    env: Option<&[(OsString, OsString)]>,
    stdio: &ChildStdio<'_>,
) -> io::Result<libc::pid_t> {
    let executable = resolve_program(program, env, cwd)?;
    let executable = c_string(executable.as_os_str())?;
    let mut argv_storage = vec![c_string(program)?];
    for arg in args {
        argv_storage.push(c_string(arg)?);
    }
    let argv = null_terminated(&argv_storage);
    let env_storage = match env {
        Some(pairs) => pairs
            .iter()
            .map(|(key, value)| {
                let mut entry = key.clone();
                entry.push("=");
                entry.push(value);
                c_string(&entry)
            })
            .collect::<io::Result<Vec<_>>>()?,
        None => std::env::vars_os()
            .map(|(key, value)| {
                let mut entry = key;
                entry.push("=");
                entry.push(value);
                c_string(&entry)
            })
            .collect::<io::Result<Vec<_>>>()?,
    };
    let envp = null_terminated(&env_storage);
    let cwd = cwd.map(|cwd| c_string(cwd.as_os_str())).transpose()?;

    // dup2 onto 0, 1 or 2 keeps FD_CLOEXEC when source and target are the
    // same number, which would close the descriptor at exec; move any
    // descriptor that low out of the way first.
    let stdin = stdio.stdin.map(above_stdio).transpose()?;
    let stdout = above_stdio(stdio.stdout)?;
    let stderr = above_stdio(stdio.stderr)?;

    let mut actions = FileActions::new()?;
    match &stdin {
        Some(fd) => actions.dup2(fd.as_raw_fd(), 0)?,
        None => actions.open_dev_null(0)?,
    }
    actions.dup2(stdout.as_raw_fd(), 1)?;
    actions.dup2(stderr.as_raw_fd(), 2)?;
    if let Some(cwd) = &cwd {
        actions.chdir(cwd)?;
    }
    let attributes = Attributes::new_process_group_default_signals()?;

    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the file actions and
    // attributes are initialised, and `argv`/`envp` are null-terminated
    // arrays of pointers into CStrings that outlive the call.
    let result = unsafe {
        libc::posix_spawn(
            &mut pid,
            executable.as_ptr(),
            &actions.inner,
            &attributes.inner,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    check(result)?;
    Ok(pid)
}

/// Finds the file `exec` would run, as `execvp` does in the child: with the
/// child's `PATH`, and relative entries taken from the child's `cwd`.
fn resolve_program(
    program: &OsStr,
    env: Option<&[(OsString, OsString)]>,
    cwd: Option<&Path>,
) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = match env {
        Some(pairs) => pairs
            .iter()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| value.clone()),
        None => std::env::var_os("PATH"),
    }
    .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));

    let mut denied = false;
    for directory in std::env::split_paths(&path) {
        let directory = if directory.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            directory
        };
        // exec runs after the chdir, so the result must not depend on this
        // process's directory: anchor relative entries at the child's.
        let directory = match cwd {
            Some(cwd) if directory.is_relative() => std::path::absolute(cwd)?.join(directory),
            _ => directory,
        };
        let candidate = directory.join(program);
        let Ok(metadata) = std::fs::metadata(&candidate) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        match rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK) {
            Ok(()) => return Ok(candidate),
            Err(_) => denied = true,
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", text),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|string| string.as_ptr() as *mut libc::c_char)
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// Returns a descriptor numbered 3 or higher for `fd`: a close-on-exec
/// duplicate when `fd` is 0, 1 or 2, else `fd` itself.
fn above_stdio(fd: BorrowedFd<'_>) -> io::Result<MaybeOwned<'_>> {
    if fd.as_raw_fd() > 2 {
        return Ok(MaybeOwned::Borrowed(fd));
    }
    Ok(MaybeOwned::Owned(rustix::io::fcntl_dupfd_cloexec(fd, 3)?))
}

enum MaybeOwned<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
}

impl AsRawFd for MaybeOwned<'_> {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            MaybeOwned::Borrowed(fd) => fd.as_raw_fd(),
            MaybeOwned::Owned(fd) => fd.as_raw_fd(),
        }
    }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

struct FileActions {
    inner: libc::posix_spawn_file_actions_t,
}

impl FileActions {
    fn new() -> io::Result<Self> {
        let mut inner = MaybeUninit::uninit();
        // SAFETY: init writes a valid value into `inner` when it returns 0.
        check(unsafe { libc::posix_spawn_file_actions_init(inner.as_mut_ptr()) })?;
        Ok(Self {
            // SAFETY: initialised just above.
            inner: unsafe { inner.assume_init() },
        })
    }

    fn dup2(&mut self, fd: RawFd, target: RawFd) -> io::Result<()> {
        // SAFETY: `self.inner` is initialised; the call only records the action.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.inner, fd, target) })
    }

    fn open_dev_null(&mut self, target: RawFd) -> io::Result<()> {
        // SAFETY: `self.inner` is initialised and the path is a static C string.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(
                &mut self.inner,
                target,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            )
        })
    }

    fn chdir(&mut self, directory: &CString) -> io::Result<()> {
        // SAFETY: `self.inner` is initialised; glibc copies the path.
        check(unsafe {
            libc::posix_spawn_file_actions_addchdir_np(&mut self.inner, directory.as_ptr())
        })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: `self.inner` was initialised in `new` and is destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.inner) };
    }
}

struct Attributes {
    inner: libc::posix_spawnattr_t,
}

impl Attributes {
    fn new_process_group_default_signals() -> io::Result<Self> {
        let mut inner = MaybeUninit::uninit();
        // SAFETY: init writes a valid value into `inner` when it returns 0.
        check(unsafe { libc::posix_spawnattr_init(inner.as_mut_ptr()) })?;
        let mut attributes = Self {
            // SAFETY: initialised just above.
            inner: unsafe { inner.assume_init() },
        };
        // SAFETY: both sigsets are fully written before use, and the attribute
        // object is initialised.
        unsafe {
            // Every bit set, rather than sigfillset: glibc's sigfillset leaves
            // out its two internal real-time signals, and posix_spawn then
            // sets those to SIG_IGN in the child, where they stay ignored.
            let mut all = MaybeUninit::<libc::sigset_t>::uninit();
            std::ptr::write_bytes(all.as_mut_ptr(), 0xff, 1);
            let mut none = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(none.as_mut_ptr());
            check(libc::posix_spawnattr_setsigdefault(
                &mut attributes.inner,
                all.as_ptr(),
            ))?;
            check(libc::posix_spawnattr_setsigmask(
                &mut attributes.inner,
                none.as_ptr(),
            ))?;
            check(libc::posix_spawnattr_setpgroup(&mut attributes.inner, 0))?;
            let flags = libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGDEF
                | libc::POSIX_SPAWN_SETSIGMASK;
            check(libc::posix_spawnattr_setflags(
                &mut attributes.inner,
                flags as libc::c_short,
            ))?;
        }
        Ok(attributes)
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: `self.inner` was initialised and is destroyed once.
        unsafe { libc::posix_spawnattr_destroy(&mut self.inner) };
    }
}
