//! config-linux.md: cgroupsPath and linux.resources, checked in the cgroup
//! files of the container's process (v1 file names on v1/hybrid hosts, v2 on
//! pure v2) and, where meaningful, from inside the container.

use conformance::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// Create (not start) a container with `resources`; returns (bundle, id, pid).
fn created_with(tag: &str, resources: Value) -> (Bundle, String, i32) {
    let mut b = bundle(tag);
    b.set("/linux/resources", resources);
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    (b, id, pid)
}

/// Read a cgroup file, v1 or v2 name depending on the host.
fn cg(pid: i32, ctrl: &str, v1: &str, v2: &str) -> String {
    if cgroup_v2() {
        cgroup_read(pid, ctrl, v2)
    } else {
        cgroup_read(pid, ctrl, v1)
    }
}

fn has_controller(ctrl: &str) -> bool {
    if cgroup_v2() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == ctrl))
    } else {
        cgroup_hierarchies().iter().any(|h| {
            h.file_name()
                .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == ctrl))
        })
    }
}

#[test]
fn absolute_cgroups_path_is_used() {
    let mut b = bundle("cgpath");
    b.args(&["sleep", "60"]);
    let id = b.new_id();
    let path = format!("/berth-conformance-abs-{id}");
    b.set("/linux/cgroupsPath", json!(path));
    b.create(&id).ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    for ctrl in ["pids", "memory", "cpu"] {
        let d = cgroup_dir_of(pid, ctrl).unwrap();
        assert!(
            d.ends_with(path.trim_start_matches('/')),
            "{ctrl} cgroup of the container is {} not {path}",
            d.display()
        );
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|p| p.trim() == pid.to_string()),
            "{pid} not in {}",
            d.display()
        );
    }
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    assert!(
        cgroup_dirs_existing(&path).is_empty(),
        "delete must remove the cgroups it created"
    );
}

#[test]
fn relative_cgroups_path_ends_the_container_cgroup() {
    let mut b = bundle("cgrel");
    b.args(&["sleep", "60"]);
    let id = b.new_id();
    let rel = format!("berth-conformance-rel-{id}");
    b.set("/linux/cgroupsPath", json!(rel));
    b.create(&id).ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    let d = cgroup_dir_of(pid, "pids").unwrap();
    let hier = cgroup_dir_of(1, "pids").unwrap();
    let full = d
        .strip_prefix(&hier)
        .map(|p| format!("/{}", p.display()))
        .unwrap_or_default();
    b.cleanup_cgroup(&full);
    assert!(
        d.ends_with(&rel),
        "relative cgroupsPath not honoured: {}",
        d.display()
    );
}

#[test]
fn memory_resources() {
    let limit: i64 = 64 << 20;
    let (_b, _id, pid) = created_with(
        "cgmem",
        json!({"memory": {"limit": limit, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 10, "disableOOMKiller": true}}),
    );
    assert_eq!(
        cg(pid, "memory", "memory.limit_in_bytes", "memory.max"),
        limit.to_string()
    );
    assert_eq!(
        cg(pid, "memory", "memory.soft_limit_in_bytes", "memory.low"),
        (32i64 << 20).to_string()
    );
    if cgroup_v2() {
        // v2 swap.max excludes memory: swap - limit
        assert_eq!(
            cgroup_read(pid, "memory", "memory.swap.max"),
            (64i64 << 20).to_string()
        );
    } else {
        assert_eq!(
            cgroup_read(pid, "memory", "memory.memsw.limit_in_bytes"),
            (128i64 << 20).to_string()
        );
        assert_eq!(cgroup_read(pid, "memory", "memory.swappiness"), "10");
        assert!(cgroup_read(pid, "memory", "memory.oom_control").contains("oom_kill_disable 1"));
    }
}

#[test]
fn memory_limit_is_enforced() {
    let mut b = bundle("cgmemoom");
    b.set(
        "/linux/resources/memory",
        json!({"limit": 16 << 20, "swap": 16 << 20}),
    );
    // tmpfs pages are charged to the writer's memory cgroup: 64MiB cannot fit.
    b.sh("dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; echo size=$(stat -c %s /dev/shm/fill)");
    let o = b.run();
    let size = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("size="))
        .map(|v| v.trim().parse::<u64>().unwrap_or(0));
    match size {
        Some(written) => assert!(
            written < 64 << 20,
            "64MiB written under a 16MiB limit: {o:?}"
        ),
        // the OOM killer may pick the shell itself
        None => assert_eq!(
            o.code,
            128 + 9,
            "container neither reported nor was OOM-killed: {o:?}"
        ),
    }
}

