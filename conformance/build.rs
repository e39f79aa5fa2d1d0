//! Decides, at compile time, which conformance tests libtest reports as ignored.
//!
//! libtest reads `#[ignore]` when the test binary is compiled, so a test that cannot run here (the
//! runtime under test is not berth, or the host lacks what the test needs) is marked with
//! `#[cfg_attr(not(<cfg>), ignore = "why")]` on one of the cfgs below: it then shows as
//! `ignored, why` in cargo test's summary instead of passing without checking anything.
//!
//! - `berth_runtime`: the runtime under test is berth (the `berth_only_` tests run).
//! - `host_cgroup_v2`: `/sys/fs/cgroup` is a pure cgroup2 (unified) mount.
//! - `host_cgroup_<controller>`: the host has that controller (on v2: in
//!   `/sys/fs/cgroup/cgroup.controllers`; on v1/hybrid: a hierarchy under `/sys/fs/cgroup` named
//!   after it).
//! - `host_hugetlb_managed`: hugetlb is where a cgroup manager applies it (a pure v2 host, or a
//!   v1 hugetlb hierarchy; not a hybrid host's unified hierarchy only).
//! - `host_block_device`: a whole disk in `/sys/block` (not loop, not zram).
//! - `host_blkio_weight`: on cgroup v1, a container's blkio cgroup has `blkio.weight` or
//!   `blkio.bfq.weight`.
//! - `host_hugepages_2m`: the kernel has 2 MB huge pages.
//! - `host_two_cpus`: this process may run on two CPUs or more (`Cpus_allowed_list`).
//! - `host_systemd`: systemd runs on this host (`/run/systemd/system`).
//! - `host_apparmor`, `host_selinux`: the LSM is enabled on this host.
//!
//! Each probe is the one the tests used at run time before; the tests still check their condition
//! and fail, not pass, if the host changed under a binary built elsewhere.

use std::fs;
use std::path::{Path, PathBuf};

/// Every controller a cgroup v1 or v2 host may have: one `host_cgroup_<name>` cfg each.
const CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "io",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

const FACTS: &[&str] = &[
    "berth_runtime",
    "host_cgroup_v2",
    "host_hugetlb_managed",
    "host_block_device",
    "host_blkio_weight",
    "host_hugepages_2m",
    "host_two_cpus",
    "host_systemd",
    "host_apparmor",
    "host_selinux",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RUNTIME");
    println!("cargo::rerun-if-env-changed=CONFORMANCE_STRICT");
    for name in FACTS {
        println!("cargo::rustc-check-cfg=cfg({name})");
    }
    for c in CONTROLLERS {
        println!("cargo::rustc-check-cfg=cfg(host_cgroup_{c})");
    }

    let mut watch: Vec<PathBuf> = Vec::new();
    let set = |name: &str, on: bool| {
        if on {
            println!("cargo::rustc-cfg={name}");
        }
    };

    set("berth_runtime", runtime_is_berth());

    let v2 = cgroup_v2();
    set("host_cgroup_v2", v2);
    if v2 {
        watch.push("/sys/fs/cgroup/cgroup.controllers".into());
    } else {
        for h in cgroup_hierarchies() {
            // cgroup.clone_children (v1) and cgroup.controllers (a hybrid host's unified
            // hierarchy) are files nobody writes: their mtime is the boot's.
            watch.push(h.join("cgroup.clone_children"));
            watch.push(h.join("cgroup.controllers"));
        }
    }
    for c in CONTROLLERS {
        set(&format!("host_cgroup_{c}"), has_controller(v2, c));
    }
    set(
        "host_hugetlb_managed",
        v2 || has_controller(false, "hugetlb"),
    );

    let dev = block_device();
    if let Some((name, _)) = &dev {
        watch.push(Path::new("/sys/block").join(name).join("dev"));
    }
    set("host_block_device", dev.is_some());
    set("host_blkio_weight", !v2 && blkio_weight());

    set("host_hugepages_2m", hugepages_2m());
    watch.push("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages".into());

    set("host_two_cpus", allowed_cpus() >= 2);
    watch.push("/sys/devices/system/cpu/online".into());

    // Not watched: /run/systemd/system is rewritten with every transient unit (the whole directory
    // would be scanned); whether systemd runs only changes with a boot, which the sysfs files
    // watched here see (a boot recreates them).
    set("host_systemd", Path::new("/run/systemd/system").exists());

    set("host_apparmor", apparmor_enabled());
    watch.push("/sys/module/apparmor/parameters/enabled".into());
    set("host_selinux", selinux_enabled());
    watch.push("/sys/fs/selinux/enforce".into());

    // A path that does not exist would rerun this script on every build: only existing files are
    // watched (files, not directories: cargo scans a directory recursively).
    for p in watch {
        if p.is_file() {
            println!("cargo::rerun-if-changed={}", p.display());
        }
    }
}

