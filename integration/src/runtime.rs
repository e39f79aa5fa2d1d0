//! The OCI runtime under test: $INTEG_RUNTIME (default `runc`; later `berth`), and how each manager is told
//! to use it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cmd::{which, Cmd};

/// The runc-compatible binary every scenario runs containers with.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Absolute path (containerd's BinaryName, podman's --runtime, dockerd's `runtimes` path).
    pub path: PathBuf,
    /// File name, e.g. "runc" or "berth".
    pub name: String,
}

impl Runtime {
    pub fn from_env() -> Result<Runtime> {
        let spec = std::env::var("INTEG_RUNTIME").unwrap_or_else(|_| "runc".to_string());
        let path = which(&spec).with_context(|| format!("INTEG_RUNTIME={spec}"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.clone());
        Ok(Runtime { path, name })
    }

    /// The state root the runtime uses without --root: $INTEG_RUNTIME_ROOT, else /run/NAME (runc's
    /// default for root is /run/runc).
    pub fn default_root(&self) -> PathBuf {
        std::env::var_os("INTEG_RUNTIME_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run").join(&self.name))
    }

    /// `RUNTIME --root ROOT state ID` as JSON: proof that this runtime (not some default) holds the
    /// container, since a runc-compatible runtime only knows containers it created under that root.
    pub fn state(&self, root: &Path, id: &str) -> Result<serde_json::Value> {
        let out = Cmd::new(&self.path)
            .arg("--root")
            .arg(root)
            .arg("state")
            .arg(id)
            .ok()?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("parsing `{} state {id}` output: {}", self.name, out.stdout))
    }

    /// The status field of `state` ("created", "running", "paused", "stopped").
    pub fn status(&self, root: &Path, id: &str) -> Result<String> {
        let v = self.state(root, id)?;
        Ok(v["status"].as_str().unwrap_or_default().to_string())
    }
}

/// How containerd runs containers: a shim runtime type and its options. Now the stock
/// `io.containerd.runc.v2` shim with BinaryName = the runtime under test; later e.g.
/// `io.containerd.berth.v2` with its own options.
#[derive(Debug, Clone)]
pub struct ShimRuntime {
    /// e.g. "io.containerd.runc.v2" ($INTEG_SHIM_RUNTIME_TYPE overrides).
    pub runtime_type: String,
    /// BinaryName option (the runc-compatible binary the shim runs), if any.
    pub binary_name: Option<PathBuf>,
    /// Root option (the runtime's state root; the shim appends the containerd namespace).
    pub root: Option<PathBuf>,
    /// SystemdCgroup option.
    pub systemd_cgroup: bool,
}

impl ShimRuntime {
    pub const RUNC_V2: &'static str = "io.containerd.runc.v2";

    /// The stock runc shim driving `rt`, with its state under `root`.
    pub fn for_runtime(rt: &Runtime, root: PathBuf) -> ShimRuntime {
        let runtime_type =
            std::env::var("INTEG_SHIM_RUNTIME_TYPE").unwrap_or_else(|_| Self::RUNC_V2.to_string());
        ShimRuntime {
            runtime_type,
            binary_name: Some(rt.path.clone()),
            root: Some(root),
            systemd_cgroup: false,
        }
    }

    /// Whether ctr's --runc-binary / --runc-root flags apply (they are runc-v2 shim options).
    pub fn is_runc_shim(&self) -> bool {
        self.runtime_type == Self::RUNC_V2
    }

    /// Flags for `ctr run` selecting this runtime.
    pub fn ctr_flags(&self) -> Vec<String> {
        let mut v = vec!["--runtime".to_string(), self.runtime_type.clone()];
        if self.is_runc_shim() {
            if let Some(b) = &self.binary_name {
                v.push("--runc-binary".into());
                v.push(b.display().to_string());
            }
            if let Some(r) = &self.root {
                v.push("--runc-root".into());
                v.push(r.display().to_string());
            }
            if self.systemd_cgroup {
                v.push("--runc-systemd-cgroup".into());
            }
        }
        v
    }

    /// The runtime's state root for containerd namespace `ns` (where `RUNTIME --root` finds them).
    pub fn root_for_namespace(&self, ns: &str) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join(ns))
    }
}
