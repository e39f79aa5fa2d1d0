//! Container cgroups on cgroup v1 (legacy), hybrid and v2 (unified) hosts.
//!
//! * [`CgroupConfig::new`] resolves linux.cgroupsPath into one directory per hierarchy, the way
//!   runc 1.1 does (libcontainer/specconv + cgroups/fs/paths.go + cgroups/fs2/defaultpath.go):
//!   - absent: the container id, as a *relative* path;
//!   - relative: below the calling process' own cgroup, per v1 hierarchy (so hierarchies can
//!     differ, e.g. memory:/sandbox/x/<id> but cpu:/<id>), and on a v2 host below the *parent* of
//!     the caller's cgroup;
//!   - absolute: below the root of every hierarchy.
//!
//!   It reads /proc/self/mountinfo and /proc/self/cgroup once and writes nothing. The result is
//!   serialisable so `delete`/`kill`/`update` in later processes use the same directories.
//! * [`Cgroup`] is the live handle: check, add, apply, freeze, kill, stats, remove.
//!
//! Hybrid hosts: v1 controllers are used, and the container also gets the same path in the
//! cgroup2 mount (as runc does); resources whose controller only exists there (hugetlb on this
//! machine) are applied there.
//!
//! Known gaps (see the tests for what is exercised on this host):
//! * v1 devices are rewritten as "deny all, then the rules"; during `update` of a running
//!   container there is a microsecond window where only the already-written rules apply (runc
//!   diffs against devices.list instead).
//! * memory.kernel / kernelTCP are ignored, as runc 1.1 does; memory.useHierarchy is ignored.
//! * The systemd driver (libcgroups' systemd manager, cgroup v2 only) is untested here (no
//!   systemd on this machine); it goes through libcgroups' `Manager::apply`, whose eBPF step
//!   raises RLIMIT_MEMLOCK and adds a /dev/console allow rule.

mod devices;
mod fsutil;
mod layout;
mod stats;
mod update;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libcgroups::common::{CgroupManager, ControllerOpt, FreezerState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxRdma, LinuxResources};
use serde::{Deserialize, Serialize};

pub use devices::default_rules as default_device_rules;
pub use layout::{process_cgroup_dirs, Mode};
pub use update::split_updatable;

use layout::{clean, HostLayout, CGROUP_ROOT};

/// One hierarchy's mount point and the container's directory in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub path: PathBuf,
}

/// Where a container's cgroup lives; stored in the container's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupConfig {
    /// Host layout seen when the container was created.
    pub mode: Mode,
    /// --systemd-cgroup
    pub systemd: bool,
    /// linux.cgroupsPath as given (None: default for the container id).
    pub requested_path: Option<PathBuf>,
    /// v1 controller (or "name=systemd") -> directory. Comounted controllers share one.
    pub v1: BTreeMap<String, Hierarchy>,
    /// The cgroup2 directory (v2 hosts; the extra unified directory on hybrid hosts).
    pub unified: Option<Hierarchy>,
    /// systemd driver: "slice:prefix:name".
    pub systemd_unit: Option<String>,
    pub container_id: String,
}

