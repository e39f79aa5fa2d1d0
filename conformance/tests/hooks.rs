//! config.md "POSIX-platform Hooks" and runtime.md lifecycle steps that run hooks.

use conformance::*;
use serde_json::{json, Value};
use std::fs;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// Bundle whose container sees `<bundle>/hooklog` at `/hooklog`.
fn hook_bundle(tag: &str) -> (Bundle, String) {
    let b = bundle(tag);
    let log = b.path().join("hooklog");
    fs::create_dir(&log).unwrap();
    let log = log.to_string_lossy().into_owned();
    let mut b = b;
    b.push(
        "/mounts",
        json!({"destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind", "rw"]}),
    );
    (b, log)
}

/// Log directory as seen by a hook of `kind`: startContainer runs after
/// pivot_root (container paths); all others see host paths.
fn log_for(kind: &str, host_log: &str) -> String {
    if kind == "startContainer" {
        "/hooklog".to_string()
    } else {
        host_log.to_string()
    }
}

const ALL: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

#[test]
fn hooks_run_in_lifecycle_order() {
    let (mut b, log) = hook_bundle("hookorder");
    for kind in ALL {
        for n in 1..=2 {
            let l = log_for(kind, &log);
            b.hook(kind, &format!("echo {kind}{n} >> {l}/order"), Some(10));
        }
    }
    b.sh("echo process >> /hooklog/order");
    let id = b.create_ok();
    let after_create = fs::read_to_string(format!("{log}/order")).unwrap_or_default();
    let after_create: Vec<&str> = after_create.lines().collect();
    assert_eq!(
        after_create[..after_create.len().min(6)],
        [
            "prestart1",
            "prestart2",
            "createRuntime1",
            "createRuntime2",
            "createContainer1",
            "createContainer2"
        ],
        "hooks run by `create`, in order"
    );
    assert!(
        !after_create.contains(&"startContainer1"),
        "startContainer hooks ran before `start`"
    );
    assert!(
        !after_create.contains(&"process"),
        "process ran before `start`"
    );
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    let all = fs::read_to_string(format!("{log}/order")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let pos = |s: &str| {
        lines
            .iter()
            .position(|l| *l == s)
            .unwrap_or_else(|| panic!("{s} missing from {lines:?}"))
    };
    assert_eq!(lines.len(), 13, "every hook runs exactly once: {lines:?}");
    assert!(pos("createContainer2") < pos("startContainer1"));
    assert!(pos("startContainer1") < pos("startContainer2"));
    assert!(pos("startContainer2") < pos("process"), "{lines:?}");
    assert!(pos("poststart1") < pos("poststart2"));
    assert!(pos("poststart2") < pos("poststop1"));
    assert!(pos("process") < pos("poststop1"));
    assert_eq!(lines[11..], ["poststop1", "poststop2"]);
}

/// runtime.md: poststart hooks run after the user process started, i.e. as part
/// of `start`. runc 1.1 runs them during `create` (fixed in runc 1.2).
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 runs poststart hooks at create time"
)]
fn berth_only_poststart_hooks_run_after_start() {
    let (mut b, log) = hook_bundle("hookpoststart");
    b.hook(
        "startContainer",
        "echo startContainer >> /hooklog/order",
        Some(10),
    );
    b.hook(
        "poststart",
        &format!("cat > {log}/poststart.json; echo poststart >> {log}/order"),
        Some(10),
    );
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    assert_eq!(
        fs::read_to_string(format!("{log}/order")).unwrap_or_default(),
        "",
        "nothing of start may run at create"
    );
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    let deadline = Instant::now() + T;
    loop {
        let s = fs::read_to_string(format!("{log}/order")).unwrap_or_default();
        if s == "startContainer\npoststart\n" {
            break;
        }
        assert!(Instant::now() < deadline, "unexpected hook log {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let st: Value =
        serde_json::from_str(&fs::read_to_string(format!("{log}/poststart.json")).unwrap())
            .unwrap();
    assert_eq!(
        st["status"], "running",
        "poststart hooks see a running container: {st}"
    );
}

#[test]
fn hooks_run_in_the_specified_namespaces() {
    let (mut b, log) = hook_bundle("hookns");
    for kind in ALL {
        let l = log_for(kind, &log);
        b.hook(
            kind,
            &format!(
                "echo mnt=$(readlink /proc/self/ns/mnt) uts=$(readlink /proc/self/ns/uts) net=$(readlink /proc/self/ns/net) > {l}/{kind}.ns"
            ),
            Some(10),
        );
    }
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap().to_string();
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    let wait_file = |name: &str| {
        let p = format!("{log}/{name}");
        let deadline = Instant::now() + T;
        while !std::path::Path::new(&p).exists() {
            assert!(Instant::now() < deadline, "{p} never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20));
        fs::read_to_string(&p).unwrap()
    };
    let container = format!(
        "mnt={} uts={} net={}",
        ns_link(&pid, "mnt"),
        ns_link(&pid, "uts"),
        ns_link(&pid, "net")
    );
    let runtime_ns = format!(
        "mnt={} uts={} net={}",
        ns_link("self", "mnt"),
        ns_link("self", "uts"),
        ns_link("self", "net")
    );
    assert_ne!(container, runtime_ns);
    for kind in ["createContainer", "startContainer"] {
        assert_eq!(
            wait_file(&format!("{kind}.ns")).trim(),
            container,
            "{kind} must run in the container namespaces"
        );
    }
    for kind in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(
            wait_file(&format!("{kind}.ns")).trim(),
            runtime_ns,
            "{kind} must run in the runtime namespaces"
        );
    }
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    assert_eq!(
        wait_file("poststop.ns").trim(),
        runtime_ns,
        "poststop must run in the runtime namespaces"
    );
}

#[test]
fn hooks_receive_the_state_on_stdin() {
    let (mut b, log) = hook_bundle("hookstdin");
    for kind in ALL {
        let l = log_for(kind, &log);
        b.hook(kind, &format!("cat > {l}/{kind}.json"), Some(10));
    }
    b.set(
        "/annotations",
        json!({"org.conformance.hook": "stdin test"}),
    );
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    let mut errors = Vec::new();
    for kind in ALL {
        let p = format!("{log}/{kind}.json");
        let text =
            fs::read_to_string(&p).unwrap_or_else(|e| panic!("{kind} hook did not run: {e}"));
        let st: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{kind} stdin is not state JSON ({e}): {text:?}"));
        let mut check = |ok: bool, what: &str| {
            if !ok {
                errors.push(format!("{kind}: {what}: {st}"));
            }
        };
        check(st["ociVersion"].is_string(), "ociVersion");
        check(st["id"] == json!(id), "id");
        check(
            st["bundle"] == json!(b.path().to_str().unwrap()),
            "bundle (absolute path)",
        );
        check(
            st["annotations"] == json!({"org.conformance.hook": "stdin test"}),
            "annotations",
        );
        check(
            st["status"].as_str().is_some_and(|s| !s.is_empty()),
            "status",
        );
        // pid as seen by the host. Only checked for hooks in the runtime
        // namespace: runc 1.1 passes the pid as seen in the container (1) to
        // createContainer/startContainer hooks.
        if ["prestart", "createRuntime", "poststart"].contains(&kind) {
            check(
                st["pid"].as_i64() == Some(pid),
                "pid of the container process as seen by the host",
            );
        }
        // The spec does not pin the status per hook; it must be a valid status
        // consistent with the lifecycle step. Create-time hooks see the
        // container `creating` (runc) or `created` (crun, and runtime-tools
        // expects `created` for prestart).
        let allowed: &[&str] = match kind {
            "prestart" | "createRuntime" | "createContainer" => &["creating", "created"],
            "startContainer" => &["created"],
            "poststart" => &["created", "running"],
            _ => &["stopped"],
        };
        let status = st["status"].as_str().unwrap_or_default().to_string();
        check(
            allowed.contains(&status.as_str()),
            &format!("status one of {allowed:?}"),
        );
    }
    assert!(
        errors.is_empty(),
        "state passed to hooks:\n{}",
        errors.join("\n")
    );
}

#[test]
fn hook_args_and_env_are_passed() {
    let (mut b, log) = hook_bundle("hookargs");
    b.push(
        "/hooks/createRuntime",
        json!({
            "path": "/bin/sh",
            "args": ["argzero", "-c", format!("echo \"$(cut -d '' -f1 /proc/$$/cmdline | head -c 7)|$0|$1|$HOOKVAR|$OTHER\" > {log}/args"), "dollar0", "dollar1"],
            "env": ["HOOKVAR=hook value", "OTHER=2"]
        }),
    );
    b.args(&["true"]);
    let id = b.create_ok();
    assert_eq!(
        fs::read_to_string(format!("{log}/args")).unwrap().trim(),
        "argzero|dollar0|dollar1|hook value|2"
    );
    b.delete_force(&id).ok();
}

/// A failing hook during create: create fails, names the problem, and leaves nothing.
fn failing_create_hook(kind: &str) {
    let (mut b, log) = hook_bundle(&format!("hookfail-{}", kind.to_lowercase()));
    let l = log_for(kind, &log);
    b.hook(
        kind,
        &format!("touch {l}/hook-ran; echo hook-failed-on-purpose >&2; exit 3"),
        None,
    );
    b.sh("touch /hooklog/process-ran");
    let id = b.new_id();
    let o = b.create(&id);
    o.fails();
    assert!(
        std::path::Path::new(&format!("{log}/hook-ran")).exists(),
        "the {kind} hook never ran: {o:?}"
    );
    assert!(!std::path::Path::new(&format!("{log}/process-ran")).exists());
    b.assert_nothing_left(&id);
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    failing_create_hook("prestart");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    failing_create_hook("createRuntime");
}

#[test]
fn failing_create_container_hook_fails_create_and_leaves_nothing() {
    failing_create_hook("createContainer");
}

#[test]
fn failing_start_container_hook_stops_the_container() {
    let (mut b, _log) = hook_bundle("hookfailsc");
    b.hook("startContainer", "exit 4", None);
    b.sh("touch /hooklog/process-ran; sleep 60");
    let id = b.create_ok();
    let _ = b.start(&id);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !b.path().join("hooklog/process-ran").exists(),
        "user process ran although startContainer failed"
    );
    if let Ok(st) = b.try_state(&id) {
        assert_eq!(st["status"], "stopped", "{st}");
    }
}

/// runtime.md: a failing startContainer hook MUST make the runtime generate an
/// error. runc 1.1 runs them in its init after `start` returned 0.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 `start` exits 0 when a startContainer hook fails"
)]
fn berth_only_failing_start_container_hook_fails_start() {
    let (mut b, _log) = hook_bundle("hookfailsc2");
    b.hook("startContainer", "exit 4", None);
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    b.start(&id).fails();
}

