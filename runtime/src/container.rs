//! A container as the verbs see it: its recorded state plus a live status.
//!
//! The status is computed, never stored: the init is alive when its pid still names a process with the
//! start time recorded at create (a recycled pid does not count) that is not a zombie; it is `paused`
//! while its cgroup is frozen (also before `start`, as runc), else `created` while the exec socket
//! exists. Signals go through a pidfd opened after that check, so they cannot reach a process that
//! reused the pid.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::state::{self, State, EXEC_SOCKET};
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The start time (clock ticks after boot) and whether the process is a zombie, from /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some((stat.starttime, stat.state == 'Z' || stat.state == 'X'))
}

pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

/// The state JSON of runtime.md (what `state` prints and hooks read on stdin), with runc's extra fields.
#[derive(Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: String,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: &'a std::collections::BTreeMap<String, String>,
    pub owner: &'a str,
}

impl Container {
    /// Load a container's state (without locking).
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        state::validate_id(id)?;
        let dir = root.join(id);
        if !dir.join(state::STATE_FILE).exists() {
            bail!("container {id:?} does not exist");
        }
        let state = state::read_state(&dir)?;
        Ok(Container { dir, state })
    }

    /// The init process is alive and is the one this container started.
    pub fn init_alive(&self) -> bool {
        if self.state.pid <= 0 {
            return false;
        }
        matches!(process_start_time(self.state.pid), Some((t, false)) if t == self.state.pid_start_time)
    }

    pub fn status(&self) -> Status {
        if !self.init_alive() {
            if !self.state.created && self.state.pid == 0 {
                return Status::Creating;
            }
            return Status::Stopped;
        }
        if !self.state.created {
            return Status::Creating;
        }
        // As runc: a frozen container is paused, also one paused before `start`. Reading the
        // freezer files directly keeps this cheap (no systemd connection for `state` or `list`).
        if self.state.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        if self.dir.join(EXEC_SOCKET).exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// A pidfd for the init, if it is alive and is still the container's.
    pub fn pidfd(&self) -> Option<OwnedFd> {
        if self.state.pid <= 0 {
            return None;
        }
        let fd = sys::pidfd_open(self.state.pid).ok()?;
        // Checked after opening: if the start time matches now, the pidfd holds our process.
        self.init_alive().then_some(fd)
    }

    /// Send `signal` to the init process.
    pub fn signal(&self, signal: i32) -> Result<()> {
        let fd = self
            .pidfd()
            .context("the container's init process is not running")?;
        sys::pidfd_send_signal(fd.as_fd(), signal).with_context(|| {
            format!(
                "sending signal {signal} to the container's init (pid {})",
                self.state.pid
            )
        })
    }

    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: crate::config::OCI_VERSION,
            id: &self.state.id,
            pid: if matches!(status, Status::Stopped) {
                0
            } else {
                self.state.pid
            },
            status: status.to_string(),
            bundle: &self.state.bundle,
            rootfs: &self.state.rootfs,
            created: &self.state.created_at,
            annotations: &self.state.annotations,
            owner: "",
        }
    }

    pub fn oci_state_json(&self, status: Status) -> String {
        serde_json::to_string(&self.oci_state(status)).unwrap_or_default()
    }
}