impl CgroupConfig {
    /// `exec --cgroup`: these cgroups with each hierarchy's directory moved down to an existing
    /// sub-cgroup of the container's. Each spec is runc's `[CONTROLLER[,CONTROLLER]:]PATH`; a PATH
    /// without controllers applies to every hierarchy that no spec names. On a cgroup v2 host only
    /// the plain PATH form makes sense (there is one hierarchy).
    pub fn sub_cgroup(&self, specs: &[String]) -> Result<CgroupConfig> {
        if self.systemd {
            bail!("--cgroup: sub-cgroups are not supported with the systemd cgroup driver");
        }
        let mut all: Option<PathBuf> = None;
        let mut per: BTreeMap<String, PathBuf> = BTreeMap::new();
        for spec in specs {
            let (ctrls, path) = match spec.split_once(':') {
                Some((c, p)) => (Some(c), p),
                None => (None, spec.as_str()),
            };
            let rel = Path::new(path.trim_start_matches('/'));
            if rel.as_os_str().is_empty()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                bail!("--cgroup {spec:?}: the sub-cgroup must be a path below the container's cgroup, without \"..\"");
            }
            match ctrls {
                None | Some("") => {
                    if all.replace(rel.to_path_buf()).is_some() {
                        bail!(
                            "--cgroup {spec:?}: a sub-cgroup for every controller is given twice"
                        );
                    }
                }
                Some(list) => {
                    if self.mode == Mode::Unified {
                        bail!("--cgroup {spec:?}: this host has cgroup v2 only, which has no per-controller cgroups (give just the path)");
                    }
                    for c in list.split(',') {
                        if !self.v1.contains_key(c) {
                            bail!("--cgroup {spec:?}: the container has no {c:?} cgroup");
                        }
                        per.insert(c.to_owned(), rel.to_path_buf());
                    }
                }
            }
        }
        let mut cfg = self.clone();
        let move_down = |name: &str, h: &mut Hierarchy, rel: &Path| -> Result<()> {
            let dir = h.path.join(rel);
            if !dir.is_dir() {
                bail!(
                    "--cgroup: the sub-cgroup {} of the container's {name} cgroup does not exist",
                    dir.display()
                );
            }
            h.path = dir;
            Ok(())
        };
        for (ctrl, h) in cfg.v1.iter_mut() {
            if let Some(rel) = per.get(ctrl).or(all.as_ref()) {
                move_down(ctrl, h, rel)?;
            }
        }
        if let (Some(h), Some(rel)) = (cfg.unified.as_mut(), all.as_ref()) {
            move_down("cgroup2", h, rel)?;
        }
        Ok(cfg)
    }
}

/// pids.max for `linux.resources.pids.limit` (runtime-spec 1.3, runc 1.4): 0 is a real limit (no new
/// processes), a negative value is "max". (An unset limit never reaches here: see
/// `config::normalize_pids`.)
pub(crate) fn pids_max(limit: i64) -> String {
    if limit < 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

/// A live handle on a container's cgroup(s).
pub struct Cgroup {
    cfg: CgroupConfig,
    systemd: Option<Box<libcgroups::systemd::manager::Manager>>,
}

const SYSTEMD_RUNNING: &str = "/run/systemd/system";
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

impl CgroupConfig {
    /// From config.json's linux.cgroupsPath (None = default for this container id) and
    /// --systemd-cgroup. Reads the host layout; writes nothing.
    pub fn new(cgroups_path: Option<&Path>, container_id: &str, systemd: bool) -> Result<Self> {
        let layout = HostLayout::read()?;
        Self::from_layout(&layout, cgroups_path, container_id, systemd)
    }

    fn from_layout(
        layout: &HostLayout,
        cgroups_path: Option<&Path>,
        container_id: &str,
        systemd: bool,
    ) -> Result<Self> {
        let requested_path = cgroups_path
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf);
        let mut cfg = CgroupConfig {
            mode: layout.mode,
            systemd,
            requested_path: requested_path.clone(),
            v1: BTreeMap::new(),
            unified: None,
            systemd_unit: None,
            container_id: container_id.to_string(),
        };
        if systemd {
            if !Path::new(SYSTEMD_RUNNING).is_dir() {
                bail!("systemd cgroup driver requested but systemd is not running (no {SYSTEMD_RUNNING})");
            }
            if layout.mode != Mode::Unified {
                bail!(
                    "--systemd-cgroup: berth supports the systemd cgroup driver only on cgroup v2 hosts, this host is {}",
                    layout.mode
                );
            }
            let unit = match &requested_path {
                Some(p) => p.to_string_lossy().into_owned(),
                None => format!(":runc:{container_id}"),
            };
            let parts: Vec<&str> = unit.split(':').collect();
            if parts.len() != 3 || parts[2].is_empty() {
                bail!("linux.cgroupsPath: expected \"slice:prefix:name\" for the systemd cgroup driver, got {unit:?}");
            }
            let slice = if parts[0].is_empty() {
                "system.slice"
            } else {
                parts[0]
            };
            let scope = if parts[1].is_empty() {
                format!("{}.scope", parts[2])
            } else {
                format!("{}-{}.scope", parts[1], parts[2])
            };
            let mount = layout
                .unified
                .as_ref()
                .map(|m| m.mount_point.clone())
                .unwrap_or_else(|| CGROUP_ROOT.into());
            cfg.unified = Some(Hierarchy {
                path: mount.join(expand_slice(slice)?).join(scope),
                mount,
            });
            cfg.systemd_unit = Some(unit);
            return Ok(cfg);
        }

        let inner = requested_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(container_id));
        let absolute = inner.is_absolute();
        let inner = clean(&inner, false);
        if inner.as_os_str().is_empty() {
            bail!(
                "linux.cgroupsPath {:?} resolves to a cgroup root, refusing to use it",
                requested_path.unwrap_or_else(|| container_id.into())
            );
        }
        for (ctrl, m) in &layout.v1 {
            let base = if absolute {
                PathBuf::new()
            } else {
                layout.own_relative(ctrl, m)
            };
            cfg.v1.insert(
                ctrl.clone(),
                Hierarchy {
                    mount: m.mount_point.clone(),
                    path: m.mount_point.join(base).join(&inner),
                },
            );
        }
        if let Some(m) = &layout.unified {
            let base = if absolute {
                PathBuf::new()
            } else {
                let own = layout.own_relative("", m);
                if layout.mode == Mode::Unified {
                    // runc fs2: the caller's own cgroup most likely has processes in it, so use
                    // its parent
                    own.parent().map(Path::to_path_buf).unwrap_or_default()
                } else {
                    own
                }
            };
            cfg.unified = Some(Hierarchy {
                mount: m.mount_point.clone(),
                path: m.mount_point.join(base).join(&inner),
            });
        }
        Ok(cfg)
    }
}

