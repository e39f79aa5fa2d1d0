//! Cgroups (interim: a thin layer over libcgroups' own manager selection; replaced by the full
//! v1/v2/hybrid module).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig as LibConfig, CgroupManager,
    ControllerOpt, FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CgroupConfig {
    pub path: PathBuf,
    pub systemd: bool,
    pub id: String,
}

impl CgroupConfig {
    pub fn new(cgroups_path: Option<&Path>, container_id: &str, systemd: bool) -> Result<Self> {
        let path = match cgroups_path {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from("/berth").join(container_id),
        };
        Ok(CgroupConfig {
            path,
            systemd,
            id: container_id.to_owned(),
        })
    }
}

pub struct Cgroup {
    manager: AnyCgroupManager,
}

impl Cgroup {
    pub fn open(cfg: &CgroupConfig) -> Result<Cgroup> {
        let manager = create_cgroup_manager(LibConfig {
            cgroup_path: cfg.path.clone(),
            systemd_cgroup: cfg.systemd,
            container_name: cfg.id.clone(),
        })
        .with_context(|| format!("cgroup {}", cfg.path.display()))?;
        Ok(Cgroup { manager })
    }

    /// Interim: every resource is handed to libcgroups, which reports what it cannot apply.
    pub fn check(&self, _resources: &LinuxResources) -> Result<()> {
        Ok(())
    }

    pub fn add(&self, pid: i32) -> Result<()> {
        self.manager
            .add_task(Pid::from_raw(pid))
            .context("adding the init process to its cgroup")
    }

    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        self.manager
            .apply(&ControllerOpt {
                resources,
                disable_oom_killer: false,
                oom_score_adj: None,
                freezer_state: None,
            })
            .context("applying linux.resources")
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self
            .manager
            .get_all_pids()?
            .into_iter()
            .map(|p| p.as_raw())
            .collect())
    }

    pub fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }

    pub fn freeze(&self) -> Result<()> {
        Ok(self.manager.freeze(FreezerState::Frozen)?)
    }

    pub fn thaw(&self) -> Result<()> {
        Ok(self.manager.freeze(FreezerState::Thawed)?)
    }

    pub fn kill_all(&self, signal: i32) -> Result<()> {
        for pid in self.pids()? {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(signal)?,
            );
        }
        Ok(())
    }

    pub fn remove(&self) -> Result<()> {
        self.manager.remove().context("removing the cgroup")
    }
}