/// The rule of `is_berth()` before it moved here: `RUNTIME` unset or empty means the workspace's
/// berth; otherwise the file name of the runtime it names (a path, canonicalised, or a name looked
/// up in `PATH`) contains "berth". `CONFORMANCE_STRICT` holds any runtime to the berth-only tests.
fn runtime_is_berth() -> bool {
    if std::env::var_os("CONFORMANCE_STRICT").is_some() {
        return true;
    }
    let r = match std::env::var("RUNTIME") {
        Ok(r) if !r.is_empty() => r,
        _ => return true,
    };
    let path = if r.contains('/') {
        fs::canonicalize(&r).unwrap_or_else(|_| PathBuf::from(&r))
    } else {
        std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(&r))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| PathBuf::from(&r))
    };
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains("berth"))
}

/// As `conformance::cgroup_v2`.
fn cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// As `conformance::cgroup_hierarchies` on a v1/hybrid host.
fn cgroup_hierarchies() -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default()
}

/// As `has_controller` in tests/cgroups.rs (and `controllers` in tests/cli.rs).
fn has_controller(v2: bool, ctrl: &str) -> bool {
    if v2 {
        fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == ctrl))
    } else {
        cgroup_hierarchies().iter().any(|h| {
            h.file_name()
                .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == ctrl))
        })
    }
}

/// The whole disk `block_io_throttle` uses: (name in /sys/block, "major:minor").
fn block_device() -> Option<(String, String)> {
    fs::read_dir("/sys/block")
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            !e.file_name().to_string_lossy().starts_with("loop")
                && !e.file_name().to_string_lossy().starts_with("zram")
        })
        .find_map(|e| {
            fs::read_to_string(e.path().join("dev")).ok().map(|s| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    s.trim().to_string(),
                )
            })
        })
}

/// Whether a container's blkio cgroup (a child of the blkio hierarchy's root, where the weight
/// files live: the root has none) has `blkio.weight` or `blkio.bfq.weight`. Probed in a child
/// made and removed here; without the right to make one, in the children that exist.
fn blkio_weight() -> bool {
    let Some(h) = cgroup_hierarchies().into_iter().find(|h| {
        h.file_name()
            .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == "blkio"))
    }) else {
        return false;
    };
    let has = |d: &Path| d.join("blkio.weight").exists() || d.join("blkio.bfq.weight").exists();
    let probe = h.join(format!("conformance-build-probe-{}", std::process::id()));
    if fs::create_dir(&probe).is_ok() {
        let found = has(&probe);
        let _ = fs::remove_dir(&probe);
        return found;
    }
    fs::read_dir(&h)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .any(|p| p.is_dir() && has(&p))
        })
        .unwrap_or(false)
}

/// As `hugepage_limits`: an entry `hugepages-2048kB` in /sys/kernel/mm/hugepages.
fn hugepages_2m() -> bool {
    fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy() == "hugepages-2048kB")
        })
        .unwrap_or(false)
}

/// As `berth_only_exec_cpu_affinity`: the CPUs of this process's `Cpus_allowed_list`.
fn allowed_cpus() -> usize {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(list) = status.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.trim() == "Cpus_allowed_list")
            .map(|(_, v)| v.trim().to_string())
    }) else {
        return 0;
    };
    let mut n = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => usize::from(part.parse::<usize>().is_ok()),
        };
    }
    n
}

/// As `apparmor_enabled` in tests/escapes.rs.
fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// As `selinux_enabled` in tests/escapes.rs.
fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}
