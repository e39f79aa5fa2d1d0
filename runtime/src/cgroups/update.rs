//! `berth update` support: which resources can change on a live container, and a snapshot of the
//! files such a change writes, so that a value the kernel refuses half-way leaves the cgroup as it
//! was (runc only tries to re-apply its previous config, which misses files it never set).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxMemory, LinuxResources};

use super::fsutil;

/// The resource files an update can write, v1 and v2 names. A file is saved only in the
/// directories where it exists.
const FILES: &[&str] = &[
    // v1
    "cpu.shares",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.cfs_burst_us",
    "cpu.rt_period_us",
    "cpu.rt_runtime_us",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "blkio.weight",
    "blkio.bfq.weight",
    // v2
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "io.weight",
    "io.bfq.weight",
    // both
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
];

/// The part of `r` that `update` changes (runc 1.1's set): memory limit/reservation/swap/
/// checkBeforeUpdate, all of cpu, blockIO.weight, pids.limit and unified. Also returns the names
/// of the fields given in `r` that are left alone (device rules are never updated, as in runc).
pub fn split_updatable(r: &LinuxResources) -> (LinuxResources, Vec<&'static str>) {
    let mut ignored = Vec::new();
    let mut out = LinuxResources::default();
    if let Some(m) = r.memory() {
        let mut mm = LinuxMemory::default();
        mm.set_limit(m.limit());
        mm.set_reservation(m.reservation());
        mm.set_swap(m.swap());
        mm.set_check_before_update(m.check_before_update());
        #[allow(deprecated)]
        let kernel = m.kernel().is_some() || m.kernel_tcp().is_some();
        if kernel {
            ignored.push("memory.kernel/kernelTCP");
        }
        if m.swappiness().is_some() {
            ignored.push("memory.swappiness");
        }
        if m.disable_oom_killer().is_some() {
            ignored.push("memory.disableOOMKiller");
        }
        if m.use_hierarchy().is_some() {
            ignored.push("memory.useHierarchy");
        }
        out.set_memory(Some(mm));
    }
    out.set_cpu(r.cpu().clone());
    if let Some(b) = r.block_io() {
        let mut bb = LinuxBlockIo::default();
        bb.set_weight(b.weight());
        if b.leaf_weight().is_some()
            || b.weight_device().is_some()
            || b.throttle_read_bps_device().is_some()
            || b.throttle_write_bps_device().is_some()
            || b.throttle_read_iops_device().is_some()
            || b.throttle_write_iops_device().is_some()
        {
            ignored.push("blockIO (all but weight)");
        }
        out.set_block_io(Some(bb));
    }
    out.set_pids(*r.pids());
    out.set_unified(r.unified().clone());
    if r.devices().is_some() {
        ignored.push("devices");
    }
    if r.hugepage_limits().is_some() {
        ignored.push("hugepageLimits");
    }
    if r.network().is_some() {
        ignored.push("network");
    }
    if r.rdma().is_some() {
        ignored.push("rdma");
    }
    (out, ignored)
}

/// The content of every resource file an update of `r` may write, in `dirs`.
pub(crate) struct Snapshot {
    files: Vec<(PathBuf, String)>,
}

impl Snapshot {
    pub fn take(dirs: &[PathBuf], r: &LinuxResources) -> Result<Snapshot> {
        let unified: Vec<&str> = r
            .unified()
            .iter()
            .flat_map(|u| u.keys())
            .map(String::as_str)
            .collect();
        let mut files = Vec::new();
        for d in dirs {
            for name in FILES.iter().copied().chain(unified.iter().copied()) {
                if let Some(content) = fsutil::read_opt(d, name)? {
                    files.push((d.join(name), content));
                }
            }
        }
        Ok(Snapshot { files })
    }

    /// Write back every file whose content changed. Some values depend on each other (memory
    /// below memory+swap, cfs quota against period, rt runtime against period): a write the
    /// kernel refuses now is retried after the others, up to three rounds.
    pub fn restore(&self) -> Result<()> {
        let mut last_err = None;
        for _ in 0..3 {
            last_err = None;
            for (path, saved) in &self.files {
                let dir = path.parent().unwrap_or(Path::new("/"));
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let now = fsutil::read(dir, &name)?;
                if now.trim() == saved.trim() {
                    continue;
                }
                if let Err(e) = write_back(dir, &name, saved) {
                    last_err.get_or_insert(e);
                }
            }
            if last_err.is_none() {
                break;
            }
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Write a value as it was read: multi-line files (io.weight's per-device lines) one line per
/// write, v1's "unlimited" byte counts as -1, an empty value (v2 cpuset.cpus) as a newline.
fn write_back(dir: &Path, name: &str, saved: &str) -> Result<()> {
    let value = saved.trim();
    if value.is_empty() {
        return fsutil::write(dir, name, "\n");
    }
    if name.ends_with("limit_in_bytes") {
        if let Ok(v) = value.parse::<u64>() {
            // PAGE_COUNTER_MAX pages: what v1 shows for "no limit"
            if v >= 0x7FFF_FFFF_FFFF_F000 {
                return fsutil::write(dir, name, "-1");
            }
        }
    }
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        fsutil::write(dir, name, line)?;
    }
    let now = fsutil::read(dir, name)?;
    if now.trim() != value {
        bail!(
            "{} reads {:?} after writing back {value:?}",
            dir.join(name).display(),
            now.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runc_updatable_fields_are_kept() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":100,"swappiness":10},"cpu":{"shares":512},
                "blockIO":{"weight":300,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}]},
                "pids":{"limit":5},"devices":[{"allow":true,"access":"rwm"}],
                "hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
        )
        .unwrap();
        let (u, ignored) = split_updatable(&r);
        assert_eq!(u.memory().unwrap().limit(), Some(100));
        assert_eq!(u.memory().unwrap().swappiness(), None);
        assert_eq!(u.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(u.block_io().as_ref().unwrap().weight(), Some(300));
        assert!(u
            .block_io()
            .as_ref()
            .unwrap()
            .throttle_read_bps_device()
            .is_none());
        assert_eq!(u.pids().unwrap().limit(), 5);
        assert!(u.devices().is_none() && u.hugepage_limits().is_none());
        assert_eq!(
            ignored,
            [
                "memory.swappiness",
                "blockIO (all but weight)",
                "devices",
                "hugepageLimits"
            ]
        );
    }
}
