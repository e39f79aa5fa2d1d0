//! Fields of runtime-spec 1.1/1.2 that runc 1.1 does not implement
//! (personality, ioPriority, scheduler, time namespace, memoryPolicy,
//! execCPUAffinity, intelRdt). runc ignores them silently, so these are
//! berth_only: the checks are of the spec, and would fail on runc 1.1.

use conformance::*;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores linux.personality"
)]
fn berth_only_personality_linux32() {
    let mut b = bundle("persona");
    b.set("/linux/personality", json!({"domain": "LINUX32"}));
    b.args(&["uname", "-m"]);
    assert_eq!(b.run_ok().stdout.trim(), "i686");
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores process.ioPriority"
)]
fn berth_only_io_priority() {
    let mut b = bundle("ioprio");
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_BE", "priority": 5}),
    );
    b.sh("ionice -p $$");
    assert_eq!(b.run_ok().stdout.trim(), "best-effort: prio 5");
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores process.ioPriority"
)]
fn berth_only_io_priority_idle() {
    let mut b = bundle("ioprioidle");
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
    );
    b.sh("ionice -p $$");
    assert_eq!(b.run_ok().stdout.trim(), "idle");
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores process.scheduler"
)]
fn berth_only_scheduler_policy_and_nice() {
    let mut b = bundle("sched");
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 7}),
    );
    // /proc/self/stat: field 19 is nice, field 41 is the policy (SCHED_BATCH = 3).
    b.sh("cut -d' ' -f19,41 /proc/$$/stat");
    assert_eq!(b.run_ok().stdout.trim(), "7 3");
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no time namespace support"
)]
fn berth_only_time_namespace_offsets() {
    let mut b = bundle("timens");
    b.namespace("time", None);
    b.set(
        "/linux/timeOffsets",
        json!({"monotonic": {"secs": 864000, "nanosecs": 0}, "boottime": {"secs": 1728000, "nanosecs": 0}}),
    );
    b.sh("cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        ["monotonic", "864000", "0"],
        "{o:?}"
    );
    assert_eq!(
        l[1].split_whitespace().collect::<Vec<_>>(),
        ["boottime", "1728000", "0"],
        "{o:?}"
    );
    let up: u64 = l[2].parse().unwrap();
    assert!(
        up >= 1728000,
        "uptime {up} does not include the boottime offset"
    );
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no time namespace support"
)]
fn berth_only_time_namespace_without_offsets_is_new() {
    let mut b = bundle("timensnew");
    b.namespace("time", None);
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap().to_string();
    assert_ne!(ns_link(&pid, "time"), ns_link("self", "time"));
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores linux.memoryPolicy"
)]
fn berth_only_memory_policy() {
    // numa_maps shows each mapping's policy: the process's own, inherited across execve.
    for (policy, shown) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "interleave=static:0",
        ),
    ] {
        let mut b = bundle("mempolicy");
        b.set("/linux/memoryPolicy", policy.clone());
        b.sh("cut -d' ' -f2 /proc/self/numa_maps | sort -u");
        let o = b.run_ok();
        assert_eq!(o.lines(), [shown], "{policy}: {o:?}");
    }
    // Without one, the default policy.
    let mut b = bundle("mempolicynone");
    b.sh("cut -d' ' -f2 /proc/self/numa_maps | sort -u");
    assert_eq!(b.run_ok().lines(), ["default"]);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores linux.memoryPolicy"
)]
fn berth_only_memory_policy_on_a_missing_node_fails() {
    let mut b = bundle("mempolicybad");
    // No machine here has node 63 online.
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "63"}),
    );
    let id = b.new_id();
    b.create(&id).fails_naming(&["linux.memoryPolicy"]);
    b.assert_nothing_left(&id);
}

/// Cpus_allowed_list of a /proc/PID/status text.
fn cpus_allowed(status: &str) -> String {
    status_map(status)
        .get("Cpus_allowed_list")
        .cloned()
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores process.execCPUAffinity"
)]
#[cfg_attr(
    all(berth_runtime, not(host_two_cpus)),
    ignore = "execCPUAffinity needs two CPUs"
)]
fn berth_only_exec_cpu_affinity() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let own = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    let cpus = conformance_cpus(&own);
    assert!(
        cpus.len() >= 2,
        "execCPUAffinity needs two CPUs (online {online}, ours {own}); the test binary was built \
         where there were two: rebuild it"
    );
    let (first, second) = (cpus[0].to_string(), cpus[1].to_string());
    let mut b = bundle("cpuaff");
    b.set(
        "/process/execCPUAffinity",
        json!({"initial": second, "final": first}),
    );
    b.args(&["sleep", "600"]);
    let id = b.new_id();
    b.run_id(&id, &["-d"]).ok();
    let pid = b.wait_status(&id, "running", T)["pid"].as_i64().unwrap();
    // "not applicable to the container's init process": it keeps the affinity it was born with.
    let init = cpus_allowed(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(init, own, "execCPUAffinity was applied to the init");

    // exec of the container's own process: final.
    let o = b.rt(&["exec", &id, "cat", "/proc/self/status"]);
    o.ok();
    assert_eq!(cpus_allowed(&o.stdout), first);

    let exec_with = |affinity: serde_json::Value| {
        let p = b.path().join("process.json");
        std::fs::write(
            &p,
            json!({"user": {"uid": 0, "gid": 0}, "args": ["cat", "/proc/self/status"], "cwd": "/",
                   "env": ["PATH=/bin:/usr/bin"], "execCPUAffinity": affinity})
            .to_string(),
        )
        .unwrap();
        let o = b.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
        o.ok();
        cpus_allowed(&o.stdout)
    };
    assert_eq!(exec_with(json!({"final": second})), second);
    // initial only: once in the container's cgroup, the container's default affinity (its init's).
    assert_eq!(exec_with(json!({"initial": second})), init);
}

/// The cpus of a list like "0-3,7".
fn conformance_cpus(list: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 fails on intelRdt only when resctrl is missing, with its own wording"
)]
fn berth_only_intel_rdt_is_refused_and_leaves_nothing() {
    let mut b = bundle("intelrdt");
    b.set(
        "/linux/intelRdt",
        json!({"closID": "berth-conformance", "l3CacheSchema": "L3:0=ff"}),
    );
    let id = b.new_id();
    b.create(&id).fails_naming(&["linux.intelRdt"]);
    b.assert_nothing_left(&id);
}
