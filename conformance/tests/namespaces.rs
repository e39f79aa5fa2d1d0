//! config-linux.md: namespaces (new, inherited, joined by path), user
//! namespace mappings, hostname/domainname, sysctl.

use conformance::*;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const NS_FILES: [(&str, &str); 7] = [
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
    ("user", "user"),
];

fn running(b: &mut Bundle) -> (String, String) {
    b.args(&["sleep", "60"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap().to_string();
    (id, pid)
}

#[test]
fn configured_namespaces_are_new_others_inherited() {
    let mut b = bundle("nsnew");
    b.namespace("cgroup", None);
    let (_id, pid) = running(&mut b);
    for (ty, file) in NS_FILES {
        let configured = ty != "user";
        let same = ns_link(&pid, file) == ns_link("self", file);
        assert_eq!(
            !same, configured,
            "namespace {ty}: configured={configured} but same-as-runtime={same}"
        );
    }
}

#[test]
fn only_mount_namespace_inherits_the_rest() {
    let mut b = bundle("nsinherit");
    b.set("/linux/namespaces", json!([{"type": "mount"}]));
    b.remove("/hostname");
    let (_id, pid) = running(&mut b);
    assert_ne!(ns_link(&pid, "mnt"), ns_link("self", "mnt"));
    for ns in ["pid", "net", "ipc", "uts", "cgroup", "user"] {
        assert_eq!(
            ns_link(&pid, ns),
            ns_link("self", ns),
            "{ns} must be inherited from the runtime"
        );
    }
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let mut b = bundle("pidns");
    b.sh("echo $$; ls /proc | grep -E '^[0-9]+$' | wc -l");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(l[0], "1");
    // sh plus the pipeline's own processes, nothing of the host
    assert!(
        l[1].trim().parse::<u32>().unwrap() <= 6,
        "processes of the host visible in the pid namespace: {o:?}"
    );
}

#[test]
fn network_namespace_has_only_loopback() {
    let mut b = bundle("netns");
    b.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    assert_eq!(b.run_ok().lines(), ["lo"]);
}

#[test]
fn join_namespaces_of_another_process_by_path() {
    let u = Unshared::start(&["--net", "--uts", "--ipc"], &["net", "uts", "ipc"]);
    let mut b = bundle("nsjoin");
    b.namespace("network", Some(&u.ns_path("net")));
    b.namespace("uts", Some(&u.ns_path("uts")));
    b.namespace("ipc", Some(&u.ns_path("ipc")));
    b.remove("/hostname");
    let (_id, pid) = running(&mut b);
    let upid = u.pid().to_string();
    for ns in ["net", "uts", "ipc"] {
        assert_eq!(
            ns_link(&pid, ns),
            ns_link(&upid, ns),
            "{ns} namespace not joined"
        );
    }
    // not joined: still new
    assert_ne!(ns_link(&pid, "mnt"), ns_link(&upid, "mnt"));
}

#[test]
fn join_mount_and_pid_namespace_by_path() {
    // The pid namespace of `unshare --pid --fork` is its pid_for_children.
    let u = Unshared::start(
        &["--pid", "--fork", "--mount", "--propagation", "private"],
        &["pid_for_children", "mnt"],
    );
    let mut b = bundle("nsjoinmnt");
    b.namespace("mount", Some(&u.ns_path("mnt")));
    b.namespace("pid", Some(&u.ns_path("pid_for_children")));
    let (_id, pid) = running(&mut b);
    let upid = u.pid().to_string();
    assert_eq!(
        ns_link(&pid, "mnt"),
        ns_link(&upid, "mnt"),
        "mount namespace not joined"
    );
    assert_eq!(
        ns_link(&pid, "pid"),
        ns_link(&upid, "pid_for_children"),
        "pid namespace not joined"
    );
}

#[test]
fn join_network_and_pid_namespace_of_another_container() {
    let mut a = bundle("nsjoina");
    let (_ida, pida) = running(&mut a);
    let mut b = bundle("nsjoinb");
    b.namespace("network", Some(&format!("/proc/{pida}/ns/net")));
    b.namespace("pid", Some(&format!("/proc/{pida}/ns/pid")));
    b.sh("echo $$; ps -o pid,args | grep -c 'sleep 60'");
    let o = b.run_ok();
    assert_ne!(o.lines()[0], "1", "joined pid namespace already has pid 1");
    assert!(
        o.lines()[1].trim().parse::<u32>().unwrap() >= 1,
        "first container's process not visible: {o:?}"
    );
    let (_idb, pidb) = running(&mut b);
    assert_eq!(ns_link(&pidb, "net"), ns_link(&pida, "net"));
    assert_eq!(ns_link(&pidb, "pid"), ns_link(&pida, "pid"));
}

#[test]
fn namespace_path_of_wrong_type_fails() {
    let u = Unshared::start(&["--uts"], &["uts"]);
    let mut b = bundle("nswrongtype");
    b.namespace("network", Some(&u.ns_path("uts")));
    let id = b.new_id();
    b.create(&id).fails();
    b.assert_nothing_left(&id);
}

#[test]
fn namespace_path_that_does_not_exist_fails() {
    let mut b = bundle("nsnopath");
    b.namespace("network", Some("/proc/999999999/ns/net"));
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&["999999999", "no such file", "namespace"]);
    b.assert_nothing_left(&id);
}

#[test]
fn user_namespace_with_mappings() {
    let mut b = bundle("userns");
    b.namespace("user", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 300000, "size": 65536}]),
    );
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    // /sys/fs/cgroup cannot be mounted from a user namespace without cgroupns on v1.
    b.remove_mount("/sys/fs/cgroup");
    b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; sleep 60");
    let id = b.new_id();
    b.create(&id).ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    assert_ne!(ns_link(&pid.to_string(), "user"), ns_link("self", "user"));
    let uidmap = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let gidmap = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap();
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(norm(&uidmap), "0 200000 65536");
    assert_eq!(norm(&gidmap), "0 300000 65536");
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    // The process runs as container uid 1000 = host uid 201000.
    let st = status_map(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(
        st["Uid"].split_whitespace().next(),
        Some("201000"),
        "{st:?}"
    );
    assert_eq!(
        st["Gid"].split_whitespace().next(),
        Some("301000"),
        "{st:?}"
    );
}

