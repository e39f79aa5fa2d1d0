//! Staying attached to a container's process (`run` and `exec` without --detach): signals sent to berth
//! are forwarded to it, its terminal (when berth holds the pty master) is proxied to the caller's, in raw
//! mode, with window-size changes passed on, and its exit code becomes berth's.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::{sys, terminal};

/// Signals passed on to the process (as runc does); SIGWINCH resizes its terminal instead.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
];

/// Block the forwarded signals (and SIGWINCH) so they queue for `attach` instead of acting on berth.
pub fn block_signals() -> Result<SigSet> {
    let mut mask = SigSet::empty();
    for s in FORWARDED.iter().chain([Signal::SIGWINCH].iter()) {
        mask.add(*s);
    }
    mask.thread_block().context("blocking signals")?;
    Ok(mask)
}

/// Wait for the process to exit, forwarding signals and proxying its terminal.
pub fn attach(pidfd: &OwnedFd, master: Option<OwnedFd>, mask: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let stdin = std::io::stdin();
    let _raw = master.as_ref().map(|m| {
        terminal::copy_winsize(stdin.as_fd(), m.as_fd());
        terminal::RawMode::enter(stdin.as_fd())
    });
    let mut buf = [0u8; 8192];
    let mut stdin_open = master.is_some();
    let mut exited = false;
    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        // After the exit, drain the terminal's remaining output briefly.
        let timeout = if exited {
            PollTimeout::from(50u8)
        } else {
            PollTimeout::NONE
        };
        let n = match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("poll")?,
        };
        let ev = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty())
        };
        let (p, s, m, i) = (ev(0), ev(1), ev(2), ev(3));
        if n == 0 && exited {
            return reap(pidfd.as_fd());
        }
        if p.contains(PollFlags::POLLIN) {
            if master.is_none() {
                return reap(pidfd.as_fd());
            }
            exited = true;
        }
        if s.contains(PollFlags::POLLIN) {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        terminal::copy_winsize(stdin.as_fd(), m.as_fd());
                    }
                } else {
                    let _ = sys::pidfd_send_signal(pidfd.as_fd(), sig);
                }
            }
        }
        if let Some(mfd) = &master {
            if m.intersects(PollFlags::POLLIN) {
                match nix::unistd::read(mfd.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => terminal::write_all(std::io::stdout().as_fd(), &buf[..n]),
                    _ if exited => return reap(pidfd.as_fd()),
                    _ => {}
                }
            } else if m.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) && exited {
                return reap(pidfd.as_fd());
            }
            if i.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => terminal::write_all(mfd.as_fd(), &buf[..n]),
                    _ => stdin_open = false,
                }
            }
        }
    }
}

fn reap(pidfd: BorrowedFd<'_>) -> Result<i32> {
    sys::waitid_pidfd(pidfd, libc::WEXITED)
        .context("waiting for the container's init")?
        .context("the container's init did not exit")
}
