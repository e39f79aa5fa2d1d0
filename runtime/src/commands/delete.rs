//! `berth delete ID [--force]`: remove a stopped (or created, or with --force running) container:
//! its process, cgroup and state, then run the poststop hooks. Works on a half-created container and on
//! one whose process already died.

use std::path::Path;

use anyhow::{bail, Result};

use crate::cgroups::Cgroup;
use crate::container::{Container, Status};
use crate::launch::kill_and_wait;
use crate::state::{self, StateDir};
use crate::{hooks, validate};

pub fn run(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match StateDir::open(root, id) {
        Ok(d) => d,
        Err(e) => {
            // runc: deleting what does not exist is not an error with --force.
            if force && !root.join(id).exists() {
                return Ok(());
            }
            return Err(e);
        }
    };
    let c = match Container::load(root, id) {
        Ok(c) => c,
        // A create that died before writing its state: nothing else to undo.
        Err(_) if !dir.path(state::STATE_FILE).exists() => return dir.remove(),
        Err(e) => return Err(e),
    };
    let status = c.status();
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_and_wait(&c),
        Status::Running | Status::Paused if force => {
            if let Ok(cg) = Cgroup::open(&c.state.cgroup) {
                let _ = cg.kill_all(libc::SIGKILL);
                if status == Status::Paused {
                    let _ = cg.thaw();
                }
            }
            kill_and_wait(&c);
        }
        Status::Running | Status::Paused => {
            bail!("cannot delete container {id:?} that is not stopped: {status}")
        }
    }
    destroy(&c, dir)
}

/// Undo what create made (cgroup, state) and run the poststop hooks.
pub fn destroy(c: &Container, dir: StateDir) -> Result<()> {
    Cgroup::open(&c.state.cgroup)?.remove()?;
    if let Ok(spec) = state::read_config(&dir.dir) {
        let hooks = validate::Hooks::from_spec(&spec)?;
        if !hooks.poststop.is_empty() {
            hooks::run_warn(
                "poststop",
                &hooks.poststop,
                &c.oci_state_json(Status::Stopped),
            );
        }
    }
    dir.remove()
}
