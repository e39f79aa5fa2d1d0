//! Fields of runtime-spec 1.1/1.2 that runc 1.1 does not implement
//! (personality, ioPriority, scheduler, time namespace). runc ignores them
//! silently, so these are berth_only: the checks are of the spec, and would
//! fail on runc 1.1.

use conformance::*;
use serde_json::json;

#[test]
fn berth_only_personality_linux32() {
    berth_only!("runc 1.1 ignores linux.personality");
    let mut b = bundle("persona");
    b.set("/linux/personality", json!({"domain": "LINUX32"}));
    b.args(&["uname", "-m"]);
    assert_eq!(b.run_ok().stdout.trim(), "i686");
}

#[test]
fn berth_only_io_priority() {
    berth_only!("runc 1.1 ignores process.ioPriority");
    let mut b = bundle("ioprio");
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_BE", "priority": 5}),
    );
    b.sh("ionice -p $$");
    assert_eq!(b.run_ok().stdout.trim(), "best-effort: prio 5");
}

#[test]
fn berth_only_io_priority_idle() {
    berth_only!("runc 1.1 ignores process.ioPriority");
    let mut b = bundle("ioprioidle");
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
    );
    b.sh("ionice -p $$");
    assert_eq!(b.run_ok().stdout.trim(), "idle");
}

#[test]
fn berth_only_scheduler_policy_and_nice() {
    berth_only!("runc 1.1 ignores process.scheduler");
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
fn berth_only_time_namespace_offsets() {
    berth_only!("runc 1.1 has no time namespace support");
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
fn berth_only_time_namespace_without_offsets_is_new() {
    berth_only!("runc 1.1 has no time namespace support");
    let mut b = bundle("timensnew");
    b.namespace("time", None);
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap().to_string();
    assert_ne!(ns_link(&pid, "time"), ns_link("self", "time"));
}
