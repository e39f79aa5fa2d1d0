//! Every `unsafe` call of the shim, each in a small wrapper.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Sets the terminal size of a pty master.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer; the fd is borrowed, so open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("TIOCSWINSZ");
    }
    Ok(())
}

/// One malloc arena for the whole process: the shim's threads mostly wait, and a per-thread arena
/// would cost resident memory for nothing.
pub fn single_malloc_arena() {
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).with_context(|| format!("{s:?} holds a NUL byte"))
}

/// How a child made by [`spawn`] starts.
pub struct SpawnSpec<'a> {
    pub path: &'a Path,
    /// argv, argv[0] included.
    pub argv: Vec<&'a OsStr>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// (fd in this process, fd number in the child); every other fd is closed at exec (all of ours are
    /// close-on-exec). Standard streams not listed become /dev/null.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Start a new session (daemons).
    pub setsid: bool,
}

/// posix_spawn with a chosen fd layout: no fork of this multi-threaded process, and a failed exec is
/// reported here rather than in a child.
pub fn spawn(spec: &SpawnSpec<'_>) -> Result<i32> {
    let path = cstring(spec.path.as_os_str())?;
    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_>>()?;
    let env: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).context("environment holds a NUL byte"))
        .collect::<Result<_>>()?;
    let mut argv_p: Vec<*mut libc::c_char> = argv.iter().map(|c| c.as_ptr() as *mut _).collect();
    argv_p.push(std::ptr::null_mut());
    let mut env_p: Vec<*mut libc::c_char> = env.iter().map(|c| c.as_ptr() as *mut _).collect();
    env_p.push(std::ptr::null_mut());
    let devnull = c"/dev/null";

    // SAFETY: the file actions and attributes are initialised before use and destroyed on every path;
    // every pointer handed to posix_spawn (path, argv, envp, /dev/null) outlives the call.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut at: libc::posix_spawnattr_t = std::mem::zeroed();
        if libc::posix_spawn_file_actions_init(&mut fa) != 0 {
            bail!("posix_spawn_file_actions_init failed");
        }
        if libc::posix_spawnattr_init(&mut at) != 0 {
            libc::posix_spawn_file_actions_destroy(&mut fa);
            bail!("posix_spawnattr_init failed");
        }
        let mut rc = 0;
        // Sources may collide with targets (e.g. source fd 4 moving to 3 while fd 3 moves to 5): dup
        // every source above the targets first, then into place.
        let high = 100;
        for (i, (src, _)) in spec.fds.iter().enumerate() {
            rc |= libc::posix_spawn_file_actions_adddup2(&mut fa, *src, high + i as i32);
        }
        for (i, (_, dst)) in spec.fds.iter().enumerate() {
            rc |= libc::posix_spawn_file_actions_adddup2(&mut fa, high + i as i32, *dst);
        }
        for i in 0..spec.fds.len() {
            rc |= libc::posix_spawn_file_actions_addclose(&mut fa, high + i as i32);
        }
        for std_fd in 0..3 {
            if !spec.fds.iter().any(|(_, d)| *d == std_fd) {
                let flags = if std_fd == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                rc |= libc::posix_spawn_file_actions_addopen(
                    &mut fa,
                    std_fd,
                    devnull.as_ptr(),
                    flags,
                    0,
                );
            }
        }
        let mut flags =
            (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
        if spec.setsid {
            flags |= libc::POSIX_SPAWN_SETSID as libc::c_short;
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        rc |= libc::posix_spawnattr_setflags(&mut at, flags);
        rc |= libc::posix_spawnattr_setsigmask(&mut at, &empty);
        rc |= libc::posix_spawnattr_setsigdefault(&mut at, &all);
        let mut pid: libc::pid_t = 0;
        if rc == 0 {
            rc = libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &fa,
                &at,
                argv_p.as_ptr(),
                env_p.as_ptr(),
            );
        } else {
            rc = libc::EINVAL;
        }
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut at);
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc))
                .with_context(|| format!("spawning {}", spec.path.display()));
        }
        Ok(pid)
    }
}
