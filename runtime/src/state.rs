//! A container's state under `--root`: `<root>/<id>/` holds `state.json` (what berth knows about the
//! container), `config.json` (the spec it was created from, for exec, update and poststop hooks) and, while
//! the container is `created`, `exec.sock` (where `start` releases the init process).
//!
//! Every command that changes a container holds an exclusive flock on its directory, so concurrent commands
//! on one container are serialised and never see half-written state (files are replaced by rename).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupConfig;

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_SOCKET: &str = "exec.sock";

/// What berth records about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The init process, 0 until it exists.
    pub pid: i32,
    /// Its start time in clock ticks after boot (/proc/PID/stat field 22): tells it from a recycled pid.
    pub pid_start_time: u64,
    /// false while `create` is still running.
    pub created: bool,
    /// When `create` began (RFC 3339).
    pub created_at: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub cgroup: CgroupConfig,
    /// The init process runs in a new pid namespace (so killing it ends every process of the container).
    #[serde(default)]
    pub own_pid_namespace: bool,
}

/// Valid ids: runc's `^[\w+\-.]+$`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits and _ + - . only");
    }
    Ok(())
}

/// The directory of one container, locked.
pub struct StateDir {
    pub dir: PathBuf,
    lock: Flock<File>,
}

impl StateDir {
    /// Create the directory of a new container (fails if the id is taken) and lock it.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .with_context(|| format!("creating the state root {}", root.display()))?;
        let dir = root.join(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container {id:?} already exists")
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
        let lock = lock_dir(&dir)?;
        Ok(StateDir { dir, lock })
    }

    /// Open and lock the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        let dir = root.join(id);
        if !dir.is_dir() {
            bail!("container {id:?} does not exist");
        }
        let lock = lock_dir(&dir).map_err(|e| {
            if !dir.exists() {
                anyhow::anyhow!("container {id:?} does not exist")
            } else {
                e
            }
        })?;
        // A `delete` that held the lock before us may have removed the directory.
        if !dir.exists() {
            bail!("container {id:?} does not exist");
        }
        Ok(StateDir { dir, lock })
    }

    /// The raw fd of the lock, which a forked init must close so the lock dies with this command.
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lock.as_fd()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write_state(&self, state: &State) -> Result<()> {
        write_atomic(&self.path(STATE_FILE), &serde_json::to_vec(state)?)
    }

    pub fn write_config(&self, spec: &Spec) -> Result<()> {
        write_atomic(&self.path(CONFIG_FILE), &serde_json::to_vec(spec)?)
    }

    /// Remove the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("removing {}", self.dir.display()))
    }
}

fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", dir.display()))
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Read a container's state.json without locking (for `state` and `list`, which only look).
pub fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))
}

/// Read the spec a container was created from.
pub fn read_config(dir: &Path) -> Result<Spec> {
    let path = dir.join(CONFIG_FILE);
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "abc-1_2.3+x", "A9"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
