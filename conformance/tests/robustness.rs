//! The runtime under stress and half-failures: concurrent commands on one container, a create that died
//! half-way, the JSON log containerd reads errors from, and the systemd cgroup driver on a host without
//! systemd.

use conformance::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc does not serialise concurrent creates of one id: with runc 1.1.5, 5 runs of 12 \
         failed here: not exactly one of six creates succeeded, or `state` then printed no JSON"
)]
fn berth_only_concurrent_creates_of_one_id_let_exactly_one_win() {
    let mut b = bundle("race-create");
    b.args(&["sleep", "60"]);
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    let children: Vec<_> = (0..6)
        .map(|_| {
            b.rt_cmd(&["create", "--bundle", &dir, &id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let wins = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().success())
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1, "exactly one create of {id} must succeed");
    assert_eq!(b.state_json(&id)["status"], "created");
    b.delete_force(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc does not serialise concurrent starts of one container: with runc 1.1.5 here, 5 runs of 15 \
         left the container stopped (pid 0) after the winning start, a losing start hanging for 60 s"
)]
fn berth_only_concurrent_starts_and_states_never_see_broken_state() {
    let mut b = bundle("race-start");
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            b.rt_cmd(&["start", &id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for _ in 0..20 {
        let st: Value = b.state_json(&id);
        assert!(
            ["created", "running"].contains(&st["status"].as_str().unwrap()),
            "state during concurrent starts: {st}"
        );
    }
    let wins = starts
        .into_iter()
        .map(|mut c| c.wait().unwrap().success())
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1, "exactly one start must succeed");
    b.wait_status(&id, "running", T);
    let deletes: Vec<_> = (0..4)
        .map(|_| {
            b.rt_cmd(&["delete", "--force", &id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut d in deletes {
        d.wait().unwrap();
    }
    b.assert_nothing_left(&id);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc leaves its own half-created state in another shape"
)]
fn berth_only_delete_cleans_up_after_a_create_that_died() {
    // The createRuntime hook kills the runtime's create (its parent) while the container is being built:
    // what is left (state, cgroup, init) must be removable with delete.
    let mut b = bundle("half-created");
    b.args(&["sleep", "60"]);
    b.hook("createRuntime", "kill -9 $PPID; sleep 5", None);
    let id = b.new_id();
    b.create(&id).fails();
    b.delete_force(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn json_log_holds_the_error_for_containerd() {
    let mut b = bundle("jsonlog");
    b.set("/root/path", serde_json::json!("no-such-rootfs"));
    let id = b.new_id();
    b.write_config(&id);
    let log = b.path().join("log.json");
    let dir = b.path().to_string_lossy().into_owned();
    let o = b.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        &dir,
        &id,
    ]);
    o.fails();
    let text = std::fs::read_to_string(&log).expect("the log file");
    let last_error = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in the log: {text:?}"));
    assert!(
        last_error["msg"]
            .as_str()
            .unwrap()
            .contains("no-such-rootfs"),
        "{last_error}"
    );
    assert!(last_error["time"].is_string(), "{last_error}");
    b.assert_nothing_left(&id);
}

#[test]
#[cfg_attr(host_systemd, ignore = "systemd runs on this host")]
fn systemd_cgroup_driver_without_systemd_fails_clearly() {
    assert!(
        !std::path::Path::new("/run/systemd/system").exists(),
        "systemd runs on this host but did not where the test binary was built: rebuild it"
    );
    let mut b = bundle("systemdcg");
    b.set(
        "/linux/cgroupsPath",
        serde_json::json!("system.slice:conformance:x"),
    );
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    b.rt(&["--systemd-cgroup", "create", "--bundle", &dir, &id])
        .fails_naming(&["systemd"]);
    b.assert_nothing_left(&id);
}