#[test]
fn cpu_resources() {
    let mut res = json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000}});
    let rt = !cgroup_v2() && std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists();
    if rt {
        res["cpu"]["realtimeRuntime"] = json!(10000);
        res["cpu"]["realtimePeriod"] = json!(1000000);
    }
    let (_b, _id, pid) = created_with("cgcpu", res);
    if cgroup_v2() {
        assert_eq!(cgroup_read(pid, "cpu", "cpu.max"), "50000 100000");
        // runc's shares->weight conversion: 1 + ((shares - 2) * 9999) / 262142
        assert_eq!(
            cgroup_read(pid, "cpu", "cpu.weight"),
            (1 + ((512 - 2) * 9999) / 262142).to_string()
        );
    } else {
        assert_eq!(cgroup_read(pid, "cpu", "cpu.shares"), "512");
        assert_eq!(cgroup_read(pid, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup_read(pid, "cpu", "cpu.cfs_period_us"), "100000");
        if rt {
            assert_eq!(cgroup_read(pid, "cpu", "cpu.rt_runtime_us"), "10000");
            assert_eq!(cgroup_read(pid, "cpu", "cpu.rt_period_us"), "1000000");
        }
    }
}

#[test]
fn cpuset_resources_and_affinity_inside() {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = if cpus > 1 { "1" } else { "0" };
    let mut b = bundle("cgcpuset");
    b.set("/linux/resources/cpu", json!({"cpus": cpu, "mems": "0"}));
    b.sh("grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status; sleep 60");
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(cg(pid, "cpuset", "cpuset.cpus", "cpuset.cpus"), cpu);
    assert_eq!(cg(pid, "cpuset", "cpuset.mems", "cpuset.mems"), "0");
    let st = status_map(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(st["Cpus_allowed_list"], cpu);
}

#[test]
fn pids_limit_on_host_and_inside() {
    let mut b = bundle("cgpids");
    b.set("/linux/resources/pids", json!({"limit": 42}));
    b.namespace("cgroup", None);
    b.sh("cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; sleep 60");
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "42");
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    let mut b2 = bundle("cgpidsin");
    b2.set("/linux/resources/pids", json!({"limit": 42}));
    b2.namespace("cgroup", None);
    b2.sh("cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max");
    assert_eq!(
        b2.run_ok().stdout.trim(),
        "42",
        "container's view of its own pids.max"
    );
}

#[test]
fn cgroup_mount_shows_the_container_cgroup_without_a_cgroup_namespace() {
    // Docker on a v1 host: no cgroup namespace; the cgroup mount must still show the container's own
    // cgroup (its limits), not the hierarchy's root.
    let mut b = bundle("cgnons");
    b.set("/linux/resources/pids", json!({"limit": 43}));
    b.set("/linux/resources/memory", json!({"limit": 50331648}));
    b.sh("cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
          cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max");
    assert_eq!(b.run_ok().lines(), ["43", "50331648"]);
}

#[test]
fn pids_limit_is_enforced() {
    let mut b = bundle("cgpidsenf");
    b.set("/linux/resources/pids", json!({"limit": 5}));
    // ash treats a failed fork as fatal; otherwise it reports how many started.
    b.sh("for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; jobs -p | wc -l");
    let o = b.run();
    let refused =
        o.stderr.contains("fork") || o.stderr.contains("Resource temporarily unavailable");
    let started: Option<u32> = o.stdout.trim().parse().ok();
    assert!(
        refused || started.is_some_and(|n| n < 8),
        "8 background processes started under pids.limit=5 (or the container never ran): {o:?}"
    );
}

#[test]
fn pids_unlimited() {
    let (_b, _id, pid) = created_with("cgpidsmax", json!({"pids": {"limit": -1}}));
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "max");
}

/// A real block device (whole disk) for the per-device rules: its "major:minor".
fn block_device() -> String {
    std::fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            !e.file_name().to_string_lossy().starts_with("loop")
                && !e.file_name().to_string_lossy().starts_with("zram")
        })
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|s| s.trim().to_string())
        .expect("no block device, but the test binary was built where there was one: rebuild it")
}

