//! `berth start ID`: release a created container's init, wait until its program runs, run poststart hooks.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::container::{Container, Status};
use crate::state::{self, StateDir, EXEC_SOCKET};
use crate::{hooks, validate};

pub fn run(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    start(root, id, &dir)
}

/// Start with the container's directory already locked by the caller.
pub fn start(root: &Path, id: &str, dir: &StateDir) -> Result<()> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        Status::Paused => bail!("cannot start a paused container (resume it first)"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    let dirfd = dir.lock_fd().as_raw_fd();
    let mut conn = UnixStream::connect(format!("/proc/self/fd/{dirfd}/{EXEC_SOCKET}"))
        .context("connecting to the container's init (did it die?)")?;
    let _ = std::fs::remove_file(dir.path(EXEC_SOCKET));
    let spec = state::read_config(&dir.dir)?;
    // The init closes the connection when it execs the program, or writes why it could not; with a
    // notifying seccomp profile it first sends the listener, for the agent.
    let mut msg = Vec::new();
    if let Some(agent) = crate::seccomp_listener::Agent::of(&spec) {
        let mut first = [0u8; 1];
        let (n, fd) = crate::seccomp_listener::recv_with_fd(conn.as_fd(), &mut first)
            .context("waiting for the container's program to start")?;
        match fd {
            Some(fd) => {
                let state = serde_json::to_value(c.oci_state(Status::Created))?;
                if let Err(e) = agent.deliver(c.state.pid, state, fd) {
                    // Its notified calls would wait for an agent that never comes.
                    let _ = c.signal(libc::SIGKILL);
                    return Err(e);
                }
            }
            None => msg.extend_from_slice(&first[..n]),
        }
    }
    conn.read_to_end(&mut msg)
        .context("waiting for the container's program to start")?;
    if !msg.is_empty() {
        bail!("{}", String::from_utf8_lossy(&msg));
    }
    let hooks = validate::Hooks::from_spec(&spec)?;
    if !hooks.poststart.is_empty() {
        hooks::run_warn(
            "poststart",
            &hooks.poststart,
            &c.oci_state_json(Status::Running),
        );
    }
    Ok(())
}
