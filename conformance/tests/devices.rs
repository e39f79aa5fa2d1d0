//! config-linux.md: default devices, /dev symlinks, linux.devices, and the
//! devices cgroup (linux.resources.devices).

use conformance::*;
use serde_json::json;

#[test]
fn default_devices_exist_with_the_right_numbers() {
    let mut b = bundle("defdev");
    b.sh("for d in null zero full random urandom tty; do echo $d=$(stat -c '%F %t:%T' /dev/$d); done; \
          echo ptmx=$(stat -L -c '%F' /dev/ptmx)");
    let o = b.run_ok();
    for (d, num) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        assert_eq!(
            o.kv(d),
            format!("character special file {num}"),
            "/dev/{d}: {o:?}"
        );
    }
    assert_eq!(o.kv("ptmx"), "character special file");
}

#[test]
fn default_devices_work() {
    let mut b = bundle("defdevio");
    b.sh("echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; \
          (echo x > /dev/full) 2>/dev/null || echo full-enospc");
    let o = b.run_ok();
    assert_eq!(o.lines(), ["null-ok", "4", "4", "full-enospc"]);
}

#[test]
fn dev_symlinks() {
    let mut b = bundle("devlinks");
    b.sh("for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done");
    let o = b.run_ok();
    assert_eq!(o.kv("fd"), "/proc/self/fd");
    assert_eq!(o.kv("stdin"), "/proc/self/fd/0");
    assert_eq!(o.kv("stdout"), "/proc/self/fd/1");
    assert_eq!(o.kv("stderr"), "/proc/self/fd/2");
    assert_eq!(o.kv("ptmx"), "pts/ptmx");
}

#[test]
fn dev_pts_allows_opening_ptys() {
    let mut b = bundle("devpts");
    // A pty pair from /dev/ptmx gets a node in /dev/pts.
    b.sh("exec 3<>/dev/ptmx && ls /dev/pts | grep -c '^[0-9]'");
    assert_eq!(b.run_ok().stdout.trim(), "1");
}

#[test]
fn linux_devices_are_created_with_type_numbers_mode_and_owner() {
    let mut b = bundle("devices");
    b.set(
        "/linux/devices",
        json!([
            {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 100},
            {"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/sub/conf-fifo", "type": "p", "fileMode": 0o620},
            {"path": "/dev/conf-bigminor", "type": "c", "major": 10, "minor": 666, "fileMode": 0o660}
        ]),
    );
    b.sh("for d in /dev/conf-null /dev/conf-loop /dev/sub/conf-fifo /dev/conf-bigminor; do echo $(basename $d)=$(stat -c '%F|%t:%T|%a|%u:%g' $d); done");
    let o = b.run_ok();
    assert_eq!(o.kv("conf-null"), "character special file|1:3|640|1000:100");
    assert_eq!(o.kv("conf-loop"), "block special file|7:c8|600|0:0");
    // minor > 255 needs the full dev_t encoding (666 = 0x29a)
    assert_eq!(
        o.kv("conf-bigminor"),
        "character special file|a:29a|660|0:0"
    );
    let fifo = o.kv("conf-fifo");
    assert!(
        fifo.starts_with("fifo|") && fifo.contains("|620|"),
        "{fifo}"
    );
}

// The devices cgroup is checked at open(2) before any driver: a denied device
// gives EPERM, an allowed one without a driver (major 240 is reserved for
// local/experimental use) gives ENXIO/ENODEV.

const OPEN_R: &str = "cat /tmp/dev240 >/dev/null 2>/tmp/r; cat /tmp/r";
const OPEN_W: &str = " (echo x > /tmp/dev240) 2>/tmp/w; cat /tmp/w";

#[test]
fn devices_cgroup_denies_unlisted_devices() {
    let mut b = bundle("devcgdeny");
    b.caps(&["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    b.sh(&format!("if mknod /tmp/dev240 c 240 0 2>/dev/null; then {OPEN_R}; else echo mknod: Operation not permitted; fi"));
    let o = b.run_ok();
    assert!(
        o.stdout.contains("Operation not permitted"),
        "device c 240:0 not denied: {o:?}"
    );
}

#[test]
fn devices_cgroup_allow_rule() {
    let mut b = bundle("devcgallow");
    b.caps(&["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    b.push(
        "/linux/resources/devices",
        json!({"allow": true, "type": "c", "major": 240, "minor": 0, "access": "rwm"}),
    );
    b.sh(&format!(
        "mknod /tmp/dev240 c 240 0 && echo mknod-ok; {OPEN_R}; {OPEN_W}"
    ));
    let o = b.run_ok();
    assert_eq!(o.lines()[0], "mknod-ok");
    assert!(
        !o.stdout.contains("Operation not permitted"),
        "allowed device refused: {o:?}"
    );
    assert!(o.stdout.contains("No such device"), "{o:?}");
}

#[test]
fn devices_cgroup_access_letters() {
    // Only read and mknod allowed: opening for write must be refused.
    let mut b = bundle("devcgaccess");
    b.caps(&["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    b.push(
        "/linux/resources/devices",
        json!({"allow": true, "type": "c", "major": 240, "minor": 0, "access": "rm"}),
    );
    b.sh(&format!(
        "mknod /tmp/dev240 c 240 0 && echo mknod-ok; echo R: $({OPEN_R}); echo W: $({OPEN_W})"
    ));
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(l[0], "mknod-ok", "{o:?}");
    assert!(
        l[1].contains("No such device"),
        "read must pass the cgroup: {o:?}"
    );
    assert!(
        l[2].contains("Operation not permitted"),
        "write must be denied: {o:?}"
    );
}
