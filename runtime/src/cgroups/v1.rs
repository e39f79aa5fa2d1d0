//! cgroup v1 controllers (runc 1.1 libcontainer/cgroups/fs semantics).
//!
//! libcgroups' v1 per-controller code is private to the crate and its Manager resolves one path
//! for every hierarchy (runc resolves relative paths per hierarchy) and re-reads mountinfo once
//! per controller, so the file writes live here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{devices, fsutil, Hierarchy};

pub(crate) fn dir<'a>(v1: &'a BTreeMap<String, Hierarchy>, ctrl: &str) -> Option<&'a Path> {
    v1.get(ctrl).map(|h| h.path.as_path())
}

/// Create every hierarchy's directory and move `pid` in. Comounted controllers share a directory.
pub(crate) fn add(v1: &BTreeMap<String, Hierarchy>, pid: i32) -> Result<()> {
    let mut done: Vec<&Path> = Vec::new();
    // cpuset first: a new cpuset cgroup has empty cpus/mems and refuses tasks until filled.
    let order =
        std::iter::once("cpuset").chain(v1.keys().map(String::as_str).filter(|c| *c != "cpuset"));
    for ctrl in order {
        let Some(h) = v1.get(ctrl) else { continue };
        if done.contains(&h.path.as_path()) {
            continue;
        }
        let is_cpuset = v1.iter().any(|(c, o)| c == "cpuset" && o.path == h.path);
        fsutil::mkdir_below(&h.mount, &h.path, |parent, dir| {
            if is_cpuset {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    if fsutil::read(dir, f)?.trim().is_empty() {
                        let v = fsutil::read(parent, f)?;
                        if v.trim().is_empty() {
                            bail!("{}/{f} is empty, cannot inherit it", parent.display());
                        }
                        fsutil::write(dir, f, v.trim())?;
                    }
                }
            }
            Ok(())
        })?;
        fsutil::write(&h.path, "cgroup.procs", &pid.to_string())?;
        done.push(&h.path);
    }
    Ok(())
}