impl CgroupConfig {
    fn freezer(&self) -> Option<Freezer<'_>> {
        match (self.mode, self.v1.get("freezer"), &self.unified) {
            (Mode::Unified, _, Some(u)) => Some(Freezer::V2(u)),
            (_, Some(h), _) => Some(Freezer::V1(&h.path)),
            (Mode::Hybrid, None, Some(u)) => Some(Freezer::V2(u)),
            _ => None,
        }
    }

    /// Whether the container's cgroup is frozen by its own freezer (paused). Reads one or two
    /// files and never talks to systemd, so `state` and `list` stay cheap.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer() {
            Some(Freezer::V1(d)) => v1::is_frozen(d),
            Some(Freezer::V2(u)) => v2::is_frozen(&u.path),
            None => Err(not_mounted("freezer state", "freezer")),
        }
    }
}

/// "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice" (systemd's slice nesting); "-.slice" -> "".
fn expand_slice(slice: &str) -> Result<PathBuf> {
    let Some(name) = slice.strip_suffix(".slice") else {
        bail!("linux.cgroupsPath: {slice:?} is not a systemd slice name");
    };
    if name == "-" {
        return Ok(PathBuf::new());
    }
    if name.is_empty()
        || name.contains('/')
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        bail!("linux.cgroupsPath: invalid systemd slice {slice:?}");
    }
    let mut out = PathBuf::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push(format!("{prefix}.slice"));
    }
    Ok(out)
}

pub(crate) fn check_unified_key(k: &str) -> Result<()> {
    if k.contains('/') || k == "." || k == ".." || k.is_empty() {
        bail!("linux.resources.unified[{k:?}]: must be a file name (no slashes)");
    }
    if !k.contains('.') {
        bail!("linux.resources.unified[{k:?}]: must be of the form CONTROLLER.PARAMETER");
    }
    Ok(())
}

pub(crate) fn write_rdma(d: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let mut devs: Vec<&String> = rdma.keys().collect();
    devs.sort();
    for dev in devs {
        let l = &rdma[dev];
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() > dev.len() {
            fsutil::write(d, "rdma.max", &line)?;
        }
    }
    Ok(())
}

