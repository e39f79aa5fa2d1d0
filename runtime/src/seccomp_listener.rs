//! `linux.seccomp.listenerPath`: the notify listener of an `SCMP_ACT_NOTIFY` profile, handed to the
//! seccomp agent listening there (config-linux.md).
//!
//! The process installs its filter last, just before execve; the listener the kernel returns is
//! sent over the socket that waits for the program to run (the init's `start` connection, the exec
//! channel) with one sendmsg(2) — the only call after the filter but execve, so a profile must allow
//! sendmsg (and may not notify on it). The runtime's side receives it and sends the agent the
//! container process state with the fd, as runc does: `{"ociVersion", "fds": ["seccompFd"], "pid",
//! "metadata", "state"}` and the listener as SCM_RIGHTS.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use oci_spec::runtime::Spec;

/// The byte that comes with the listener fd.
pub const TAG: u8 = b'N';

/// Where a container's notify listener goes: `listenerPath` and `listenerMetadata`.
pub struct Agent {
    pub path: PathBuf,
    pub metadata: Option<String>,
}

impl Agent {
    /// The agent of a config whose seccomp profile notifies (None otherwise).
    pub fn of(spec: &Spec) -> Option<Agent> {
        let seccomp = spec.linux().as_ref()?.seccomp().as_ref()?;
        let notifies = seccomp
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify);
        if !notifies {
            return None;
        }
        Some(Agent {
            path: seccomp.listener_path().clone()?,
            metadata: seccomp.listener_metadata().clone(),
        })
    }

    /// Send the container process state (`state`: the container's state JSON, `pid`: the process
    /// the listener belongs to) and the listener to the agent.
    pub fn deliver(&self, pid: i32, state: serde_json::Value, listener: OwnedFd) -> Result<()> {
        let what = || format!("linux.seccomp.listenerPath {}", self.path.display());
        let sock = UnixStream::connect(&self.path)
            .with_context(|| format!("{}: connecting to the seccomp agent", what()))?;
        let msg = serde_json::json!({
            "ociVersion": crate::config::OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": pid,
            "metadata": self.metadata.clone().unwrap_or_default(),
            "state": state,
        })
        .to_string();
        let fds = [listener.as_raw_fd()];
        sendmsg::<()>(
            sock.as_raw_fd(),
            &[std::io::IoSlice::new(msg.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .with_context(|| format!("{}: sending the listener", what()))?;
        Ok(())
    }
}

/// Receive up to `buf.len()` bytes from `sock`, and the fd that came with them if any.
pub fn recv_with_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!(RawFd);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.context("recvmsg")?,
        }
    };
    let mut fd = None;
    for c in msg.cmsgs().context("reading the control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: SCM_RIGHTS just installed this fd in our table; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, fd))
}