#[test]
fn user_namespace_inside_view() {
    let mut b = bundle("usernsin");
    b.namespace("user", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.remove_mount("/sys/fs/cgroup");
    b.sh("cat /proc/self/uid_map; id -u; grep ^CapEff /proc/self/status");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"],
        "{o:?}"
    );
    assert_eq!(l[1], "0");
}

#[test]
fn cgroup_namespace_hides_the_cgroup_path() {
    let mut b = bundle("cgroupns");
    b.namespace("cgroup", None);
    b.args(&["cat", "/proc/self/cgroup"]);
    let o = b.run_ok();
    for l in o.lines() {
        assert!(
            l.ends_with(":/"),
            "cgroup path visible inside a cgroup namespace: {l} ({o:?})"
        );
    }
}

#[test]
fn hostname_is_set() {
    let mut b = bundle("uts");
    b.set("/hostname", json!("conf-host"));
    b.sh("hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(b.run_ok().lines(), ["conf-host", "conf-host"]);
    // and the host is untouched
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "conf-host"
    );
}

/// config.md `domainname` (runtime-spec 1.1): runc 1.1 ignores it.
#[test]
#[cfg_attr(not(berth_runtime), ignore = "berth_only: runc 1.1 ignores domainname")]
fn berth_only_domainname_is_set() {
    let mut b = bundle("domain");
    b.set("/domainname", json!("conf.example.org"));
    b.args(&["cat", "/proc/sys/kernel/domainname"]);
    assert_eq!(b.run_ok().lines(), ["conf.example.org"]);
}

#[test]
fn hostname_without_uts_namespace_fails() {
    let mut b = bundle("utsnons");
    b.remove_namespace("uts");
    b.set("/hostname", json!("must-not-apply"));
    let id = b.new_id();
    b.create(&id).fails_naming(&["hostname", "uts"]);
    b.assert_nothing_left(&id);
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "must-not-apply"
    );
}

#[test]
fn sysctl_values_are_set_in_the_container_namespaces() {
    let mut b = bundle("sysctl");
    b.set(
        "/linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 1000", "kernel.shmmni": "1234", "kernel.msgmax": "9000"}),
    );
    b.sh("for f in net/ipv4/ip_forward net/ipv4/ping_group_range kernel/shmmni kernel/msgmax; do echo $(cat /proc/sys/$f); done");
    let o = b.run_ok();
    assert_eq!(o.lines(), ["1", "0 1000", "1234", "9000"]);
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234",
        "host sysctl changed"
    );
}

#[test]
fn net_sysctl_without_network_namespace_fails() {
    let mut b = bundle("sysctlhost");
    b.remove_namespace("network");
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&["net.ipv4.ip_forward", "sysctl"]);
    b.assert_nothing_left(&id);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        before
    );
}