#[test]
fn failing_poststop_hook_does_not_fail_delete() {
    let (mut b, _log) = hook_bundle("hookfailps");
    b.hook("poststop", "exit 5", None);
    b.args(&["true"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

/// config.md: after a failing poststop hook the remaining hooks still run.
/// runc 1.1 stops at the first failing poststop hook.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 skips the poststop hooks after a failing one"
)]
fn berth_only_failing_poststop_hook_does_not_stop_the_remaining_hooks() {
    let (mut b, log) = hook_bundle("hookfailps2");
    b.hook("poststop", "exit 5", None);
    b.hook("poststop", &format!("echo second >> {log}/poststop"), None);
    b.args(&["true"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    assert_eq!(
        fs::read_to_string(format!("{log}/poststop")).unwrap_or_default(),
        "second\n"
    );
}

/// config.md: a failing poststart hook MUST only be logged as a warning; the
/// container keeps running. runc 1.1 kills the container and fails.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 fails the container when a poststart hook fails"
)]
fn berth_only_failing_poststart_hook_only_warns() {
    let (mut b, log) = hook_bundle("hookfailpst");
    b.hook("poststart", "exit 6", None);
    b.hook(
        "poststart",
        &format!("echo second >> {log}/poststart"),
        None,
    );
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    assert!(
        b.wait_rootfs_file("../hooklog/poststart", T),
        "remaining poststart hooks must run"
    );
}

#[test]
fn hook_timeout_is_honoured() {
    let (mut b, log) = hook_bundle("hooktimeout");
    b.hook(
        "createRuntime",
        &format!("touch {log}/hook-ran; exec sleep 30"),
        Some(1),
    );
    b.args(&["true"]);
    let id = b.new_id();
    let t0 = Instant::now();
    b.create(&id).fails();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "hook with timeout 1s took {took:?}"
    );
    assert!(
        std::path::Path::new(&format!("{log}/hook-ran")).exists(),
        "the hook never ran"
    );
    b.assert_nothing_left(&id);
}

#[test]
fn hook_with_relative_path_or_missing_binary_fails_create() {
    let (mut b, _log) = hook_bundle("hookmissing");
    b.push(
        "/hooks/createRuntime",
        json!({"path": "/nonexistent/hook-binary"}),
    );
    b.args(&["true"]);
    let id = b.new_id();
    b.create(&id).fails();
    b.assert_nothing_left(&id);
}
