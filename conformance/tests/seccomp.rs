//! config-linux.md `seccomp`: the filter's effect seen from inside.

use conformance::*;
use serde_json::{json, Value};

fn seccomp(syscalls: Value) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    })
}

#[test]
fn errno_action_with_errno_ret() {
    let mut b = bundle("seccomperrno");
    b.set(
        "/linux/seccomp",
        seccomp(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]),
        ),
    );
    b.sh("grep ^Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; [ -d /tmp/x ] && echo created || echo not-created; touch /tmp/f && echo touch-ok");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(status_map(&l[0])["Seccomp"], "2", "{o:?}");
    assert!(
        l[1].contains("Permission denied"),
        "errnoRet 13 must give EACCES: {o:?}"
    );
    assert_eq!(l[2..], ["not-created", "touch-ok"]);
}

#[test]
fn errno_action_defaults_to_eperm() {
    let mut b = bundle("seccompeperm");
    b.set(
        "/linux/seccomp",
        seccomp(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])),
    );
    b.sh("mkdir /tmp/x 2>&1; true");
    let o = b.run_ok();
    assert!(o.stdout.contains("Operation not permitted"), "{o:?}");
}

#[test]
fn kill_action_kills_the_caller() {
    let mut b = bundle("seccompkill");
    b.set(
        "/linux/seccomp",
        seccomp(json!([{"names": ["sync"], "action": "SCMP_ACT_KILL"}])),
    );
    // A child shell runs sync (busybox may run it in-process) and dies of
    // SIGSYS (31): status 159 in the parent.
    b.sh("sh -c sync; echo status=$?");
    let o = b.run_ok();
    assert_eq!(o.kv("status"), "159", "{o:?}");
}

#[test]
fn argument_conditions() {
    let mut b = bundle("seccompargs");
    b.set(
        "/linux/seccomp",
        seccomp(json!([
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]}
        ])),
    );
    b.sh("touch /tmp/f; chmod 755 /tmp/f && echo 755-ok; chmod 777 /tmp/f 2>/dev/null && echo 777-ok || echo 777-denied; stat -c %a /tmp/f");
    assert_eq!(b.run_ok().lines(), ["755-ok", "777-denied", "755"]);
}

#[test]
fn masked_eq_condition() {
    let mut b = bundle("seccompmasked");
    // deny chmod/fchmodat when the mode has the setuid bit (04000)
    b.set(
        "/linux/seccomp",
        seccomp(json!([
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]}
        ])),
    );
    b.sh("touch /tmp/f; chmod 4755 /tmp/f 2>/dev/null && echo suid-ok || echo suid-denied; chmod 700 /tmp/f && echo plain-ok");
    assert_eq!(b.run_ok().lines(), ["suid-denied", "plain-ok"]);
}

#[test]
fn seccomp_applies_to_non_root_without_no_new_privileges() {
    let mut b = bundle("seccompnonnp");
    b.set("/process/noNewPrivileges", json!(false));
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.set(
        "/linux/seccomp",
        seccomp(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]),
        ),
    );
    b.sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x 2>&1; true");
    let o = b.run_ok();
    let st = status_map(&o.stdout);
    assert_eq!(st["Seccomp"], "2");
    assert_eq!(st["NoNewPrivs"], "0");
    assert!(o.stdout.contains("Permission denied"), "{o:?}");
}

#[test]
fn no_seccomp_section_means_no_filter() {
    let mut b = bundle("seccompnone");
    b.sh("grep ^Seccomp: /proc/self/status");
    assert_eq!(status_map(&b.run_ok().stdout)["Seccomp"], "0");
}

#[test]
fn unknown_seccomp_action_fails() {
    let mut b = bundle("seccompbadact");
    b.set(
        "/linux/seccomp",
        seccomp(json!([{"names": ["mkdir"], "action": "SCMP_ACT_NONSENSE"}])),
    );
    let id = b.new_id();
    b.create(&id).fails_naming(&["SCMP_ACT_NONSENSE", "action"]);
    b.assert_nothing_left(&id);
}

#[test]
fn unknown_default_action_fails() {
    let mut b = bundle("seccompbaddef");
    let mut s = seccomp(json!([]));
    s["defaultAction"] = json!("SCMP_ACT_BOGUS");
    b.set("/linux/seccomp", s);
    let id = b.new_id();
    b.create(&id).fails_naming(&["SCMP_ACT_BOGUS", "action"]);
    b.assert_nothing_left(&id);
}
