//! podman with its own configuration, storage and registries files (CONTAINERS_CONF,
//! CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF) under a scratch area, `--runtime` = the runtime
//! under test, and every container under a cgroup parent of our own.

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cmd::{which, Cmd};
use crate::host;
use crate::images;
use crate::runtime::Runtime;
use crate::scratch::Scratch;

pub struct Podman {
    pub podman: PathBuf,
    pub runtime: Runtime,
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    scratch: Mutex<Option<Scratch>>,
}

impl Podman {
    pub fn start(runtime: &Runtime) -> Result<Podman> {
        let podman = which("podman")?;
        let scratch = Scratch::new("podman")?;
        let d = scratch.path().to_path_buf();
        for sub in ["storage", "run", "tmp", "networks"] {
            fs::create_dir_all(d.join(sub))?;
        }
        let conf = format!(
            r#"[containers]
netns = "none"
# Root lacks CAP_SYS_RESOURCE here: podman's default ulimits are above the hard limit (pitfall 1).
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"
[network]
network_config_dir = "{d}/networks"
"#,
            d = d.display()
        );
        fs::write(d.join("containers.conf"), conf)?;
        fs::write(
            d.join("storage.conf"),
            format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/storage\"\nrunroot = \"{0}/run\"\n", d.display()),
        )?;
        fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )?;
        let name = scratch.name();
        let version = Cmd::new(&podman)
            .arg("--version")
            .ok()?
            .out()
            .rsplit(' ')
            .next()
            .unwrap_or("?")
            .to_string();
        let me = Podman {
            podman,
            runtime: runtime.clone(),
            dir: d,
            name,
            version,
            scratch: Mutex::new(Some(scratch)),
        };
        me.cmd(&["load", "-i"])
            .arg(&images::get()?.busybox)
            .timeout(Duration::from_secs(120))
            .ok()
            .context("podman load")?;
        Ok(me)
    }

    /// `podman --runtime RUNTIME ARGS...` with this instance's configuration files.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(&self.podman)
            .env(
                "CONTAINERS_CONF",
                self.dir.join("containers.conf").display().to_string(),
            )
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.join("storage.conf").display().to_string(),
            )
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf").display().to_string(),
            )
            .arg("--runtime")
            .arg(&self.runtime.path)
            .args(args)
    }

    /// The runtime's state root: podman leaves it at the runtime's default (/run/runc for runc).
    /// `--runtime-flag root=DIR` would move it, but conmon's exit command (`podman container cleanup`)
    /// does not carry runtime flags and would look in the default root anyway.
    pub fn runtime_root(&self) -> PathBuf {
        self.runtime.default_root()
    }

    /// The cgroup parent for containers of this instance.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    pub fn teardown(&self) -> Vec<String> {
        let Some(mut scratch) = self.scratch.lock().unwrap().take() else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        match self
            .cmd(&["rm", "--all", "--force", "--time", "0"])
            .timeout(Duration::from_secs(60))
            .run()
        {
            Ok(o) if o.code != 0 => notes.push(format!("podman rm -af: {o}")),
            Err(e) => notes.push(format!("podman rm -af: {e:#}")),
            _ => {}
        }
        // Containers' overlay mounts and the storage's own mounts go with the scratch tree.
        for d in host::remove_cgroup(&self.cgroup_parent()) {
            notes.push(format!("cgroup left: {}", d.display()));
        }
        notes.extend(scratch.teardown());
        notes
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for n in self.teardown() {
            eprintln!("[integ teardown podman] {n}");
        }
    }
}