#[test]
#[cfg_attr(not(host_block_device), ignore = "no block device")]
fn block_io_throttle() {
    let dev = block_device();
    let (maj, min) = dev.split_once(':').unwrap();
    let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
    let (_b, _id, pid) = created_with(
        "cgblkio",
        json!({"blockIO": {
            "weight": 300,
            "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 300}]
        }}),
    );
    if cgroup_v2() {
        let max = cgroup_read(pid, "io", "io.max");
        assert!(
            max.contains(&format!("{dev} rbps=1048576")) && max.contains("wiops=300"),
            "{max}"
        );
        return;
    }
    assert_eq!(
        cgroup_read(pid, "blkio", "blkio.throttle.read_bps_device"),
        format!("{dev} 1048576")
    );
    assert_eq!(
        cgroup_read(pid, "blkio", "blkio.throttle.write_iops_device"),
        format!("{dev} 300")
    );
    // The weight file depends on the kernel (CFQ's blkio.weight, BFQ's blkio.bfq.weight):
    // checked in block_io_weight, where the build found one.
}

/// The weight of the config above, on its own: on cgroup v1 the kernel may have no weight file
/// (neither CFQ nor BFQ), which the build decides (`host_blkio_weight`).
#[test]
#[cfg_attr(
    host_cgroup_v2,
    ignore = "blkio.weight is a cgroup v1 file (the v2 check of blockIO is io.max)"
)]
#[cfg_attr(
    all(not(host_cgroup_v2), not(host_blkio_weight)),
    ignore = "no blkio weight file on this kernel"
)]
fn block_io_weight() {
    let (_b, _id, pid) = created_with("cgblkw", json!({"blockIO": {"weight": 300}}));
    let dir = cgroup_dir_of(pid, "blkio").unwrap();
    if dir.join("blkio.weight").exists() {
        assert_eq!(cgroup_read(pid, "blkio", "blkio.weight"), "300");
    } else if dir.join("blkio.bfq.weight").exists() {
        let w = cgroup_read(pid, "blkio", "blkio.bfq.weight");
        assert!(
            w.split_whitespace().any(|x| x == "300"),
            "blkio.bfq.weight = {w}"
        );
    } else {
        panic!(
            "no blkio weight file in {}, but the test binary was built where there was one: \
             rebuild it",
            dir.display()
        );
    }
}

// Without 2MB pages, or on a hybrid host with hugetlb only on the unified hierarchy (a v1 cgroup
// manager, runc's, cannot apply it there), the build marks this ignored.
#[test]
#[cfg_attr(not(host_hugepages_2m), ignore = "no 2MB huge pages")]
#[cfg_attr(
    all(host_hugepages_2m, not(host_hugetlb_managed)),
    ignore = "hugetlb controller not in a hierarchy the runtime manages (hybrid host)"
)]
fn hugepage_limits() {
    let sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        sizes.iter().any(|s| s == "hugepages-2048kB"),
        "no 2MB huge pages, but the test binary was built where there were: rebuild it"
    );
    assert!(
        cgroup_v2() || has_controller("hugetlb"),
        "no v1 hugetlb hierarchy, but the test binary was built where there was one: rebuild it"
    );
    let (_b, _id, pid) = created_with(
        "cghuge",
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2u64 << 30}]}),
    );
    let file = if cgroup_v2() {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    assert_eq!(cgroup_read(pid, "hugetlb", file), (2u64 << 30).to_string());
}

#[test]
#[cfg_attr(not(host_cgroup_net_cls), ignore = "no net_cls controller mounted")]
fn network_classid_and_priorities() {
    assert!(
        has_controller("net_cls"),
        "no net_cls controller mounted, but the test binary was built where there was: rebuild it"
    );
    let (_b, _id, pid) = created_with("cgnet", json!({"network": {"classID": 1048577}}));
    assert_eq!(cgroup_read(pid, "net_cls", "net_cls.classid"), "1048577");
}

#[test]
fn delete_removes_the_cgroups_it_created() {
    let (b, id, pid) = created_with("cgdel", json!({"pids": {"limit": 10}}));
    let dirs: Vec<_> = ["pids", "memory", "cpu", "devices"]
        .iter()
        .map(|c| cgroup_dir_of(pid, c).unwrap())
        .collect();
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    for d in dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
}