fn not_mounted(field: &str, ctrl: &str) -> anyhow::Error {
    anyhow::anyhow!("{field}: needs the {ctrl} controller, which is not mounted on this host")
}

impl Cgroup {
    pub fn open(cfg: &CgroupConfig) -> Result<Cgroup> {
        let systemd = if cfg.systemd {
            let unit = cfg
                .systemd_unit
                .clone()
                .context("systemd cgroup config without a unit")?;
            let mount = cfg
                .unified
                .as_ref()
                .map(|h| h.mount.clone())
                .unwrap_or_else(|| CGROUP_ROOT.into());
            let m = libcgroups::systemd::manager::Manager::new(
                mount,
                PathBuf::from(&unit),
                cfg.container_id.clone(),
                nix::unistd::geteuid().is_root(),
                libcgroups::systemd::manager::PROCESS_IN_CGROUP_TIMEOUT_DURATION,
            )
            .with_context(|| format!("systemd cgroup manager for {unit:?}"))?;
            Some(Box::new(m))
        } else {
            None
        };
        Ok(Cgroup {
            cfg: cfg.clone(),
            systemd,
        })
    }

    pub fn config(&self) -> &CgroupConfig {
        &self.cfg
    }

    fn unified_dir(&self) -> Option<&Path> {
        self.cfg.unified.as_ref().map(|h| h.path.as_path())
    }

    fn v2_dir(&self) -> Result<&Hierarchy> {
        self.cfg
            .unified
            .as_ref()
            .context("no cgroup2 directory in this cgroup config")
    }

    fn is_v2(&self) -> bool {
        self.cfg.mode == Mode::Unified
    }

    /// Validation before anything is created: every resource asked for has its controller on
    /// this host and values are sane; otherwise an error naming the field.
    pub fn check(&self, r: &LinuxResources) -> Result<()> {
        if let Some(d) = r.devices() {
            devices::validate(d)?;
        }
        if let Some(m) = r.memory() {
            for (name, v) in [
                ("limit", m.limit()),
                ("reservation", m.reservation()),
                ("swap", m.swap()),
            ] {
                if let Some(v) = v {
                    if v < -1 {
                        bail!(
                            "linux.resources.memory.{name}: {v} is invalid (use -1 for unlimited)"
                        );
                    }
                }
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    bail!("linux.resources.memory.swappiness: {s} is out of range 0-100");
                }
            }
            let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
            if limit > 0 && swap > 0 && swap < limit {
                bail!("linux.resources.memory.swap: memory+swap limit {swap} is below the memory limit {limit}");
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(sh) = c.shares().filter(|s| *s != 0) {
                // the kernel's MIN_SHARES..MAX_SHARES (v1 clamps silently; v2 weights come from them)
                if !(2..=262_144).contains(&sh) {
                    bail!("linux.resources.cpu.shares: {sh} is out of range 2-262144");
                }
            }
            if let Some(p) = c.period().filter(|p| *p != 0) {
                if !(1000..=1_000_000).contains(&p) {
                    bail!("linux.resources.cpu.period: {p} is out of range 1000-1000000 (us)");
                }
            }
            if let Some(q) = c.quota().filter(|q| *q != 0) {
                if q != -1 && q < 1000 {
                    bail!("linux.resources.cpu.quota: {q} is invalid (-1 or at least 1000 us)");
                }
            }
            if let Some(i) = c.idle() {
                if i != 0 && i != 1 {
                    bail!("linux.resources.cpu.idle: {i} is invalid (0 or 1)");
                }
            }
        }
        if let Some(b) = r.block_io() {
            for (name, w) in [("weight", b.weight()), ("leafWeight", b.leaf_weight())] {
                if let Some(w) = w.filter(|w| *w != 0) {
                    if !(10..=1000).contains(&w) {
                        bail!("linux.resources.blockIO.{name}: {w} is out of range 10-1000");
                    }
                }
            }
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let sizes = libcgroups::stats::supported_page_sizes()
                .context("cannot list the host's huge page sizes")?;
            for (i, l) in limits.iter().enumerate() {
                if !sizes.iter().any(|s| s == l.page_size()) {
                    bail!(
                        "linux.resources.hugepageLimits[{i}].pageSize: {:?} is not supported by this host (supported: {})",
                        l.page_size(),
                        sizes.join(", ")
                    );
                }
            }
        }
        if let Some(rdma) = r.rdma() {
            for dev in rdma.keys() {
                if dev.is_empty() || dev.contains(char::is_whitespace) {
                    bail!("linux.resources.rdma: invalid device name {dev:?}");
                }
            }
        }
        if self.is_v2() {
            self.check_v2(r)
        } else {
            self.check_v1(r)
        }
    }

