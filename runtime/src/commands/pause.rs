//! `berth pause ID`: freeze every process of a running (or created) container through its cgroup
//! (v1 freezer.state, v2 cgroup.freeze); its status becomes `paused`.

use std::path::Path;

use anyhow::{bail, Result};

use crate::cgroups::Cgroup;
use crate::container::{Container, Status};
use crate::state::StateDir;

pub fn run(root: &Path, id: &str) -> Result<()> {
    let _dir = StateDir::open(root, id)?;
    let c = Container::load(root, id)?;
    match c.status() {
        // runc pauses a created container too
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container {id:?} is already paused (not running)"),
        Status::Stopped => bail!("container {id:?} is not running"),
        Status::Creating => bail!("container {id:?} is still being created, not running"),
    }
    Cgroup::open(&c.state.cgroup)?.freeze()
}
