//! `process.terminal`: a pty made inside the container (from its own devpts), whose master goes to the
//! caller over `--console-socket` (SCM_RIGHTS, as runc sends it) and whose slave becomes the process's
//! controlling terminal, stdio and `/dev/console`. `run` without a console socket receives the master
//! itself and proxies it to the caller's terminal (see `commands::run`).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::sys;

/// Connect to the console socket (done by the parent before the container's root hides the path).
pub fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path)
        .with_context(|| format!("--console-socket {}: connecting", path.display()))
}

/// A console socket of berth's own (for `run` and `exec` attached without --console-socket): the
/// first end stays with berth, which receives the master from the second.
pub fn own_console_socket() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the terminal")
}

/// Send the pty master over the console socket.
pub fn send_master(sock: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the terminal over the console socket")?;
    Ok(())
}

/// Receive a pty master sent over a console socket.
pub fn recv_master(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the terminal")?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS installed a new fd in this process that nothing else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    bail!("the console socket message carried no file descriptor")
}

/// Open a new pty in the container's devpts: (master, slave).
pub fn open_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd)> {
    let master = nix::fcntl::open(
        "/dev/pts/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("opening /dev/pts/ptmx (is devpts mounted on /dev/pts?)")?;
    // SAFETY: open returned a new fd that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    sys::pty_unlock(master.as_fd()).context("unlocking the pty")?;
    let slave = sys::pty_peer(master.as_fd()).context("opening the pty's peer")?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        sys::set_winsize(slave.as_fd(), &ws).context("process.consoleSize")?;
    }
    Ok((master, slave))
}

/// Make `slave` the calling process's controlling terminal and its stdin, stdout and stderr.
pub fn become_controlled(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    sys::set_controlling_terminal(slave.as_fd()).context("TIOCSCTTY")?;
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd)
            .with_context(|| format!("dup2 of the terminal to fd {fd}"))?;
    }
    Ok(())
}

/// The caller's terminal in raw mode for as long as this lives (restored on drop).
pub struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    pub fn enter(fd: BorrowedFd<'_>) -> RawMode {
        use nix::sys::termios;
        let saved = termios::tcgetattr(fd).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw);
        }
        RawMode(saved)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// Give `to` (a pty) the window size of `from` (the caller's terminal), if it has one.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = sys::get_winsize(from) {
        let _ = sys::set_winsize(to, &ws);
    }
}

/// Write all of `data` to `fd` (best effort: a closed peer ends it).
pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) if n > 0 => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}
