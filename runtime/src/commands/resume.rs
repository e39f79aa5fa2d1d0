//! `berth resume ID`: thaw a paused container's cgroup; its status goes back to `running` (or
//! `created` if it was paused before `start`).

use std::path::Path;

use anyhow::{bail, Result};

use crate::cgroups::Cgroup;
use crate::container::{Container, Status};
use crate::state::StateDir;

pub fn run(root: &Path, id: &str) -> Result<()> {
    let _dir = StateDir::open(root, id)?;
    let c = Container::load(root, id)?;
    let status = c.status();
    if status != Status::Paused {
        bail!("container {id:?} is not paused (it is {status})");
    }
    Cgroup::open(&c.state.cgroup)?.thaw()
}
