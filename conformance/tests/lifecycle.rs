//! runtime.md: state, create/start/kill/delete semantics, run, pid file.

use conformance::*;
use serde_json::{json, Value};
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn state_json_at_each_lifecycle_step() {
    let mut b = bundle("state");
    b.sh("touch /started; exec sleep 60");
    b.set(
        "/annotations",
        json!({"org.example.key": "value one", "com.example/other": ""}),
    );
    let id = b.new_id();
    b.create(&id).ok();

    let st = b.state_json(&id);
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion missing: {st}"
    );
    assert_eq!(st["id"], json!(id), "{st}");
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"]
        .as_i64()
        .expect("pid in state of a created container");
    assert!(
        pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} not alive"
    );
    assert_eq!(
        st["bundle"],
        json!(b.path().to_str().unwrap()),
        "bundle must be the absolute bundle path: {st}"
    );
    assert_eq!(
        st["annotations"],
        json!({"org.example.key": "value one", "com.example/other": ""}),
        "{st}"
    );
    // The user program must not run before start.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !b.rootfs().join("started").exists(),
        "process.args ran before `start`"
    );

    b.start(&id).ok();
    let st = b.wait_status(&id, "running", T);
    assert_eq!(
        st["pid"].as_i64(),
        Some(pid),
        "pid changed between created and running: {st}"
    );
    assert!(
        b.wait_rootfs_file("started", T),
        "process did not run after start"
    );

    b.kill(&id, "KILL").ok();
    let st = b.wait_status(&id, "stopped", T);
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["bundle"], json!(b.path().to_str().unwrap()));

    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn container_exit_gives_stopped_and_delete_without_force() {
    let mut b = bundle("exit");
    b.args(&["true"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn start_twice_fails() {
    let mut b = bundle("start2");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    b.start(&id).fails();
    assert_eq!(b.state_json(&id)["status"], "running");
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    // start on a stopped container fails too
    b.start(&id).fails();
    b.delete(&id).ok();
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    for sig in ["KILL", "SIGKILL", "9"] {
        let mut b = bundle("killsig");
        b.args(&["sleep", "60"]);
        let id = b.create_ok();
        b.start(&id).ok();
        b.wait_status(&id, "running", T);
        b.kill(&id, sig).ok();
        b.wait_status(&id, "stopped", T);
        b.delete(&id).ok();
    }
}

#[test]
fn kill_delivers_the_named_signal() {
    let mut b = bundle("killtrap");
    // Handlers record each signal; TERM ends the loop.
    b.sh(
        "trap 'touch /got-USR1' USR1; trap 'touch /got-USR2' USR2; trap 'touch /got-TERM; exit 3' TERM; \
         touch /ready; while :; do sleep 0.05; done",
    );
    let id = b.create_ok();
    b.start(&id).ok();
    assert!(b.wait_rootfs_file("ready", T));
    b.kill(&id, "USR1").ok();
    assert!(b.wait_rootfs_file("got-USR1", T), "USR1 not delivered");
    b.kill(&id, "SIGUSR2").ok();
    assert!(b.wait_rootfs_file("got-USR2", T), "SIGUSR2 not delivered");
    b.kill(&id, "15").ok();
    assert!(b.wait_rootfs_file("got-TERM", T), "signal 15 not delivered");
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
}

#[test]
fn kill_default_signal_is_term() {
    let mut b = bundle("killdef");
    b.sh("trap 'touch /got-TERM; exit 0' TERM; touch /ready; while :; do sleep 0.05; done");
    let id = b.create_ok();
    b.start(&id).ok();
    assert!(b.wait_rootfs_file("ready", T));
    b.rt(&["kill", &id]).ok();
    assert!(
        b.wait_rootfs_file("got-TERM", T),
        "kill without a signal must send SIGTERM"
    );
    b.wait_status(&id, "stopped", T);
}

#[test]
fn kill_with_bad_signal_fails_and_has_no_effect() {
    let mut b = bundle("killbad");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    b.kill(&id, "SIGFOO").fails();
    b.kill(&id, "NOTASIGNAL").fails();
    b.kill(&id, "999").fails();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.state_json(&id)["status"], "running");
    b.delete_force(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn kill_created_container_stops_it() {
    let mut b = bundle("killcreated");
    b.sh("touch /started; sleep 60");
    let id = b.create_ok();
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    assert!(
        !b.rootfs().join("started").exists(),
        "user process ran although never started"
    );
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn kill_stopped_container_fails_without_effect() {
    let mut b = bundle("killstopped");
    b.args(&["true"]);
    let id = b.create_ok();
    b.start(&id).ok();
    let before = b.wait_status(&id, "stopped", T);
    b.kill(&id, "KILL").fails();
    let after = b.state_json(&id);
    assert_eq!(
        before, after,
        "kill of a stopped container must not change its state"
    );
    b.delete(&id).ok();
}

#[test]
fn delete_running_without_force_fails_then_force_works() {
    let mut b = bundle("delrun");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    b.start(&id).ok();
    let st = b.wait_status(&id, "running", T);
    let pid = st["pid"].as_i64().unwrap();
    b.delete(&id).fails();
    let st = b.state_json(&id);
    assert_eq!(
        st["status"], "running",
        "delete of a running container must not affect it"
    );
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    b.delete_force(&id).ok();
    b.assert_nothing_left(&id);
    // the process must be gone (it may linger as a zombie reaped by init only briefly)
    let deadline = std::time::Instant::now() + T;
    while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| !c.is_empty())
            .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "container process {pid} survived delete --force"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn operations_on_unknown_id_fail() {
    let b = bundle("unknown");
    let id = "no-such-container-conformance";
    b.state(id).fails();
    b.start(id).fails();
    b.kill(id, "KILL").fails();
    b.delete(id).fails();
}

#[test]
fn verbs_without_id_fail() {
    let b = bundle("noid");
    b.rt(&["state"]).fails();
    b.rt(&["start"]).fails();
    b.rt(&["kill"]).fails();
    b.rt(&["delete"]).fails();
    let dir = b.path().to_string_lossy().into_owned();
    b.rt(&["create", "--bundle", &dir]).fails();
}

#[test]
fn create_with_existing_id_fails() {
    let mut b = bundle("dupid");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let first = b.state_json(&id);
    b.create(&id).fails();
    let again = b.state_json(&id);
    assert_eq!(again["status"], "created");
    assert_eq!(
        again["pid"], first["pid"],
        "the failed create must not touch the existing container"
    );
}

#[test]
fn run_returns_the_exit_code_and_output() {
    let mut b = bundle("run");
    b.sh("echo to-stdout; echo to-stderr >&2; exit 7");
    let o = b.run();
    assert_eq!(o.code, 7, "{o:?}");
    assert_eq!(o.stdout.trim(), "to-stdout");
    assert!(o.stderr.contains("to-stderr"), "{o:?}");
}

#[test]
fn run_removes_the_container_after_exit() {
    let mut b = bundle("runrm");
    b.args(&["true"]);
    let id = b.new_id();
    b.run_id(&id, &[]).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn run_detached() {
    let mut b = bundle("rund");
    b.sh("touch /ran; exec sleep 60");
    let id = b.new_id();
    b.run_id(&id, &["-d"]).ok();
    let st = b.wait_status(&id, "running", T);
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert!(b.wait_rootfs_file("ran", T));
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn pid_file_holds_the_container_pid() {
    let mut b = bundle("pidfile");
    b.args(&["sleep", "60"]);
    let id = b.new_id();
    let pf = b.path().join("container.pid");
    b.create_with(&id, &["--pid-file", pf.to_str().unwrap()])
        .ok();
    let content = fs::read_to_string(&pf).expect("pid file written by create");
    // runtime-tools parses it with Atoi on the raw bytes: digits only, no newline.
    let pid: i64 = content
        .parse()
        .unwrap_or_else(|_| panic!("pid file is not a bare number: {content:?}"));
    assert_eq!(Some(pid), b.state_json(&id)["pid"].as_i64());
}

#[test]
fn pid_file_with_relative_path_is_relative_to_cwd() {
    let mut b = bundle("pidrel");
    b.args(&["sleep", "60"]);
    let id = b.new_id();
    b.create_with(&id, &["--pid-file", "rel.pid"]).ok();
    let content =
        fs::read_to_string(b.path().join("rel.pid")).expect("relative pid file in the cwd");
    assert_eq!(
        content.trim().parse::<i64>().ok(),
        b.state_json(&id)["pid"].as_i64()
    );
}

#[test]
fn config_changes_after_create_do_not_affect_the_container() {
    let mut b = bundle("cfgupd");
    b.sh("echo \"$MARK\" > /mark");
    b.push("/process/env", json!("MARK=original"));
    let id = b.create_ok();
    // Replace config.json by something different (and even invalid).
    fs::write(b.path().join("config.json"), "{\"ociVersion\": \"1.0.0\"}").unwrap();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    assert_eq!(b.read_rootfs("mark").trim(), "original");
    b.delete(&id).ok();
}

#[test]
fn unknown_properties_and_annotations_are_ignored() {
    let mut b = bundle("unknownprop");
    b.set("/unknownTopLevelProperty", json!({"x": 1}));
    b.set("/process/unknownProcessProperty", json!("y"));
    b.set(
        "/annotations",
        json!({"org.conformance.unknown-key": "whatever"}),
    );
    b.sh("echo ok");
    let o = b.run_ok();
    assert_eq!(o.stdout.trim(), "ok");
}

#[test]
fn delete_keeps_resources_not_created_by_the_container() {
    let mut b = bundle("foreigncg");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    // A pids cgroup created by us, not the runtime; move the container into it.
    let foreign = format!("/berth-conformance-foreign-{id}");
    b.cleanup_cgroup(&foreign);
    let pids_root = cgroup_dir_of(1, "pids").expect("pids hierarchy");
    let base = if cgroup_v2() {
        std::path::PathBuf::from("/sys/fs/cgroup")
    } else {
        pids_root.clone()
    };
    let dir = base.join(foreign.trim_start_matches('/'));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    b.start(&id).ok();
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    assert!(
        dir.is_dir(),
        "delete removed a cgroup it did not create: {}",
        dir.display()
    );
}

#[test]
fn state_of_stopped_container_keeps_identity() {
    let mut b = bundle("ststopped");
    b.args(&["sh", "-c", "exit 3"]);
    b.set("/annotations", json!({"a": "b"}));
    let id = b.create_ok();
    b.start(&id).ok();
    let st: Value = b.wait_status(&id, "stopped", T);
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["annotations"], json!({"a": "b"}));
    assert!(st["ociVersion"].is_string());
    b.delete(&id).ok();
}

#[test]
fn start_on_stopped_container_fails_without_effect() {
    let mut b = bundle("startstopped");
    b.sh("echo ran >> /output");
    let id = b.create_ok();
    assert!(
        !b.rootfs().join("output").exists(),
        "process.args applied before start"
    );
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    b.start(&id).fails();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        b.read_rootfs("output"),
        "ran\n",
        "a failed start must not run the process again"
    );
    assert_eq!(b.state_json(&id)["status"], "stopped");
    b.delete(&id).ok();
}

#[test]
fn container_without_process_cannot_be_started() {
    let mut b = bundle("noprocess");
    b.remove("/process");
    let id = b.new_id();
    let created = b.create(&id);
    if created.success() {
        b.start(&id).fails();
    }
    b.delete_force(&id);
}
