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

/// Which containerd shim runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimKind {
    /// containerd's stock `io.containerd.runc.v2` (containerd-shim-runc-v2 of the generation under test).
    Runc,
    /// berth's `io.containerd.berth.v2` (containerd-shim-berth-v2 from this workspace).
    Berth,
}

impl ShimKind {
    /// The kinds to test: $INTEG_SHIMS (comma-separated `berth`, `runc`), default both.
    pub fn selected() -> Vec<ShimKind> {
        let s = std::env::var("INTEG_SHIMS").unwrap_or_else(|_| "berth,runc".to_string());
        s.split(',')
            .filter_map(|k| match k.trim() {
                "berth" => Some(ShimKind::Berth),
                "runc" => Some(ShimKind::Runc),
                _ => None,
            })
            .collect()
    }

    /// "berth-shim" / "runc-shim": used in test names.
    pub fn label(self) -> &'static str {
        match self {
            ShimKind::Runc => "runc-shim",
            ShimKind::Berth => "berth-shim",
        }
    }

    pub fn runtime_type(self) -> &'static str {
        match self {
            ShimKind::Runc => ShimRuntime::RUNC_V2,
            ShimKind::Berth => ShimRuntime::BERTH_V2,
        }
    }

    /// The shim's binary name (as containerd resolves the runtime type on its PATH).
    pub fn binary(self) -> &'static str {
        match self {
            ShimKind::Runc => "containerd-shim-runc-v2",
            ShimKind::Berth => "containerd-shim-berth-v2",
        }
    }

    /// Pids of this kind's shim daemons serving task (or shim group) `id`: `-id ID` on their command
    /// line.
    pub fn daemons_for(self, id: &str) -> Vec<i32> {
        crate::host::pids_mentioning(&format!("-id {id} "))
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).contains(self.binary()))
                    .unwrap_or(false)
            })
            .collect()
    }
}

/// How containerd runs containers: a shim runtime type and its options (BinaryName = the runtime under
/// test, Root, SystemdCgroup), passed the way containerd passes them to that kind of shim:
/// - runc shim: ctr `--runc-binary/--runc-root`, CRI options table (containerd.runc.v1.Options);
/// - berth shim: ctr `--runtime-config-path FILE` and CRI `ConfigPath = FILE` (runtimeoptions.v1.Options,
///   what containerd sends any non-runc runtime type), FILE being a TOML with the same three keys; with
///   containerd 2.x's CRI the keys are written inline in the options table instead (containerd sends the
///   table as ConfigBody), so both routes are exercised.
#[derive(Debug, Clone)]
pub struct ShimRuntime {
    pub kind: ShimKind,
    /// e.g. "io.containerd.runc.v2" ($INTEG_SHIM_RUNTIME_TYPE overrides).
    pub runtime_type: String,
    /// BinaryName option (the runc-compatible binary the shim runs), if any.
    pub binary_name: Option<PathBuf>,
    /// Root option (the runtime's state root; the shim appends the containerd namespace).
    pub root: Option<PathBuf>,
    /// SystemdCgroup option.
    pub systemd_cgroup: bool,
    /// Berth shim: the TOML options file (written by `Containerd::start`).
    pub config_path: Option<PathBuf>,
}

impl ShimRuntime {
    pub const RUNC_V2: &'static str = "io.containerd.runc.v2";
    pub const BERTH_V2: &'static str = "io.containerd.berth.v2";

    /// Shim `kind` driving `rt`, with its state under `root`.
    pub fn new(kind: ShimKind, rt: &Runtime, root: PathBuf) -> ShimRuntime {
        let runtime_type = match kind {
            ShimKind::Runc => std::env::var("INTEG_SHIM_RUNTIME_TYPE")
                .unwrap_or_else(|_| kind.runtime_type().to_string()),
            ShimKind::Berth => kind.runtime_type().to_string(),
        };
        ShimRuntime {
            kind,
            runtime_type,
            binary_name: Some(rt.path.clone()),
            root: Some(root),
            systemd_cgroup: false,
            config_path: None,
        }
    }

    /// The stock runc shim driving `rt`, with its state under `root`.
    pub fn for_runtime(rt: &Runtime, root: PathBuf) -> ShimRuntime {
        Self::new(ShimKind::Runc, rt, root)
    }

    /// Whether ctr's --runc-binary / --runc-root flags apply (they are runc-v2 shim options).
    pub fn is_runc_shim(&self) -> bool {
        self.runtime_type == Self::RUNC_V2
    }

    /// The options as TOML (the keys of runc's options table).
    pub fn options_toml(&self) -> String {
        let mut s = String::new();
        let q = |p: &Path| {
            format!(
                "\"{}\"",
                p.display()
                    .to_string()
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
            )
        };
        if let Some(b) = &self.binary_name {
            s.push_str(&format!("BinaryName = {}\n", q(b)));
        }
        if let Some(r) = &self.root {
            s.push_str(&format!("Root = {}\n", q(r)));
        }
        s.push_str(&format!("SystemdCgroup = {}\n", self.systemd_cgroup));
        s
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
        } else if let Some(c) = &self.config_path {
            v.push("--runtime-config-path".into());
            v.push(c.display().to_string());
        }
        v
    }

    /// The runtime's state root for containerd namespace `ns` (where `RUNTIME --root` finds them).
    pub fn root_for_namespace(&self, ns: &str) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join(ns))
    }
}

/// containerd-shim-berth-v2 of this workspace: $INTEG_BERTH_SHIM if set, else built now with the cargo
/// that runs the tests, in the same target directory and profile as the test binary (a no-op when it
/// is up to date; cargo does not hold its build lock while tests run).
pub fn berth_shim() -> Result<PathBuf> {
    static SHIM: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    SHIM.get_or_init(|| build_berth_shim().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_berth_shim() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("INTEG_BERTH_SHIM") {
        let p = PathBuf::from(p);
        anyhow::ensure!(
            p.is_file(),
            "INTEG_BERTH_SHIM={} does not exist",
            p.display()
        );
        return Ok(p);
    }
    // .../<target>/<profile>/deps/managers-HASH
    let exe = std::env::current_exe().context("current_exe")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary outside a cargo target dir")?;
    let target = profile_dir.parent().context("no target dir")?;
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut c = Cmd::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "berth-shim",
            "--bin",
            "containerd-shim-berth-v2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target)
        .timeout(std::time::Duration::from_secs(1200));
    if profile == "release" {
        c = c.arg("--release");
    }
    c.ok().context("building containerd-shim-berth-v2")?;
    let bin = profile_dir.join("containerd-shim-berth-v2");
    anyhow::ensure!(bin.is_file(), "{} was not built", bin.display());
    Ok(bin)
}