    fn check_v1(&self, r: &LinuxResources) -> Result<()> {
        let v1 = &self.cfg.v1;
        let mount = |c: &str| v1.get(c).map(|h| h.mount.as_path());
        let need = |field: &str, c: &str| -> Result<&Path> {
            mount(c).ok_or_else(|| not_mounted(field, c))
        };
        let need_file = |field: &str, c: &str, file: &str| -> Result<()> {
            let m = need(field, c)?;
            if !m.join(file).exists() {
                bail!(
                    "{field}: this kernel has no {c} {file} (looked in {})",
                    m.display()
                );
            }
            Ok(())
        };
        if let Some(m) = r.memory() {
            let f = "linux.resources.memory";
            let any = m.limit().is_some()
                || m.reservation().is_some()
                || m.swap().is_some()
                || m.swappiness().is_some()
                || m.disable_oom_killer() == Some(true);
            if any {
                need(f, "memory")?;
            }
            if m.swap().unwrap_or(0) > 0 {
                need_file(
                    &format!("{f}.swap"),
                    "memory",
                    "memory.memsw.limit_in_bytes",
                )?;
            }
        }
        if let Some(c) = r.cpu() {
            let f = "linux.resources.cpu";
            if c.shares().is_some_and(|v| v != 0)
                || c.quota().is_some_and(|v| v != 0)
                || c.period().is_some_and(|v| v != 0)
            {
                need(f, "cpu")?;
            }
            if c.burst().is_some() {
                need_file(&format!("{f}.burst"), "cpu", "cpu.cfs_burst_us")?;
            }
            if c.idle().is_some() {
                need_file(&format!("{f}.idle"), "cpu", "cpu.idle")?;
            }
            if c.realtime_runtime().is_some_and(|v| v != 0)
                || c.realtime_period().is_some_and(|v| v != 0)
            {
                need_file(&format!("{f}.realtimeRuntime"), "cpu", "cpu.rt_runtime_us")?;
            }
            if c.cpus().as_deref().is_some_and(|s| !s.is_empty())
                || c.mems().as_deref().is_some_and(|s| !s.is_empty())
            {
                need(&format!("{f}.cpus/mems"), "cpuset")?;
            }
        }
        if r.pids().is_some() {
            need("linux.resources.pids", "pids")?;
        }
        if let Some(b) = r.block_io() {
            let f = "linux.resources.blockIO";
            let d = need(f, "blkio")?;
            let has_weight = v1::blkio_weight_files(d).is_some();
            if b.weight().is_some_and(|w| w != 0) && !has_weight {
                // runc 1.1 skips the weight on such kernels; say so instead of failing the container.
                crate::warn!("{f}.weight is ignored: this kernel has no blkio.weight nor blkio.bfq.weight (no CFQ/BFQ I/O scheduler weights) in {}", d.display());
            }
            if b.weight_device().as_ref().is_some_and(|v| !v.is_empty()) && !has_weight {
                bail!("{f}.weightDevice: this kernel has no blkio weight_device file (no CFQ/BFQ) in {}", d.display());
            }
            if b.leaf_weight().is_some_and(|w| w != 0)
                || b.weight_device()
                    .iter()
                    .flatten()
                    .any(|w| w.leaf_weight().is_some())
            {
                need_file(&format!("{f}.leafWeight"), "blkio", "blkio.leaf_weight")?;
            }
        }
        if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
            && !v1.contains_key("hugetlb")
        {
            let f = "linux.resources.hugepageLimits";
            match &self.cfg.unified {
                Some(u) if self.cfg.mode == Mode::Hybrid => {
                    let avail = v2::available_controllers(&u.mount, &u.path)?;
                    if !avail.iter().any(|c| c == "hugetlb") {
                        bail!("{f}: needs the hugetlb controller, which is neither mounted as cgroup v1 nor available in the cgroup2 mount {}", u.mount.display());
                    }
                }
                _ => return Err(not_mounted(f, "hugetlb")),
            }
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() {
                need("linux.resources.network.classID", "net_cls")?;
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                need("linux.resources.network.priorities", "net_prio")?;
            }
        }
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            need("linux.resources.rdma", "rdma")?;
        }
        if r.unified().as_ref().is_some_and(|m| !m.is_empty()) {
            bail!(
                "linux.resources.unified: needs a cgroup v2 host, this host is {}",
                self.cfg.mode
            );
        }
        if r.devices().as_ref().is_some_and(|d| !d.is_empty()) && !v1.contains_key("devices") {
            return Err(not_mounted("linux.resources.devices", "devices"));
        }
        Ok(())
    }

    fn check_v2(&self, r: &LinuxResources) -> Result<()> {
        let u = self.v2_dir()?;
        let avail = v2::available_controllers(&u.mount, &u.path)?;
        let need = |field: &str, c: &str| -> Result<()> {
            if avail.iter().any(|a| a == c) {
                Ok(())
            } else {
                bail!(
                    "{field}: needs the {c} controller, which is not available for {} (available: {})",
                    u.path.display(),
                    if avail.is_empty() { "none".to_string() } else { avail.join(" ") }
                )
            }
        };
        if let Some(m) = r.memory() {
            let f = "linux.resources.memory";
            if m.limit().is_some() || m.reservation().is_some() || m.swap().is_some() {
                need(f, "memory")?;
            }
            v2::swap_v2(m.swap().unwrap_or(0), m.limit().unwrap_or(0))?;
            if m.swappiness().is_some() {
                bail!("{f}.swappiness: not supported on cgroup v2");
            }
            if m.disable_oom_killer() == Some(true) {
                bail!("{f}.disableOOMKiller: not supported on cgroup v2");
            }
        }
        if let Some(c) = r.cpu() {
            let f = "linux.resources.cpu";
            if c.shares().is_some_and(|v| v != 0)
                || c.quota().is_some_and(|v| v != 0)
                || c.period().is_some_and(|v| v != 0)
                || c.burst().is_some()
                || c.idle().is_some()
            {
                need(f, "cpu")?;
            }
            if c.realtime_runtime().is_some_and(|v| v != 0)
                || c.realtime_period().is_some_and(|v| v != 0)
            {
                bail!("{f}.realtimeRuntime/realtimePeriod: not supported on cgroup v2");
            }
            if c.cpus().as_deref().is_some_and(|s| !s.is_empty())
                || c.mems().as_deref().is_some_and(|s| !s.is_empty())
            {
                need(&format!("{f}.cpus/mems"), "cpuset")?;
            }
        }
        if r.pids().is_some() {
            need("linux.resources.pids", "pids")?;
        }
        if let Some(b) = r.block_io() {
            need("linux.resources.blockIO", "io")?;
            if b.leaf_weight().is_some_and(|w| w != 0)
                || b.weight_device()
                    .iter()
                    .flatten()
                    .any(|w| w.leaf_weight().is_some())
            {
                bail!("linux.resources.blockIO.leafWeight: not supported on cgroup v2");
            }
        }
        if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()) {
            need("linux.resources.hugepageLimits", "hugetlb")?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                bail!("linux.resources.network: needs the net_cls/net_prio controllers, which do not exist in cgroup v2");
            }
        }
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            need("linux.resources.rdma", "rdma")?;
        }
        if let Some(un) = r.unified() {
            let mut keys: Vec<&String> = un.keys().collect();
            keys.sort();
            for k in keys {
                check_unified_key(k)?;
                let ctrl = k.split('.').next().unwrap_or_default();
                if ctrl != "cgroup" {
                    need(&format!("linux.resources.unified[{k:?}]"), ctrl)?;
                }
            }
        }
        Ok(())
    }

    /// Create the cgroup(s) and move `pid` in.
    pub fn add(&self, pid: i32) -> Result<()> {
        if let Some(m) = &self.systemd {
            return m
                .add_task(Pid::from_raw(pid))
                .with_context(|| format!("systemd: cannot add pid {pid}"));
        }
        match self.cfg.mode {
            Mode::Unified => {
                let u = self.v2_dir()?;
                v2::add(&u.mount, &u.path, pid)
            }
            Mode::Legacy | Mode::Hybrid => {
                v1::add(&self.cfg.v1, pid)?;
                if let Some(u) = &self.cfg.unified {
                    v2::add(&u.mount, &u.path, pid)?;
                }
                Ok(())
            }
        }
    }

    /// Apply all of linux.resources (validated first), device rules included.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.check(r)?;
        self.write_resources(r, true)
    }

    /// `berth update`: validate the updatable part of `r` (see [`split_updatable`]; the rest,
    /// device rules included, is left alone as runc's update does), then write it. If the kernel
    /// refuses a value half-way, every resource file the update may have written is put back as
    /// it was, so a failed update changes nothing.
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        let (r, _) = split_updatable(r);
        self.check(&r)?;
        let dirs = self.unique_dirs();
        let saved = update::Snapshot::take(&dirs, &r)?;
        match self.write_resources(&r, false) {
            Ok(()) => Ok(()),
            Err(e) => match saved.restore() {
                Ok(()) => Err(e),
                Err(re) => Err(e.context(format!(
                    "and restoring the previous values failed too ({re:#}): the cgroup may be left half-updated"
                ))),
            },
        }
    }

    fn write_resources(&self, r: &LinuxResources, with_devices: bool) -> Result<()> {
        if let Some(m) = &self.systemd {
            let opt = ControllerOpt {
                resources: r,
                disable_oom_killer: r
                    .memory()
                    .as_ref()
                    .and_then(|m| m.disable_oom_killer())
                    .unwrap_or(false),
                oom_score_adj: None,
                freezer_state: None,
            };
            return m.apply(&opt).context("systemd: cannot apply resources");
        }
        match self.cfg.mode {
            Mode::Unified => v2::apply(&self.v2_dir()?.path, r, with_devices),
            Mode::Legacy | Mode::Hybrid => {
                v1::apply(&self.cfg.v1, r, self.unified_dir(), with_devices)
            }
        }
    }

    /// Every process in the container's cgroup (including sub-cgroups).
    pub fn pids(&self) -> Result<Vec<i32>> {
        if let Some(m) = &self.systemd {
            return Ok(m
                .get_all_pids()
                .context("systemd: cannot list pids")?
                .into_iter()
                .map(Pid::as_raw)
                .collect());
        }
        let dir = match self.cfg.mode {
            Mode::Unified => Some(self.v2_dir()?.path.clone()),
            _ => v1::pids_dir(&self.cfg.v1),
        };
        match dir {
            Some(d) => fsutil::all_pids(&d),
            None => Ok(Vec::new()),
        }
    }

    fn freezer(&self) -> Option<Freezer<'_>> {
        self.cfg.freezer()
    }

    pub fn freeze(&self) -> Result<()> {
        if let Some(m) = &self.systemd {
            return m
                .freeze(FreezerState::Frozen)
                .context("systemd: cannot freeze");
        }
        match self.freezer() {
            Some(Freezer::V1(d)) => v1::freeze(d),
            Some(Freezer::V2(u)) => v2::freeze(&u.mount, &u.path, FreezerState::Frozen),
            None => Err(not_mounted("freeze", "freezer")),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        if let Some(m) = &self.systemd {
            return m
                .freeze(FreezerState::Thawed)
                .context("systemd: cannot thaw");
        }
        match self.freezer() {
            Some(Freezer::V1(d)) => v1::thaw(d),
            Some(Freezer::V2(u)) => v2::freeze(&u.mount, &u.path, FreezerState::Thawed),
            None => Err(not_mounted("thaw", "freezer")),
        }
    }

    pub fn is_frozen(&self) -> Result<bool> {
        self.cfg.is_frozen()
    }

    /// runc's `kill --all`: on cgroup v2, SIGKILL goes through cgroup.kill (atomic, race-free).
    /// Otherwise the cgroup is frozen, every process signalled, and thawed again, so nothing can
    /// fork away in between. A paused container stays paused (its processes get the signal when
    /// resumed) unless the signal is SIGKILL, which thaws it so the processes die.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = Signal::try_from(signal).with_context(|| format!("invalid signal {signal}"))?;
        if sig == Signal::SIGKILL && (self.is_v2() || self.systemd.is_some()) {
            if let Some(u) = self
                .unified_dir()
                .filter(|d| d.join("cgroup.kill").exists())
            {
                return fsutil::write(u, "cgroup.kill", "1");
            }
        }
        let frozen_before = self.freezer().is_some() && self.is_frozen().unwrap_or(false);
        let froze = self.freezer().is_some() && !frozen_before && self.freeze().is_ok();
        let pids = self.pids();
        let mut first_err = None;
        if let Ok(pids) = &pids {
            for &p in pids {
                match kill(Pid::from_raw(p), sig) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        first_err
                            .get_or_insert_with(|| anyhow::anyhow!("kill({p}, {sig}) failed: {e}"));
                    }
                }
            }
        }
        if froze || (frozen_before && sig == Signal::SIGKILL) {
            self.thaw()?;
        }
        pids?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        if let Some(m) = &self.systemd {
            return m.stats().context("systemd: cannot read stats");
        }
        match self.cfg.mode {
            Mode::Unified => stats::v2(&self.v2_dir()?.path),
            _ => stats::v1(&self.cfg.v1, self.unified_dir()),
        }
    }

    /// How many processes the kernel's OOM killer killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        let (dir, file) = match self.cfg.mode {
            Mode::Unified => (self.v2_dir()?.path.as_path(), "memory.events"),
            _ => (
                v1::dir(&self.cfg.v1, "memory")
                    .ok_or_else(|| not_mounted("oom_kill_count", "memory"))?,
                "memory.oom_control",
            ),
        };
        let content = fsutil::read_opt(dir, file)?.with_context(|| {
            format!(
                "{} does not exist (memory controller not enabled for this cgroup?)",
                dir.join(file).display()
            )
        })?;
        fsutil::keyed_value(&content, "oom_kill")
            .with_context(|| format!("no oom_kill counter in {}", dir.join(file).display()))
    }

    /// Kill what is left and remove every directory created, in all hierarchies. Idempotent: a
    /// missing cgroup is fine. Parent directories (shared with other containers) are kept.
    pub fn remove(&self) -> Result<()> {
        if let Some(m) = &self.systemd {
            return m.remove().context("systemd: cannot remove the cgroup");
        }
        let dirs = self.unique_dirs();
        let mut left: Vec<i32> = Vec::new();
        for d in &dirs {
            left.extend(fsutil::all_pids(d)?);
        }
        if !left.is_empty() {
            let _ = self.kill_all(Signal::SIGKILL as i32);
            left.sort_unstable();
            left.dedup();
            for p in left {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
        let mut first_err = None;
        for d in &dirs {
            if let Err(e) = fsutil::remove_tree(d, REMOVE_TIMEOUT) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn unique_dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in self
            .cfg
            .v1
            .values()
            .map(|h| &h.path)
            .chain(self.cfg.unified.iter().map(|h| &h.path))
        {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// The directory per controller ("" = the cgroup2 directory), as runc's state.json has it.
    pub fn paths(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> = self
            .cfg
            .v1
            .iter()
            .map(|(c, h)| (c.clone(), h.path.clone()))
            .collect();
        if let Some(u) = &self.cfg.unified {
            out.push((String::new(), u.path.clone()));
        }
        out
    }
}

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Hierarchy),
}
