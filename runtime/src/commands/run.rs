//! `berth run ID`: create + start, then (unless --detach) stay attached: forward signals to the
//! container, proxy its terminal when there is one and no --console-socket, return its exit code, and
//! delete it when it exits (unless --keep).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::cli::{GlobalOpts, RunArgs};
use crate::commands::{create, delete, start};
use crate::launch::{self, Console};
use crate::{sys, terminal};

/// Signals `run` passes on to the container (as runc does); SIGWINCH resizes its terminal instead.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
];

pub fn run(g: &GlobalOpts, a: &RunArgs) -> Result<i32> {
    let c = &a.create;
    let mut own_console = None;
    let console = match (&c.console_socket, a.detach) {
        (Some(p), _) => Console::Socket(p.clone()),
        (None, true) => Console::None,
        (None, false) => {
            let (ours, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .context("socketpair for the terminal")?;
            own_console = Some(ours);
            Console::Pair(theirs)
        }
    };
    if !a.detach {
        // A container init forked inside its own pid namespace is reparented to us, so we can reap it.
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let created = match launch::create(create::options(g, c, console)) {
        Ok(created) => created,
        Err(e) if a.detach && e.to_string().contains("--console-socket is required") => {
            bail!("{e:#} (run --detach with a terminal needs --console-socket)")
        }
        Err(e) => return Err(e),
    };
    let master = match own_console {
        Some(sock) if created.terminal => Some(terminal::recv_master(sock.as_fd())?),
        _ => None,
    };
    // Signals that arrive from now on are forwarded, not acted on.
    let mut mask = SigSet::empty();
    for s in FORWARDED.iter().chain([Signal::SIGWINCH].iter()) {
        mask.add(*s);
    }
    if !a.detach {
        mask.thread_block().context("blocking signals")?;
    }
    if let Err(e) = start::start(&g.root, &c.id, &created.state_dir) {
        drop(created.state_dir);
        let _ = delete::run(&g.root, &c.id, true);
        return Err(e);
    }
    let pidfd = created.pidfd;
    drop(created.state_dir);
    if a.detach {
        return Ok(0);
    }
    let code = attach(&pidfd, master, &mask);
    if !a.keep {
        delete::run(&g.root, &c.id, true)?;
    }
    code
}

/// Wait for the container's init to exit, forwarding signals and proxying its terminal.
fn attach(pidfd: &OwnedFd, master: Option<OwnedFd>, mask: &SigSet) -> Result<i32> {
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
