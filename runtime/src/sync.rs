//! The channel between `berth create` (the parent) and the container's init while it is being set up:
//! a SOCK_SEQPACKET socketpair carrying one small JSON message per packet.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// parent -> init: the cgroup is joined and the id maps are written; go on.
    Go,
    /// init -> parent (staged path): I made a user namespace, write my id maps.
    NeedIdMaps,
    /// parent -> init: id maps written.
    IdMapsDone,
    /// init -> parent (staged path): the container's init is this pid (the stage process exits).
    InitPid(i32),
    /// init -> parent: I made a time namespace, write its offsets (the init cannot: its /proc files
    /// belong to the runtime's root, who may not be mapped into its user namespace).
    NeedTimeOffsets,
    /// parent -> init: offsets written.
    TimeOffsetsDone,
    /// init -> parent: namespaces and mounts are ready; run the prestart and createRuntime hooks.
    RunCreateRuntimeHooks,
    /// parent -> init: hooks ran; the init's pid as the runtime sees it (for the hooks' state JSON).
    HooksDone(i32),
    /// init -> parent: everything is set up, waiting for `start`.
    Ready,
    /// either way: setting up failed, with this message.
    Error(String),
}

/// What arrives on a channel.
pub enum Incoming {
    Msg(Msg),
    /// The seccomp notify listener of the process on the other side.
    Listener(OwnedFd),
    /// The other side closed the channel (exited or exec'd).
    Closed,
}

/// The longest error text sent whole (a message must fit the receiver's buffer).
const MAX_ERROR: usize = 16 * 1024;

pub struct Channel(OwnedFd);

impl Channel {
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for the init channel")?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = match msg {
            // An error quoting a huge value (a 10 MB hostname) must still arrive: shorten it.
            Msg::Error(e) if e.len() > MAX_ERROR => {
                let mut end = MAX_ERROR;
                while !e.is_char_boundary(end) {
                    end -= 1;
                }
                let short = format!("{}… (message cut, {} bytes in all)", &e[..end], e.len());
                serde_json::to_vec(&Msg::Error(short))?
            }
            _ => serde_json::to_vec(msg)?,
        };
        nix::sys::socket::send(
            self.0.as_raw_fd(),
            &data,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        )
        .context("sending on the init channel")?;
        Ok(())
    }

    /// The next message, or None when the other side closed the channel (exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        match self.recv_any()? {
            Incoming::Msg(m) => Ok(Some(m)),
            Incoming::Closed => Ok(None),
            Incoming::Listener(_) => bail!("init channel: an unexpected fd"),
        }
    }

    /// The next message, or the seccomp notify listener (`seccomp_listener`), or the end.
    pub fn recv_any(&self) -> Result<Incoming> {
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = crate::seccomp_listener::recv_with_fd(self.0.as_fd(), &mut buf)
            .context("receiving on the init channel")?;
        if let Some(fd) = fd {
            if buf[..n] == [crate::seccomp_listener::TAG] {
                return Ok(Incoming::Listener(fd));
            }
            bail!("init channel: an fd with an unexpected message");
        }
        if n == 0 {
            return Ok(Incoming::Closed);
        }
        Ok(Incoming::Msg(
            serde_json::from_slice(&buf[..n]).context("decoding an init channel message")?,
        ))
    }

    /// Receive and require `want`; an `Error` from the other side becomes this side's error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error(e)) => bail!("{e}"),
            Some(m) => bail!("init channel: expected {want:?}, got {m:?}"),
            None => bail!("init channel: the other side exited while waiting for {want:?}"),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
