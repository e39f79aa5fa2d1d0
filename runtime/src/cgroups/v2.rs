//! cgroup v2 (runc 1.1 libcontainer/cgroups/fs2 semantics).
//!
//! Creation/joining and freezing go through libcgroups' v2 Manager. Resource writes are done here:
//! libcgroups' `Manager::apply` always runs its eBPF device step, which first raises
//! RLIMIT_MEMLOCK to 128 MiB (fails without CAP_SYS_RESOURCE when the hard limit is lower, as on
//! this host) and appends a /dev/console (5:1) allow rule that runc 1.1 does not have. The device
//! filter is still built by libcgroups (emulator + program + bpf), just without those two steps.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcgroups::common::{CgroupManager, FreezerState};
use oci_spec::runtime::{LinuxHugepageLimit, LinuxResources};

use super::{devices, fsutil};

pub(crate) fn manager(mount: &Path, dir: &Path) -> Result<libcgroups::v2::manager::Manager> {
    let rel = dir.strip_prefix(mount).with_context(|| {
        format!(
            "{} is not below the cgroup2 mount {}",
            dir.display(),
            mount.display()
        )
    })?;
    libcgroups::v2::manager::Manager::new(mount.to_path_buf(), rel.to_path_buf())
        .with_context(|| format!("cgroup2 manager for {}", dir.display()))
}

/// Create the cgroup (enabling every available controller on the way down) and move `pid` in.
pub(crate) fn add(mount: &Path, dir: &Path, pid: i32) -> Result<()> {
    let manager = manager(mount, dir)?;
    // libcgroups checks `exists()` and then fails on EEXIST: two containers made at once
    // under one new parent race there. Create the levels first, tolerating EEXIST, and enable the
    // controllers on the way down (libcgroups skips that for a directory that exists).
    fsutil::mkdir_below(mount, dir, |parent, _| {
        enable_controllers(parent);
        Ok(())
    })?;
    manager
        .add_task(nix::unistd::Pid::from_raw(pid))
        .with_context(|| format!("cannot add pid {pid} to cgroup {}", dir.display()))
}

/// Enable in `dir`'s cgroup.subtree_control every controller it has that is not enabled yet, one by
/// one (best effort, as libcgroups and runc: a limit that needs a controller that could not be
/// enabled fails when it is written, naming the file).
fn enable_controllers(dir: &Path) {
    let read = |f: &str| fsutil::read_opt(dir, f).ok().flatten().unwrap_or_default();
    let (have, enabled) = (read("cgroup.controllers"), read("cgroup.subtree_control"));
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for c in have.split_whitespace().filter(|c| !enabled.contains(c)) {
        if let Err(e) = fsutil::write_raw(dir, "cgroup.subtree_control", &format!("+{c}")) {
            crate::debug!(
                "cannot enable {c} in {}/cgroup.subtree_control: {e}",
                dir.display()
            );
        }
    }
}

/// Controllers a cgroup at `dir` can have: those listed by its nearest existing ancestor
/// (the cgroup itself may not exist yet).
pub(crate) fn available_controllers(mount: &Path, dir: &Path) -> Result<Vec<String>> {
    let mut cur: PathBuf = dir.parent().unwrap_or(mount).to_path_buf();
    loop {
        if let Some(s) = fsutil::read_opt(&cur, "cgroup.controllers")? {
            return Ok(s.split_whitespace().map(str::to_string).collect());
        }
        if cur == mount || !cur.pop() {
            bail!("no cgroup.controllers above {}", dir.display());
        }
    }
}

/// cpu.weight for cpu.shares, as current runc, crun and youki convert it (runc#4772,
/// kubernetes#131216): a quadratic in log2 space through (2, 1), (1024, 100) and (262144, 10000),
/// so that the default 1024 shares give the default weight 100 (the old linear formula gave 39).
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

