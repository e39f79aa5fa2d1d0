//! `exec` (runc's command line): a new process in a running container joins all of its namespaces, its
//! cgroup and its seccomp profile, takes runc's overrides (-e, --cwd, -u, -g, --cap, --no-new-privs,
//! -t, --preserve-fds, --process FILE), and returns its exit code when attached.

use conformance::*;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn exec_joins_the_container_namespaces_and_cgroup() {
    let (b, id, pid) = running_detached("exec-ns", |_| {});
    let o = b.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for n in mnt pid net ipc uts; do readlink /proc/self/ns/$n; done; echo pid=$$",
    ]);
    o.ok();
    let lines = o.lines();
    for (i, ns) in ["mnt", "pid", "net", "ipc", "uts"].iter().enumerate() {
        assert_eq!(
            lines[i],
            ns_link(&pid.to_string(), ns),
            "{ns} namespace differs"
        );
    }
    // A new process in the container's pid namespace: not its init.
    assert!(
        lines[5].starts_with("pid=") && lines[5] != "pid=1",
        "{lines:?}"
    );
    let o = b.rt(&["exec", &id, "cat", "/proc/self/cgroup"]);
    o.ok();
    let host = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        o.stdout.trim(),
        host.trim(),
        "exec process is not in the container's cgroups"
    );
}

#[test]
fn exec_returns_the_exit_code_and_output() {
    let (b, id, _) = running_detached("exec-rc", |_| {});
    let o = b.rt(&["exec", &id, "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.code, 7, "{o:?}");
    assert_eq!(o.stdout.trim(), "out");
    assert!(o.stderr.contains("err"));
}

#[test]
fn exec_overrides_env_cwd_user_and_groups() {
    let (b, id, _) = running_detached("exec-user", |_| {});
    let o = b.rt(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1001",
        "-g",
        "10",
        "-g",
        "20",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; id -G",
    ]);
    o.ok();
    let lines = o.lines();
    assert_eq!(lines[..4], ["bar", "/tmp", "1000", "1001"]);
    let groups: Vec<&str> = lines[4].split_whitespace().collect();
    assert!(
        groups.contains(&"10") && groups.contains(&"20"),
        "{lines:?}"
    );
}

#[test]
fn exec_of_a_missing_program_fails_naming_it() {
    let (b, id, _) = running_detached("exec-missing", |_| {});
    b.rt(&["exec", &id, "no-such-program"])
        .fails_naming(&["no-such-program", "executable file not found"]);
    // The container is unaffected.
    b.wait_status(&id, "running", T);
}

#[test]
fn exec_detached_writes_the_pid_file() {
    let (b, id, pid) = running_detached("exec-detach", |_| {});
    let pf = b.path().join("exec.pid");
    b.rt(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "30",
    ])
    .ok();
    let exec_pid: i64 = std::fs::read_to_string(&pf)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a bare pid");
    assert_ne!(exec_pid, pid);
    assert_eq!(
        ns_link(&exec_pid.to_string(), "pid"),
        ns_link(&pid.to_string(), "pid"),
        "the detached process is not in the container's pid namespace"
    );
}

#[test]
fn exec_with_a_process_file() {
    let (b, id, _) = running_detached("exec-process", |_| {});
    let p = b.path().join("process.json");
    std::fs::write(
        &p,
        json!({
            "terminal": false,
            "user": {"uid": 2000, "gid": 3000},
            "args": ["sh", "-c", "echo $GREETING; pwd; id -u; id -g"],
            "env": ["PATH=/bin:/usr/bin", "GREETING=from-process-json"],
            "cwd": "/dev"
        })
        .to_string(),
    )
    .unwrap();
    let o = b.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
    o.ok();
    assert_eq!(o.lines(), ["from-process-json", "/dev", "2000", "3000"]);
}

#[test]
fn exec_with_a_relative_cwd_in_the_process_file_fails() {
    let (b, id, _) = running_detached("exec-relcwd", |_| {});
    let p = b.path().join("process.json");
    std::fs::write(
        &p,
        json!({"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "tmp"}).to_string(),
    )
    .unwrap();
    b.rt(&["exec", "--process", p.to_str().unwrap(), &id])
        .fails_naming(&["cwd"]);
    b.wait_status(&id, "running", T);
}

#[test]
fn exec_in_a_stopped_or_unknown_container_fails() {
    let (b, id, _) = running_detached("exec-stopped", |_| {});
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.rt(&["exec", &id, "true"]).fails();
    b.rt(&["exec", "no-such-container-xyz", "true"]).fails();
}

#[test]
fn exec_gets_the_container_seccomp_profile() {
    let (b, id, _) = running_detached("exec-seccomp", |b| {
        b.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
        );
    });
    let o = b.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/d && echo made || echo denied",
    ]);
    o.ok();
    assert_eq!(o.stdout.trim(), "denied");
}

#[test]
fn exec_with_a_terminal_through_the_console_socket() {
    let (b, id, _) = running_detached("exec-tty", |_| {});
    let sock = ConsoleSocket::listen(&b, Duration::from_secs(20));
    b.rt(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.path().to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty",
    ])
    .ok();
    let out = String::from_utf8_lossy(&sock.output().expect("console output")).replace('\r', "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "is-a-tty", "{out:?}");
    assert!(lines[1].starts_with("/dev/pts/"), "{out:?}");
}

#[test]
fn exec_cap_adds_a_capability() {
    let (b, id, _) = running_detached("exec-cap", |_| {});
    let o = b.rt(&[
        "exec",
        "--cap",
        "CAP_NET_RAW",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    o.ok();
    let st = status_map(&o.stdout);
    let eff = u64::from_str_radix(&st["CapEff"], 16).unwrap();
    let bnd = u64::from_str_radix(&st["CapBnd"], 16).unwrap();
    let raw = 1u64 << cap_bit("CAP_NET_RAW");
    assert_ne!(eff & raw, 0, "CAP_NET_RAW not effective: {st:?}");
    assert_ne!(bnd & raw, 0, "CAP_NET_RAW not in the bounding set: {st:?}");
    // The container's own process does not have it.
    let o = b.rt(&["exec", &id, "cat", "/proc/self/status"]);
    let eff = u64::from_str_radix(&status_map(&o.stdout)["CapEff"], 16).unwrap();
    assert_eq!(eff & raw, 0);
}

#[test]
fn exec_no_new_privs_flag() {
    let (b, id, _) = running_detached("exec-nnp", |b| {
        b.set("/process/noNewPrivileges", json!(false));
    });
    let o = b.rt(&["exec", &id, "grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(o.stdout.split_whitespace().last(), Some("0"), "{o:?}");
    let o = b.rt(&[
        "exec",
        "--no-new-privs",
        &id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(o.stdout.split_whitespace().last(), Some("1"), "{o:?}");
}

#[test]
fn exec_preserve_fds_passes_extra_fds() {
    let (b, id, _) = running_detached("exec-fds", |_| {});
    std::fs::write(b.path().join("passed.txt"), "through-fd-3\n").unwrap();
    let o = b.rt_after(
        "exec 3<passed.txt 4<passed.txt",
        &[
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "sh",
            "-c",
            "cat <&3; [ -e /proc/self/fd/4 ] && echo fd4-open || echo fd4-closed",
        ],
    );
    o.ok();
    assert_eq!(o.lines(), ["through-fd-3", "fd4-closed"]);
}
