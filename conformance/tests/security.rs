//! The runtime's own safety: no container process can reach the runtime binary through
//! `/proc/<pid>/exe` while the init still runs the runtime's code, and masked paths are covered only with
//! a real `/dev/null`.

use conformance::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// `readlink /proc/PID/exe` as root but without CAP_SYS_PTRACE (what a container's root has by default).
fn readlink_without_ptrace(pid: i64) -> Out {
    let mut c = Command::new("setpriv");
    c.args([
        "--bounding-set=-sys_ptrace",
        "--inh-caps=-sys_ptrace",
        "--",
        "readlink",
    ])
    .arg(format!("/proc/{pid}/exe"));
    run_cmd(c, std::path::Path::new("/tmp"), CMD_TIMEOUT)
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc's waiting init is readable: runc relies on running from a memfd copy instead"
)]
fn berth_only_the_waiting_init_does_not_expose_its_exe_link() {
    // A created container's init is the runtime, waiting for `start`. A process without
    // CAP_SYS_PTRACE must not be able to follow its exe link (it would lead to the runtime binary).
    let mut b = bundle("exe-created");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    let o = readlink_without_ptrace(pid);
    assert!(
        !o.success(),
        "the init's exe link is readable: {}",
        o.stdout
    );
}

#[test]
fn an_init_in_the_host_pid_namespace_does_not_run_from_the_runtime_binary() {
    // Without a pid namespace of its own, the waiting init shares its pid namespace with other
    // processes: even for a process that may follow the link, it must not be the binary on disk.
    let mut b = bundle("exe-hostpid");
    b.remove_namespace("pid");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("readlink as root");
    let runtime = std::fs::canonicalize(runtime()).unwrap();
    assert_ne!(
        exe, runtime,
        "the waiting init runs from the runtime binary on disk"
    );
    b.delete_force(&id).ok();
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc binds whatever file is at /dev/null over masked paths"
)]
fn berth_only_masking_refuses_a_dev_null_that_is_not_the_null_device() {
    // /dev comes from the bundle, holding a regular file named null with "secret" contents: masking
    // with it would show those contents instead of nothing.
    let mut b = bundle("fake-null");
    let dev = b.path().join("fakedev");
    std::fs::create_dir(&dev).unwrap();
    std::fs::write(dev.join("null"), "not-the-null-device\n").unwrap();
    b.remove_mount("/dev");
    b.remove_mount("/dev/pts");
    b.remove_mount("/dev/shm");
    b.remove_mount("/dev/mqueue");
    b.mount(json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["bind"]}));
    b.set("/linux/maskedPaths", json!(["/proc/kcore"]));
    let id = b.new_id();
    b.create(&id).fails_naming(&["/dev/null", "null device"]);
    b.assert_nothing_left(&id);
}

#[test]
fn killing_the_init_leaves_the_container_stopped_and_deletable() {
    // delete works on a container whose process died behind the runtime's back.
    let mut b = bundle("killed-init");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    b.start(&id).ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    b.wait_status(&id, "stopped", Duration::from_secs(10));
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}