fn num_or_max(v: i64) -> Option<String> {
    match v {
        0 => None,
        v if v < 0 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

pub(crate) fn write_hugetlb(d: &Path, l: &LinuxHugepageLimit) -> Result<()> {
    let v = l.limit().to_string();
    fsutil::write(d, &format!("hugetlb.{}.max", l.page_size()), &v)?;
    let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
    if d.join(&rsvd).exists() {
        fsutil::write(d, &rsvd, &v)?;
    }
    Ok(())
}

/// runc's cgroups.ConvertMemorySwapToCgroupV2Value (1.2.1+): OCI swap is memory+swap, v2 wants swap
/// only. Unlimited memory without a swap value means unlimited swap; with one, the value is the
/// swap limit as it is (there is no memory limit to take off it).
pub(crate) fn swap_v2(swap: i64, limit: i64) -> Result<Option<String>> {
    match swap {
        0 if limit == -1 => Ok(Some("max".into())),
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        _ if limit == -1 => Ok(Some(swap.to_string())),
        _ if limit == 0 => {
            bail!("linux.resources.memory.swap: cannot set a swap limit without a memory limit")
        }
        _ if swap < limit => bail!(
            "linux.resources.memory.swap: memory+swap limit {swap} is below the memory limit {limit}"
        ),
        _ => Ok(Some((swap - limit).to_string())),
    }
}

/// Write `r` into the cgroup. `with_devices`: also replace the device filter (not on `update`).
pub(crate) fn apply(d: &Path, r: &LinuxResources, with_devices: bool) -> Result<()> {
    if let Some(p) = r.pids() {
        fsutil::write(d, "pids.max", &super::pids_max(p.limit()))?;
    }
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if let Some(v) = swap_v2(m.swap().unwrap_or(0), limit)? {
            match fsutil::write_raw(d, "memory.swap.max", &v) {
                Ok(()) => {}
                // no swap accounting: "unlimited" needs no write
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && v == "max" => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot write {v:?} to {}/memory.swap.max", d.display())
                    })
                }
            }
        }
        if let Some(v) = num_or_max(limit) {
            if m.check_before_update() == Some(true) && limit > 0 {
                let cur = fsutil::read_u64(d, "memory.current")?;
                if (limit as u64) < cur {
                    bail!(
                        "linux.resources.memory.limit: {limit} is below the current usage {cur} (checkBeforeUpdate)"
                    );
                }
            }
            fsutil::write(d, "memory.max", &v)?;
        }
        if let Some(v) = m.reservation().and_then(num_or_max) {
            fsutil::write(d, "memory.low", &v)?;
        }
    }
    if let Some(b) = r.block_io() {
        let bfq = d.join("io.bfq.weight").exists();
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            if bfq {
                fsutil::write(d, "io.bfq.weight", &w.to_string())?;
            } else {
                // runc's ConvertBlkIOToIOWeightValue: [10, 1000] -> [1, 10000]
                let v = 1 + (u64::from(w).saturating_sub(10)) * 9999 / 990;
                fsutil::write(d, "io.weight", &v.to_string())?;
            }
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                fsutil::write(
                    d,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
        }
        let throttles = [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ];
        for (list, key) in throttles {
            for t in list.iter().flatten() {
                let rate = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                fsutil::write(
                    d,
                    "io.max",
                    &format!("{}:{} {key}={rate}", t.major(), t.minor()),
                )?;
            }
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(idle) = cpu.idle() {
            fsutil::write(d, "cpu.idle", &idle.to_string())?;
        }
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fsutil::write(d, "cpu.weight", &cpu_weight(shares).to_string())?;
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                v.push_str(&format!(" {period}"));
            }
            fsutil::write(d, "cpu.max", &v)?;
        }
        if let Some(b) = cpu.burst() {
            fsutil::write(d, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            fsutil::write(d, "cpuset.cpus", c)?;
        }
        if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            fsutil::write(d, "cpuset.mems", m)?;
        }
    }
    for l in r.hugepage_limits().iter().flatten() {
        write_hugetlb(d, l)?;
    }
    if let Some(rdma) = r.rdma() {
        super::write_rdma(d, rdma)?;
    }
    if let Some(u) = r.unified() {
        apply_unified(d, u)?;
    }
    if with_devices {
        apply_devices(d, &devices::effective_rules(r.devices().as_ref()))?;
    }
    Ok(())
}

fn apply_unified(d: &Path, u: &HashMap<String, String>) -> Result<()> {
    // deterministic order, so errors are reproducible
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        super::check_unified_key(k)?;
        fsutil::write(d, k, &u[k]).with_context(|| format!("linux.resources.unified[{k:?}]"))?;
    }
    Ok(())
}

/// Build the eBPF device filter from `rules` (runc order: last matching rule wins, default deny)
/// and replace whatever filter the cgroup had. The new program is attached before the old ones
/// are detached, so there is never a moment without a filter.
pub(crate) fn apply_devices(
    d: &Path,
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<()> {
    use libcgroups::v2::devices::{bpf::prog, emulator::Emulator, program::Program};

    let mut em = Emulator::with_default_allow(false);
    em.add_rules(&devices::normalized(rules));
    let program = Program::from_rules(&em.rules, em.default_allow)
        .context("cannot build the eBPF device filter")?;
    let dirfd = std::fs::File::open(d)
        .with_context(|| format!("cannot open cgroup {} for the device filter", d.display()))?;
    let cg = dirfd.as_raw_fd();
    let old = prog::query(cg)
        .with_context(|| format!("BPF_PROG_QUERY (cgroup device) on {}", d.display()))?;
    let close_all = |old: &[libcgroups::v2::devices::bpf::ProgramInfo]| {
        for p in old {
            let _ = nix::unistd::close(p.fd);
        }
    };
    let fd = match prog::load("Apache", program.bytecodes()) {
        Ok(fd) => fd,
        Err(e) => {
            close_all(&old);
            return Err(anyhow::anyhow!(e)).context("BPF_PROG_LOAD of the device filter");
        }
    };
    let res = prog::attach(fd, cg)
        .with_context(|| format!("BPF_PROG_ATTACH of the device filter to {}", d.display()))
        .and_then(|()| {
            for p in &old {
                prog::detach2(p.fd, cg).with_context(|| {
                    format!(
                        "BPF_PROG_DETACH of old device filter {} from {}",
                        p.id,
                        d.display()
                    )
                })?;
            }
            Ok(())
        });
    let _ = nix::unistd::close(fd);
    close_all(&old);
    res
}

pub(crate) fn freeze(mount: &Path, dir: &Path, state: FreezerState) -> Result<()> {
    manager(mount, dir)?
        .freeze(state)
        .with_context(|| format!("cannot set freezer state {state:?} on {}", dir.display()))
}

pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fsutil::read(dir, "cgroup.freeze")?.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_weight_is_runcs_log_quadratic() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 100);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert!(cpu_weight(512) < 100 && cpu_weight(2048) > 100);
    }

    #[test]
    fn swap_with_unlimited_memory_is_taken_as_it_is() {
        assert_eq!(swap_v2(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_v2(1 << 20, -1).unwrap().as_deref(), Some("1048576"));
        assert_eq!(
            swap_v2(3 << 20, 1 << 20).unwrap().as_deref(),
            Some("2097152")
        );
        assert!(swap_v2(1 << 20, 0).is_err());
        assert_eq!(swap_v2(0, 5).unwrap(), None);
    }
}
