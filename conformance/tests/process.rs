//! config.md `process` and config-linux.md process extensions, checked from
//! inside the container.

use conformance::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn args_are_passed_verbatim() {
    let mut b = bundle("args");
    // `; true` keeps sh from exec'ing tr, so pid 1 is still the configured sh.
    b.args(&[
        "sh",
        "-c",
        "tr '\\0' '|' < /proc/1/cmdline; true",
        "with space",
        "",
        "last",
    ]);
    let o = b.run_ok();
    assert_eq!(
        o.stdout,
        "sh|-c|tr '\\0' '|' < /proc/1/cmdline; true|with space||last|"
    );
}

#[test]
fn args0_is_looked_up_in_the_container_path() {
    let mut b = bundle("argspath");
    // echo is /bin/echo in the rootfs; PATH comes from process.env.
    b.args(&["echo", "found"]);
    assert_eq!(b.run_ok().stdout, "found\n");
}

#[test]
fn env_is_exact() {
    let mut b = bundle("env");
    b.set(
        "/process/env",
        json!([
            "PATH=/bin:/usr/bin",
            "SPACED=a b  c",
            "EQUALS=x=y=z",
            "EMPTY="
        ]),
    );
    b.args(&["env"]);
    let o = b.run_ok();
    let lines: BTreeSet<String> = o.lines().into_iter().collect();
    for want in [
        "PATH=/bin:/usr/bin",
        "SPACED=a b  c",
        "EQUALS=x=y=z",
        "EMPTY=",
    ] {
        assert!(lines.contains(want), "{want} missing from env: {lines:?}");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("TERM=")),
        "TERM leaked in although not configured: {lines:?}"
    );
}

#[test]
fn cwd_is_set() {
    let mut b = bundle("cwd");
    b.set("/process/cwd", json!("/home/user1"));
    b.args(&["pwd"]);
    assert_eq!(b.run_ok().stdout.trim(), "/home/user1");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let mut b = bundle("user");
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1001, "additionalGids": [100, 5, 2000]}),
    );
    b.sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status; id -u; id -g");
    let o = b.run_ok();
    let st = status_map(&o.stdout);
    assert_eq!(
        st["Uid"].split_whitespace().collect::<Vec<_>>(),
        ["1000"; 4],
        "{o:?}"
    );
    assert_eq!(
        st["Gid"].split_whitespace().collect::<Vec<_>>(),
        ["1001"; 4],
        "{o:?}"
    );
    let groups: BTreeSet<u32> = st["Groups"]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    for g in [100, 5, 2000] {
        assert!(
            groups.contains(&g),
            "additional gid {g} missing: {groups:?}"
        );
    }
    assert!(
        !groups.contains(&0),
        "root group kept in supplementary groups: {groups:?}"
    );
}

#[test]
fn user_without_additional_gids_has_no_root_group() {
    let mut b = bundle("usernog");
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.sh("grep -E '^Groups:' /proc/self/status");
    let o = b.run_ok();
    let st = status_map(&o.stdout);
    assert!(
        st["Groups"].split_whitespace().all(|g| g == "1000"),
        "unexpected supplementary groups {:?}",
        st["Groups"]
    );
}

#[test]
fn umask_is_applied() {
    let mut b = bundle("umask");
    b.set("/process/user/umask", json!(0o027));
    b.sh("umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d");
    let o = b.run_ok();
    assert_eq!(o.lines(), ["0027", "640", "750"]);
}

#[test]
fn capabilities_root_exact_sets() {
    let caps = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
    ];
    let mut b = bundle("capsroot");
    b.set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []}),
    );
    b.sh("grep ^Cap /proc/self/status");
    let o = b.run_ok();
    let st = status_map(&o.stdout);
    let hex = |k: &str| u64::from_str_radix(&st[k], 16).unwrap();
    let m = cap_mask(&caps);
    assert_eq!(hex("CapBnd"), m, "bounding: {o:?}");
    assert_eq!(hex("CapPrm"), m, "permitted: {o:?}");
    assert_eq!(hex("CapEff"), m, "effective: {o:?}");
    assert_eq!(hex("CapInh"), 0, "inheritable: {o:?}");
    assert_eq!(hex("CapAmb"), 0, "ambient: {o:?}");
}

#[test]
fn capabilities_non_root_with_ambient() {
    // For a non-root user exec'ing a file without file capabilities the kernel
    // sets permitted = effective = ambient; inheritable and bounding are kept.
    let mut b = bundle("capsuser");
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.set(
        "/process/capabilities",
        json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_TIME"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL", "CAP_NET_RAW"]
        }),
    );
    b.sh("grep ^Cap /proc/self/status");
    let o = b.run_ok();
    let st = status_map(&o.stdout);
    let hex = |k: &str| u64::from_str_radix(&st[k], 16).unwrap();
    let amb = cap_mask(&["CAP_KILL", "CAP_NET_RAW"]);
    assert_eq!(
        hex("CapBnd"),
        cap_mask(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_TIME"]),
        "{o:?}"
    );
    assert_eq!(hex("CapInh"), amb, "{o:?}");
    assert_eq!(hex("CapAmb"), amb, "{o:?}");
    assert_eq!(hex("CapPrm"), amb, "{o:?}");
    assert_eq!(hex("CapEff"), amb, "{o:?}");
}

