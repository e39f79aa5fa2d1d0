//! Invalid or impossible configurations: the runtime must fail non-zero with a
//! message naming the problem, and leave nothing behind (no state under
//! --root, no cgroup directory, no process).

use conformance::*;
use serde_json::json;

/// `create` must fail naming one of `words`, leaving nothing.
#[track_caller]
fn rejects(b: &mut Bundle, words: &[&str]) {
    let id = b.new_id();
    b.create(&id).fails_naming(words);
    b.assert_nothing_left(&id);
}

/// Same through `run` (attached).
#[track_caller]
fn run_rejects(b: &mut Bundle, words: &[&str]) {
    let id = b.new_id();
    b.run_id(&id, &[]).fails_naming(words);
    b.assert_nothing_left(&id);
}

fn hard_limit(name: &str) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let l = limits.lines().find(|l| l.starts_with(name)).unwrap();
    l[name.len()..]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn malformed_config_json() {
    let mut b = bundle("badjson");
    b.raw_config = Some("{\"ociVersion\": \"1.0.2\", \"process\": {".to_string());
    rejects(&mut b, &["config", "json", "unexpected", "eof"]);
}

#[test]
fn config_of_wrong_shape() {
    let mut b = bundle("badshape");
    b.raw_config = Some("{\"ociVersion\": \"1.0.2\", \"process\": \"not an object\", \"root\": {\"path\": \"rootfs\"}}".to_string());
    rejects(&mut b, &["config", "json", "process", "unmarshal"]);
}

#[test]
fn missing_config_json() {
    let mut b = bundle("noconfig");
    let id = b.new_id();
    let dir = b.path().to_string_lossy().into_owned();
    // do not write config.json
    b.rt(&["create", "--bundle", &dir, &id])
        .fails_naming(&["config.json", "no such file"]);
    b.assert_nothing_left(&id);
}

#[test]
fn missing_rootfs() {
    let mut b = bundle("norootfs");
    b.set("/root/path", json!("rootfs-that-does-not-exist"));
    rejects(
        &mut b,
        &["rootfs-that-does-not-exist", "rootfs", "no such file"],
    );
}

#[test]
fn unknown_namespace_type() {
    let mut b = bundle("badns");
    b.push("/linux/namespaces", json!({"type": "bogus-ns"}));
    rejects(&mut b, &["bogus-ns"]);
}

#[test]
fn negative_oom_score_adj_without_cap_sys_resource() {
    // The runtime runs as root without CAP_SYS_RESOURCE here: lowering
    // oom_score_adj below the current value is not allowed.
    let mut b = bundle("badoom");
    b.set("/process/oomScoreAdj", json!(-500));
    rejects(&mut b, &["oom", "permission denied"]);
}

#[test]
fn rlimit_above_the_current_hard_limit() {
    let hard = hard_limit("Max open files");
    let mut b = bundle("badrlimit");
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]),
    );
    rejects(&mut b, &["rlimit", "operation not permitted"]);
}

#[test]
fn unknown_rlimit_type() {
    let mut b = bundle("badrlimittype");
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_TEST", "soft": 1024, "hard": 1024}]),
    );
    rejects(&mut b, &["RLIMIT_TEST"]);
}

/// config-linux.md: a capability name that cannot be mapped MUST cause an
/// error (runtime-tools process_capabilities_fail). runc 1.1 only warns.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 ignores unknown capability names with a warning"
)]
fn berth_only_unknown_capability() {
    let mut b = bundle("badcap");
    b.push("/process/capabilities/bounding", json!("CAP_TEST"));
    rejects(&mut b, &["CAP_TEST"]);
}

#[test]
fn relative_cwd() {
    let mut b = bundle("badcwd");
    b.set("/process/cwd", json!("relative/dir"));
    rejects(&mut b, &["cwd", "absolute"]);
}

#[test]
fn empty_args() {
    let mut b = bundle("noargs");
    b.set("/process/args", json!([]));
    rejects(&mut b, &["args"]);
}

#[test]
fn executable_not_found() {
    let mut b = bundle("noexe");
    b.args(&["/no/such/binary"]);
    run_rejects(&mut b, &["/no/such/binary", "no such file"]);
}

#[test]
fn bind_mount_source_missing() {
    let mut b = bundle("badbind");
    b.mount(json!({"destination": "/mnt/x", "type": "bind", "source": "/nonexistent/bind/source", "options": ["bind"]}));
    rejects(&mut b, &["/nonexistent/bind/source", "no such file"]);
}

#[test]
fn invalid_tmpfs_option() {
    let mut b = bundle("badtmpfs");
    b.mount(json!({"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=notanumber"]}));
    rejects(&mut b, &["/mnt/x", "invalid argument", "mount"]);
}

#[test]
fn unknown_sysctl() {
    let mut b = bundle("badsysctl");
    b.set(
        "/linux/sysctl",
        json!({"kernel.no_such_sysctl_conformance": "1"}),
    );
    rejects(&mut b, &["no_such_sysctl_conformance", "sysctl"]);
}

#[test]
fn wrong_namespace_path_type_leaves_nothing_via_run() {
    let u = Unshared::start(&["--ipc"], &["ipc"]);
    let mut b = bundle("badnsrun");
    b.namespace("uts", Some(&u.ns_path("ipc")));
    b.remove("/hostname");
    let id = b.new_id();
    b.run_id(&id, &[]).fails();
    b.assert_nothing_left(&id);
}