/// Write `r` into the hierarchies. `with_devices`: also (re)write the device rules (not on `update`,
/// which leaves them alone as runc does).
pub(crate) fn apply(
    v1: &BTreeMap<String, Hierarchy>,
    r: &LinuxResources,
    unified_dir: Option<&Path>,
    with_devices: bool,
) -> Result<()> {
    if let Some(cpu) = r.cpu() {
        if let Some(d) = dir(v1, "cpu") {
            apply_cpu(d, cpu)?;
        }
        if let Some(d) = dir(v1, "cpuset") {
            if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
                fsutil::write(d, "cpuset.cpus", c)?;
            }
            if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
                fsutil::write(d, "cpuset.mems", m)?;
            }
        }
    }
    if let (Some(m), Some(d)) = (r.memory(), dir(v1, "memory")) {
        apply_memory(d, m)?;
    }
    if let (Some(p), Some(d)) = (r.pids(), dir(v1, "pids")) {
        fsutil::write(d, "pids.max", &super::pids_max(p.limit()))?;
    }
    if let (Some(b), Some(d)) = (r.block_io(), dir(v1, "blkio")) {
        apply_blkio(d, b)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        for l in limits {
            if let Some(d) = dir(v1, "hugetlb") {
                fsutil::write(
                    d,
                    &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
                    &l.limit().to_string(),
                )?;
                let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size());
                if d.join(&rsvd).exists() {
                    fsutil::write(d, &rsvd, &l.limit().to_string())?;
                }
            } else if let Some(u) = unified_dir {
                super::v2::write_hugetlb(u, l)?;
            }
        }
    }
    if let Some(n) = r.network() {
        if let (Some(id), Some(d)) = (n.class_id(), dir(v1, "net_cls")) {
            fsutil::write(d, "net_cls.classid", &id.to_string())?;
        }
        if let (Some(prios), Some(d)) = (n.priorities(), dir(v1, "net_prio")) {
            for p in prios {
                fsutil::write(
                    d,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
    }
    if let (Some(rdma), Some(d)) = (r.rdma(), dir(v1, "rdma")) {
        super::write_rdma(d, rdma)?;
    }
    if let Some(d) = dir(v1, "devices").filter(|_| with_devices) {
        // Like runc's device emulator, start from deny-all whatever the rules say: without this a
        // new cgroup inherits "a *:* rwm" and allow rules would restrict nothing.
        fsutil::write(d, "devices.deny", "a *:* rwm")?;
        for rule in devices::effective_rules(r.devices().as_ref()) {
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            fsutil::write(d, file, &devices::v1_line(&rule))?;
        }
    }
    Ok(())
}

fn apply_cpu(d: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        fsutil::write(d, "cpu.shares", &shares.to_string())?;
        // The kernel clamps silently; report it like runc does.
        let got = fsutil::read_u64(d, "cpu.shares")?;
        if got != shares {
            bail!(
                "linux.resources.cpu.shares: {shares} is out of the kernel's range (it set {got})"
            );
        }
    }
    let period = cpu.period().filter(|p| *p != 0);
    let quota = cpu.quota().filter(|q| *q != 0);
    if let Some(p) = period {
        // A new period can be refused while the old quota does not fit it; then set quota first.
        match fsutil::write_raw(d, "cpu.cfs_period_us", &p.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(Errno::EINVAL as i32) && quota.is_some() => {
                fsutil::write(d, "cpu.cfs_quota_us", &quota.unwrap_or(-1).to_string())?;
                fsutil::write(d, "cpu.cfs_period_us", &p.to_string())?;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot write {p} to {}/cpu.cfs_period_us", d.display())
                })
            }
        }
    }
    if let Some(q) = quota {
        fsutil::write(d, "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(b) = cpu.burst() {
        fsutil::write(d, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = cpu.realtime_period().filter(|p| *p != 0) {
        fsutil::write(d, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(rt) = cpu.realtime_runtime().filter(|r| *r != 0) {
        fsutil::write(d, "cpu.rt_runtime_us", &rt.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        fsutil::write(d, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

fn set_memory_limit(d: &Path, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    match fsutil::write_raw(d, "memory.limit_in_bytes", &limit.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) => {
            let usage = fsutil::read_u64(d, "memory.usage_in_bytes").unwrap_or(0);
            let peak = fsutil::read_u64(d, "memory.max_usage_in_bytes").unwrap_or(0);
            bail!(
                "linux.resources.memory.limit: cannot set {limit} in {}: current usage {usage}, peak {peak}",
                d.display()
            )
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot write {limit} to {}/memory.limit_in_bytes",
                d.display()
            )
        }),
    }
}

fn set_swap_limit(d: &Path, swap: i64) -> Result<()> {
    if swap == 0 {
        return Ok(());
    }
    fsutil::write(d, "memory.memsw.limit_in_bytes", &swap.to_string())
}

fn apply_memory(d: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // Unlimited memory without an explicit swap value means unlimited swap too (if accounted).
    if limit == -1 && swap == 0 && d.join("memory.memsw.limit_in_bytes").exists() {
        swap = -1;
    }
    let mut done = false;
    if limit != 0 && swap != 0 {
        // Order the two writes so that memory <= memory+swap holds at every step.
        let cur = fsutil::read_u64(d, "memory.limit_in_bytes")?;
        if swap == -1 || cur < swap as u64 {
            set_swap_limit(d, swap)?;
            set_memory_limit(d, limit)?;
            done = true;
        }
    }
    if !done {
        set_memory_limit(d, limit)?;
        set_swap_limit(d, swap)?;
    }
    if let Some(res) = m.reservation().filter(|r| *r != 0) {
        fsutil::write(d, "memory.soft_limit_in_bytes", &res.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fsutil::write(d, "memory.oom_control", "1")?;
    }
    if let Some(sw) = m.swappiness() {
        fsutil::write(d, "memory.swappiness", &sw.to_string())?;
    }
    // kernel / kernelTCP: ignored, as runc 1.1 does (deprecated; kmem accounting is always on).
    Ok(())
}

/// The blkio weight file this kernel has (CFQ's blkio.weight or BFQ's blkio.bfq.weight).
pub(crate) fn blkio_weight_files(d: &Path) -> Option<(&'static str, &'static str)> {
    if d.join("blkio.weight").exists() {
        Some(("blkio.weight", "blkio.weight_device"))
    } else if d.join("blkio.bfq.weight").exists() {
        Some(("blkio.bfq.weight", "blkio.bfq.weight_device"))
    } else {
        None
    }
}

fn apply_blkio(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let files = blkio_weight_files(d);
    // Without a weight file (no CFQ/BFQ), `check` warned that the weight is ignored.
    if let (Some(w), Some((wf, _))) = (b.weight().filter(|w| *w != 0), files) {
        fsutil::write(d, wf, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        fsutil::write(d, "blkio.leaf_weight", &w.to_string())?;
    }
    if let Some(wds) = b.weight_device() {
        for wd in wds {
            if let Some(w) = wd.weight() {
                let (_, wdf) =
                    files.context("linux.resources.blockIO.weightDevice: no blkio weight file")?;
                fsutil::write(d, wdf, &format!("{}:{} {w}", wd.major(), wd.minor()))?;
            }
            if let Some(w) = wd.leaf_weight() {
                fsutil::write(
                    d,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (list, file) in throttles {
        for t in list.iter().flatten() {
            fsutil::write(
                d,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

pub(crate) fn freeze(d: &Path) -> Result<()> {
    // FREEZING can persist while tasks are busy in the kernel; keep asking (runc does the same,
    // thawing briefly now and then to let stuck tasks make progress).
    let start = Instant::now();
    let mut i = 0u32;
    let res = loop {
        if i % 50 == 49 {
            let _ = fsutil::write_raw(d, "freezer.state", "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Err(e) = fsutil::write(d, "freezer.state", "FROZEN") {
            break Err(e);
        }
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_millis(10));
        }
        match fsutil::read(d, "freezer.state") {
            Ok(s) if s.trim() == "FROZEN" => break Ok(()),
            Ok(s) if s.trim() == "FREEZING" => {}
            Ok(s) => break Err(anyhow::anyhow!("unexpected freezer state {:?}", s.trim())),
            Err(e) => break Err(e),
        }
        if start.elapsed() > Duration::from_secs(10) {
            break Err(anyhow::anyhow!(
                "{} stayed FREEZING for 10s",
                d.join("freezer.state").display()
            ));
        }
        i += 1;
    };
    if res.is_err() {
        // never leave a half-frozen container behind
        let _ = fsutil::write_raw(d, "freezer.state", "THAWED");
    }
    res
}

pub(crate) fn thaw(d: &Path) -> Result<()> {
    fsutil::write(d, "freezer.state", "THAWED")
}

/// Frozen (or being frozen) by its own freezer.state, as runc tells it: a cgroup frozen only
/// because an ancestor is (freezer.self_freezing 0) is not paused.
pub(crate) fn is_frozen(d: &Path) -> Result<bool> {
    match fsutil::read(d, "freezer.state")?.trim() {
        "THAWED" => Ok(false),
        "FROZEN" | "FREEZING" => match fsutil::read_opt(d, "freezer.self_freezing")? {
            Some(s) => Ok(s.trim() == "1"),
            // kernels without self_freezing: count it as ours
            None => Ok(true),
        },
        other => bail!(
            "unexpected freezer state {other:?} in {}",
            d.join("freezer.state").display()
        ),
    }
}

/// The directory used to list processes: runc uses the devices hierarchy; fall back to any.
pub(crate) fn pids_dir(v1: &BTreeMap<String, Hierarchy>) -> Option<PathBuf> {
    [
        "devices",
        "freezer",
        "pids",
        "memory",
        "cpu",
        "cpuacct",
        "cpuset",
        "blkio",
        "name=systemd",
    ]
    .iter()
    .find_map(|c| dir(v1, c))
    .map(Path::to_path_buf)
    .or_else(|| v1.values().next().map(|h| h.path.clone()))
}