#[test]
fn dropped_capability_is_enforced() {
    let mut b = bundle("capdrop");
    b.caps(&["CAP_KILL"]);
    b.sh("touch /tmp/f; chown 1000 /tmp/f && echo chown-ok || echo chown-denied");
    assert_eq!(b.run_ok().stdout.trim(), "chown-denied");
    let mut b = bundle("capkeep");
    b.caps(&["CAP_CHOWN"]);
    b.sh("touch /tmp/f; chown 1000 /tmp/f && echo chown-ok || echo chown-denied");
    assert_eq!(b.run_ok().stdout.trim(), "chown-ok");
}

#[test]
fn rlimits_are_applied() {
    let mut b = bundle("rlimits");
    b.set(
        "/process/rlimits",
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
            {"type": "RLIMIT_CORE", "soft": 1024, "hard": 2048},
            {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
            {"type": "RLIMIT_NICE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608}
        ]),
    );
    b.sh("cat /proc/self/limits; ulimit -n");
    let o = b.run_ok();
    let find = |name: &str| -> (String, String) {
        let l = o
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {o:?}"));
        let f: Vec<&str> = l[name.len()..].split_whitespace().collect();
        (f[0].to_string(), f[1].to_string())
    };
    assert_eq!(find("Max open files"), ("123".into(), "456".into()));
    assert_eq!(find("Max core file size"), ("1024".into(), "2048".into()));
    assert_eq!(find("Max msgqueue size"), ("4096".into(), "8192".into()));
    assert_eq!(find("Max nice priority"), ("0".into(), "0".into()));
    assert_eq!(find("Max stack size"), ("4194304".into(), "8388608".into()));
    assert_eq!(o.lines().last().map(String::as_str), Some("123"));
}

#[test]
fn no_new_privileges_true_and_false() {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = bundle("nnp");
        b.set("/process/noNewPrivileges", json!(nnp));
        b.sh("grep ^NoNewPrivs: /proc/self/status");
        let o = b.run_ok();
        assert_eq!(
            status_map(&o.stdout)["NoNewPrivs"],
            want,
            "noNewPrivileges={nnp}"
        );
    }
}

#[test]
fn oom_score_adj_is_applied() {
    for v in [0, 500, 1000] {
        let mut b = bundle("oom");
        b.set("/process/oomScoreAdj", json!(v));
        b.args(&["cat", "/proc/self/oom_score_adj"]);
        assert_eq!(b.run_ok().stdout.trim(), v.to_string());
    }
}

#[test]
fn terminal_via_console_socket_with_console_size() {
    let mut b = bundle("tty");
    b.set("/process/terminal", json!(true));
    b.set("/process/consoleSize", json!({"height": 33, "width": 101}));
    b.sh("[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; stty size; [ -c /dev/console ] && echo console-chr; echo done");
    let sock = ConsoleSocket::listen(&b, Duration::from_secs(20));
    let id = b.new_id();
    b.create_with(&id, &["--console-socket", sock.path().to_str().unwrap()])
        .ok();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", Duration::from_secs(10));
    let out = String::from_utf8_lossy(&sock.output().expect("console output")).replace('\r', "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["all-tty", "33 101", "console-chr", "done"],
        "{out:?}"
    );
    b.delete(&id).ok();
}

#[test]
fn terminal_without_console_socket_fails_for_create() {
    let mut b = bundle("ttynosock");
    b.set("/process/terminal", json!(true));
    let id = b.new_id();
    b.create(&id).fails();
    b.assert_nothing_left(&id);
}

#[test]
fn no_terminal_means_no_console_device_and_stdio_passed() {
    let mut b = bundle("notty");
    b.sh("[ -t 1 ] && echo tty || echo not-a-tty; [ -e /dev/console ] && echo console || echo no-console");
    assert_eq!(b.run_ok().lines(), ["not-a-tty", "no-console"]);
}

#[test]
fn preserve_fds_passes_extra_fds() {
    let b = bundle("preservefds");
    let mut b = b;
    std::fs::write(b.path().join("passed.txt"), "through-fd-3\n").unwrap();
    b.sh("cat <&3; [ -e /proc/self/fd/4 ] && echo fd4-open || echo fd4-closed");
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    // fd 3 and 4 are open in the runtime's process; only fd 3 is preserved.
    let o = b.rt_after(
        "exec 3<passed.txt 4<passed.txt",
        &["run", "--preserve-fds", "1", "--bundle", &dir, &id],
    );
    o.ok();
    assert_eq!(o.lines(), ["through-fd-3", "fd4-closed"]);
}

#[test]
fn non_preserved_fds_are_not_leaked() {
    let mut b = bundle("fdleak");
    std::fs::write(b.path().join("f.txt"), "x").unwrap();
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    let o = b.rt_after("exec 3<f.txt 7<f.txt", &["run", "--bundle", &dir, &id]);
    o.ok();
    // 0,1,2 and the fd `ls` uses to read the directory (3); nothing else.
    assert_eq!(o.stdout.trim(), "0 1 2 3", "{o:?}");
}

#[test]
fn listen_fds_are_passed_for_socket_activation() {
    // runc passes LISTEN_FDS fds (systemd socket activation) through to the
    // container, with LISTEN_FDS set and LISTEN_PID=1.
    let mut b = bundle("listenfds");
    std::fs::write(b.path().join("sock.txt"), "activated\n").unwrap();
    b.sh("echo fds=$LISTEN_FDS pid=$LISTEN_PID; cat <&3");
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    let o = b.rt_after(
        "exec 3<sock.txt; export LISTEN_PID=$$ LISTEN_FDS=1",
        &["run", "--bundle", &dir, &id],
    );
    o.ok();
    assert_eq!(o.lines(), ["fds=1 pid=1", "activated"]);
}
