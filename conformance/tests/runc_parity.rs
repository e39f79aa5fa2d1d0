//! Behaviours where a drop-in for runc must do what runc does (issue 9): a realistic seccomp
//! allow-list without the newer syscalls, no mount namespace, data options on a bind mount, exact
//! rlimits, loopback up in a new network namespace, `--preserve-fds` passing only the caller's fds,
//! `exec -e` replacing a variable, user namespaces under a directory the mapped root cannot search,
//! relative masked/read-only paths, `/proc` or `/sys` symlinks in the image, error wording, ill-typed
//! input naming the field, pids/memory/ociVersion details of runtime-spec 1.3, masked directories.
//!
//! Each test checks the effect from inside the container (busybox commands printing what they see),
//! or from the host where that is the only place (fd tables, cgroup files, exit code, error text).
//! Where runc 1.1.5 lacks a behaviour, or does it wrongly, the test is `berth_only_...` and says why.

use conformance::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// The fd numbers open in process `pid` (read from the host).
fn fds_of(pid: i64) -> BTreeSet<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// Wait (bounded) until process `pid` runs `prog` (its argv[0]), i.e. the runtime has exec'd it.
#[track_caller]
fn wait_exec(pid: i64, prog: &str) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd.split(|c| *c == 0).next() == Some(prog.as_bytes()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} did not exec {prog}: cmdline {:?}",
            String::from_utf8_lossy(&cmd)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `ls -l`-like view of a process's fds, for messages.
fn describe_fds(pid: i64) -> String {
    fds_of(pid)
        .into_iter()
        .map(|fd| {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{fd} -> {target}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Open a file or directory read-only (close-on-exec, as std opens everything).
fn open_ro(p: &Path) -> OwnedFd {
    OwnedFd::from(std::fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display())))
}

/// Parse `/proc/self/limits` output: name -> (soft, hard).
fn limits(text: &str, name: &str) -> (String, String) {
    let l = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} missing from limits: {text}"));
    let f: Vec<&str> = l[name.len()..].split_whitespace().collect();
    (f[0].to_string(), f[1].to_string())
}

// ---------------------------------------------------------------------------
// 1. seccomp: an allow-list without the syscalls newer than Linux 5.8
// ---------------------------------------------------------------------------

/// What a Docker-like default profile of before Linux 5.9 allows on x86_64: no close_range, clone3,
/// faccessat2, openat2, pidfd_*, epoll_pwait2, rseq, io_uring. Everything else is EPERM
/// (`SCMP_ACT_ERRNO`), which a runtime must not take for "not implemented".
#[rustfmt::skip]
fn pre_5_9_allow_list() -> Vec<&'static str> {
    vec![
        "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "capget",
        "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime",
        "clock_nanosleep", "clone", "close", "connect", "copy_file_range", "creat", "dup", "dup2",
        "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait",
        "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "fadvise64",
        "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchownat", "fcntl",
        "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
        "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futimesat", "getcpu", "getcwd",
        "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer",
        "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
        "getresgid", "getresuid", "getrlimit", "get_robust_list", "getrusage", "getsid",
        "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
        "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
        "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get",
        "ioprio_set", "io_setup", "io_submit", "kill", "lchown", "lgetxattr", "link", "linkat",
        "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat",
        "madvise", "memfd_create", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
        "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
        "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
        "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open",
        "openat", "pause", "pipe", "pipe2", "poll", "ppoll", "prctl", "pread64", "preadv",
        "preadv2", "prlimit64", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
        "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
        "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir",
        "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity",
        "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
        "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
        "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid",
        "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority", "setregid",
        "setresgid", "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid",
        "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setxattr", "shmat", "shmctl",
        "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socket",
        "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync",
        "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
        "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
        "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask", "uname",
        "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4",
        "waitid", "write", "writev",
    ]
}

fn pre_5_9_profile() -> Value {
    profile_allowing(pre_5_9_allow_list())
}

fn profile_allowing(names: Vec<&str>) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

/// The two ways close_range fails under such profiles: with the pre-5.9 list alone it is newer than
/// every listed syscall, and runc (libseccomp-golang's patchbpf) makes such syscalls fail with
/// ENOSYS; with one newer syscall allowed as well (epoll_pwait2, Linux 5.11) close_range gets the
/// default action: EPERM.
fn close_range_failing_profiles() -> [(&'static str, Value); 2] {
    let mut with_newer = pre_5_9_allow_list();
    with_newer.push("epoll_pwait2");
    [
        ("pre-5.9 list (close_range: ENOSYS)", pre_5_9_profile()),
        (
            "pre-5.9 list + epoll_pwait2 (close_range: EPERM)",
            profile_allowing(with_newer),
        ),
    ]
}

/// The filter is installed before the runtime's last steps (with noNewPrivileges false, even
/// before dropping capabilities): those steps must work with what a realistic profile allows,
/// i.e. without close_range and the other post-5.8 calls, which return EPERM here, not ENOSYS.
#[test]
fn seccomp_allow_list_without_close_range_runs_with_and_without_no_new_privileges() {
    assert!(!pre_5_9_allow_list().contains(&"close_range"));
    for ((what, profile), nnp) in close_range_failing_profiles()
        .into_iter()
        .flat_map(|p| [(p.clone(), false), (p, true)])
    {
        let mut b = bundle("seccomp-pre59");
        b.set("/process/noNewPrivileges", json!(nnp));
        b.set("/linux/seccomp", profile);
        // unshare is not in the list: EPERM shows the filter is the configured one.
        b.sh(
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; ls / >/dev/null && echo ls-ok; \
              unshare -U true 2>/dev/null && echo unshare-allowed || echo unshare-denied",
        );
        let o = b.run();
        assert!(
            o.success(),
            "{what}, noNewPrivileges={nnp}: the container did not run: {o:?}"
        );
        let st = status_map(&o.stdout);
        assert_eq!(st.get("Seccomp").map(String::as_str), Some("2"), "{o:?}");
        assert_eq!(
            st.get("NoNewPrivs").map(String::as_str),
            Some(if nnp { "1" } else { "0" }),
            "{o:?}"
        );
        let l = o.lines();
        assert!(l.contains(&"ls-ok".to_string()), "{o:?}");
        assert!(l.contains(&"unshare-denied".to_string()), "{o:?}");
    }
}

/// The same profile for an exec'd process (it gets the container's filter).
#[test]
fn seccomp_allow_list_without_close_range_works_for_exec() {
    for (what, profile) in close_range_failing_profiles() {
        let (b, id, _) = running_detached("seccomp-pre59-exec", |b| {
            b.set("/process/noNewPrivileges", json!(false));
            b.set("/linux/seccomp", profile);
        });
        let o = b.rt(&["exec", &id, "sh", "-c", "grep ^Seccomp: /proc/self/status"]);
        assert!(o.success(), "{what}: {o:?}");
        assert_eq!(status_map(&o.stdout)["Seccomp"], "2", "{what}: {o:?}");
    }
}

// ---------------------------------------------------------------------------
// 2. no mount namespace
// ---------------------------------------------------------------------------

/// Without a mount namespace in linux.namespaces, runc sets up the mounts in the runtime's own mount
/// namespace and chroots into the rootfs. The runtime runs here under `unshare -m --propagation
/// private`, so that namespace is a throwaway of the test's. runc refuses maskedPaths/readonlyPaths
/// without a mount namespace ("unable to restrict sys entries without a private MNT namespace"), so
/// the config has none.
#[test]
fn no_mount_namespace_runs_in_the_rootfs() {
    let mut b = bundle("nomntns");
    b.runtime_prefix = ["unshare", "-m", "--propagation", "private"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    b.remove_namespace("mount");
    b.remove("/linux/maskedPaths");
    b.remove("/linux/readonlyPaths");
    std::fs::write(b.rootfs().join("rootfs-marker"), "in-the-rootfs\n").unwrap();
    let host_config = b.path().join("config.json");
    b.sh(&format!(
        "cat /rootfs-marker; [ -e {} ] && echo host-visible || echo host-hidden; \
         stat -f -c %T /proc; ls /dev/null >/dev/null && echo dev-ok",
        host_config.display()
    ));
    let o = b.run();
    assert!(
        o.success(),
        "runc runs a container without a mount namespace: {o:?}"
    );
    assert_eq!(
        o.lines(),
        ["in-the-rootfs", "host-hidden", "proc", "dev-ok"],
        "{o:?}"
    );
}

// ---------------------------------------------------------------------------
// 3. filesystem data options on a bind mount
// ---------------------------------------------------------------------------

/// mount(2) ignores the data argument of MS_BIND; runc passes it along and the bind works.
#[test]
fn bind_mount_with_filesystem_data_options_is_a_plain_bind() {
    let mut b = bundle("binddata");
    let src = b.path().join("bindsrc");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("marker"), "bound\n").unwrap();
    b.mount(
        json!({"destination": "/data", "type": "bind", "source": src,
                   "options": ["bind", "mode=755", "size=1k"]}),
    );
    b.sh("cat /data/marker; awk '$5 == \"/data\" {print $4}' /proc/self/mountinfo");
    let o = b.run();
    assert!(
        o.success(),
        "a bind mount with data options must run: {o:?}"
    );
    let l = o.lines();
    assert_eq!(l[0], "bound", "{o:?}");
    assert_eq!(
        l.get(1).map(String::as_str),
        Some(src.to_str().unwrap()),
        "/data is not the bind of the source: {o:?}"
    );
}

// ---------------------------------------------------------------------------
// 4. rlimits, exactly
// ---------------------------------------------------------------------------

fn rlimit_config() -> Value {
    // All hard limits are at most this host's (root here lacks CAP_SYS_RESOURCE).
    json!([
        {"type": "RLIMIT_NOFILE", "soft": 3000, "hard": 4000},
        {"type": "RLIMIT_CORE", "soft": 1000000, "hard": 2000000},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_MSGQUEUE", "soft": 409600, "hard": 819200},
        {"type": "RLIMIT_SIGPENDING", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
        {"type": "RLIMIT_CPU", "soft": 3000, "hard": 4000}
    ])
}

const LIMIT_ROWS: [(&str, &str, &str); 7] = [
    ("Max open files", "3000", "4000"),
    ("Max core file size", "1000000", "2000000"),
    ("Max processes", "1000", "2000"),
    ("Max msgqueue size", "409600", "819200"),
    ("Max pending signals", "1000", "2000"),
    ("Max stack size", "4194304", "8388608"),
    ("Max cpu time", "3000", "4000"),
];

#[track_caller]
fn check_limits(o: &Out) {
    for (name, soft, hard) in LIMIT_ROWS {
        assert_eq!(
            limits(&o.stdout, name),
            (soft.to_string(), hard.to_string()),
            "{name}: {o:?}"
        );
    }
    let l = o.lines();
    let n = l.len();
    assert_eq!(l[n - 2..], ["3000", "4000"], "ulimit -n / -Hn: {o:?}");
}

#[test]
fn rlimits_soft_below_hard_are_exact_in_the_init() {
    let mut b = bundle("rlimits-exact");
    b.set("/process/rlimits", rlimit_config());
    b.sh("cat /proc/self/limits; ulimit -n; ulimit -Hn");
    let o = b.run_ok();
    check_limits(&o);
}

/// runc 1.1.5's exec'd processes get RLIMIT_NOFILE soft = hard (4000/4000): the Go runtime raises
/// the soft limit at startup and runc 1.1 does not put the configured one back for exec.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 execs with RLIMIT_NOFILE soft raised to the hard limit"
)]
fn berth_only_rlimits_soft_below_hard_are_exact_in_an_exec() {
    let (b, id, _) = running_detached("rlimits-exec", |b| {
        b.set("/process/rlimits", rlimit_config());
    });
    let o = b.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/limits; ulimit -n; ulimit -Hn",
    ]);
    o.ok();
    check_limits(&o);
}

// ---------------------------------------------------------------------------
// 5. loopback in a new network namespace
// ---------------------------------------------------------------------------

const IFF_UP: u32 = 0x1;

/// A shell function `get PORT`: HTTP GET of /index.html on 127.0.0.1:PORT with busybox nc, printing
/// the body. (busybox-static's wget crashes in the static resolver.)
const HTTP_GET: &str = "get() { printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 $1 2>/dev/null | sed '1,/^\\r*$/d' | grep . ; }";

/// runc brings `lo` up in a network namespace it creates; a server on 127.0.0.1 works.
#[test]
fn new_network_namespace_has_loopback_up_and_usable() {
    let mut b = bundle("loup");
    b.sh(&format!("{HTTP_GET}; cat /sys/class/net/lo/flags; mkdir /tmp/www; echo served-locally > /tmp/www/index.html; \
          httpd -p 127.0.0.1:8080 -h /tmp/www; \
          for i in $(seq 50); do get 8080 && break; sleep 0.1; done"));
    let o = b.run_ok();
    let l = o.lines();
    let flags = u32::from_str_radix(l[0].trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("bad flags {:?}", l[0]));
    assert!(
        flags & IFF_UP != 0,
        "lo is down (flags {:#x}): {o:?}",
        flags
    );
    assert!(
        l.contains(&"served-locally".to_string()),
        "127.0.0.1 server unreachable inside: {o:?}"
    );
}

/// A second container joining the first one's network namespace by path reaches its 127.0.0.1.
#[test]
fn joined_network_namespace_reaches_the_first_containers_loopback_server() {
    let (_a, _ida, pida) = running_detached("lo-server", |b| {
        b.sh(
            "mkdir /tmp/www; echo served-by-first > /tmp/www/index.html; \
              exec httpd -f -p 127.0.0.1:8081 -h /tmp/www",
        );
    });
    let mut b = bundle("lo-client");
    b.namespace("network", Some(&format!("/proc/{pida}/ns/net")));
    b.sh(&format!(
        "{HTTP_GET}; for i in $(seq 50); do get 8081 && break; sleep 0.1; done"
    ));
    let o = b.run_ok();
    assert_eq!(o.lines(), ["served-by-first"], "{o:?}");
}

// ---------------------------------------------------------------------------
// 6. --preserve-fds passes the caller's fds, nothing of the runtime's
// ---------------------------------------------------------------------------

/// `create --preserve-fds 100` from a caller holding only stdio: the container must not get fds
/// the caller did not have (the runtime's own sockets, pipes, directories). runc 1.1.5 refuses
/// ("unable to stat preserved-fd 4 (of 100)"), which is also a pass; running with exactly 0, 1, 2
/// is the other.
#[test]
fn preserve_fds_100_from_a_stdio_only_caller_passes_nothing_extra() {
    let mut b = bundle("preserve100");
    b.args(&["sleep", "600"]);
    let id = b.new_id();
    let o = b.create_with(&id, &["--preserve-fds", "100"]);
    if !o.success() {
        assert!(!o.stderr.contains("panicked at"), "{o:?}");
        b.assert_nothing_left(&id);
        return;
    }
    b.start(&id).ok();
    let pid = b.wait_status(&id, "running", T)["pid"].as_i64().unwrap();
    wait_exec(pid, "sleep");
    assert_eq!(
        fds_of(pid),
        BTreeSet::from([0, 1, 2]),
        "fds the caller did not hold reached the container: {}",
        describe_fds(pid)
    );
}

/// `--preserve-fds 2` from a caller with nothing at 3 and 4. runc 1.1.5 hands over its own fds
/// there: fd 3 is its handle on the host's /sys/fs/cgroup, fd 4 an epoll fd (a container escape,
/// see escapes.rs).
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 passes its own fds (host /sys/fs/cgroup, epoll) as preserved fds"
)]
fn berth_only_preserve_fds_2_without_caller_fds_passes_no_runtime_fd() {
    let mut b = bundle("preserve2none");
    b.args(&["sleep", "600"]);
    let id = b.new_id();
    let o = b.create_with(&id, &["--preserve-fds", "2"]);
    if !o.success() {
        assert!(!o.stderr.contains("panicked at"), "{o:?}");
        b.assert_nothing_left(&id);
        return;
    }
    b.start(&id).ok();
    let pid = b.wait_status(&id, "running", T)["pid"].as_i64().unwrap();
    wait_exec(pid, "sleep");
    assert_eq!(
        fds_of(pid),
        BTreeSet::from([0, 1, 2]),
        "runtime fds reached the container: {}",
        describe_fds(pid)
    );
}

/// With fds 3 and 4 held by the caller, `--preserve-fds 2` passes exactly those two.
#[test]
fn preserve_fds_2_passes_exactly_the_callers_fds_3_and_4() {
    let mut b = bundle("preserve2");
    let f3 = b.path().join("fd3.txt");
    let f4 = b.path().join("fd4.txt");
    std::fs::write(&f3, "three\n").unwrap();
    std::fs::write(&f4, "four\n").unwrap();
    b.args(&["sleep", "600"]);
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    let (o3, o4) = (open_ro(&f3), open_ro(&f4));
    let mut c = b.rt_cmd(&["create", "--preserve-fds", "2", "--bundle", &dir, &id]);
    let _keep = pass_fds(&mut c, &[(&o3, 3), (&o4, 4)]);
    run_cmd(c, b.path(), CMD_TIMEOUT).ok();
    b.start(&id).ok();
    let pid = b.wait_status(&id, "running", T)["pid"].as_i64().unwrap();
    wait_exec(pid, "sleep");
    assert_eq!(
        fds_of(pid),
        BTreeSet::from([0, 1, 2, 3, 4]),
        "{}",
        describe_fds(pid)
    );
    for (fd, p) in [(3, &f3), (4, &f4)] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            **p,
            "fd {fd}: {}",
            describe_fds(pid)
        );
    }
    // and they are readable from inside
    let o = b.rt(&["exec", &id, "sh", "-c", "cat /proc/1/fd/3 /proc/1/fd/4"]);
    o.ok();
    assert_eq!(o.lines(), ["three", "four"], "{o:?}");
}

// ---------------------------------------------------------------------------
// 7. exec -e replaces a variable of the config
// ---------------------------------------------------------------------------

#[test]
fn exec_env_overrides_the_configs_variable_exactly_once() {
    let (b, id, _) = running_detached("exec-env-dup", |b| {
        b.push("/process/env", json!("MY_VAR=from_spec"));
    });
    let o = b.rt(&[
        "exec",
        "-e",
        "MY_VAR=from_cli",
        &id,
        "cat",
        "/proc/self/environ",
    ]);
    o.ok();
    let vars: Vec<&str> = o
        .stdout
        .split('\0')
        .filter(|v| v.starts_with("MY_VAR="))
        .collect();
    assert_eq!(vars, ["MY_VAR=from_cli"], "environ: {:?}", o.stdout);
}

// ---------------------------------------------------------------------------
// 8. personality in the init and in exec
// ---------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 ignores linux.personality"
)]
fn berth_only_personality_linux32_in_init_and_exec() {
    let (b, id, pid) = running_detached("persona-exec", |b| {
        b.set("/linux/personality", json!({"domain": "LINUX32"}));
        b.sh("uname -m > /tmp/init-machine; exec sleep 600");
    });
    assert!(b.wait_rootfs_file("/tmp/init-machine", T));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.read_rootfs("/tmp/init-machine").trim(), "i686");
    let o = b.rt(&["exec", &id, "uname", "-m"]);
    o.ok();
    assert_eq!(o.stdout.trim(), "i686", "exec'd process: {o:?}");
    // the init itself (not only its children)
    let persona = std::fs::read_to_string(format!("/proc/{pid}/personality")).unwrap();
    assert_eq!(
        u32::from_str_radix(persona.trim(), 16).unwrap() & 0xff,
        0x08,
        "PER_LINUX32: {persona}"
    );
}

// ---------------------------------------------------------------------------
// 9. exec --cgroup
// ---------------------------------------------------------------------------

/// Make `<container cgroup>/<sub>` in every hierarchy the container's init is in (cpuset copies
/// its parent's cpus and mems, as v1 requires before a task may join). Removed with the bundle.
fn make_sub_cgroups(pid: i64, sub: &str) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in s.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        let dir = if cgroup_v2() {
            Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
        } else if ctrls.is_empty() {
            Path::new("/sys/fs/cgroup/unified").join(path.trim_start_matches('/'))
        } else {
            let name = ctrls.trim_start_matches("name=");
            Path::new("/sys/fs/cgroup")
                .join(name)
                .join(path.trim_start_matches('/'))
        };
        if !dir.is_dir() {
            continue;
        }
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        if ctrls.split(',').any(|c| c == "cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(dir.join(f)).unwrap();
                std::fs::write(d.join(f), v.trim()).unwrap();
            }
        }
    }
}

/// `exec --cgroup [CONTROLLER[,CONTROLLER]:]PATH` (runc >= 1.1: "run the process in an (existing)
/// sub-cgroup(s)"): a path for all controllers, or for one on v1; a missing one is an error.
#[test]
fn exec_cgroup_runs_in_the_sub_cgroup() {
    let (b, id, pid) = running_detached("exec-cgroup", |_| {});
    make_sub_cgroups(pid, "sub");
    let init = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let o = b.rt(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    o.ok();
    let want: Vec<String> = init
        .lines()
        .map(|l| format!("{}/sub", l.trim_end()))
        .collect();
    assert_eq!(o.lines(), want, "init's cgroups:\n{init}");
    if !cgroup_v2() {
        // v1: one controller only; the others stay in the container's cgroup.
        make_sub_cgroups(pid, "pidsonly");
        let o = b.rt(&[
            "exec",
            "--cgroup",
            "pids:pidsonly",
            &id,
            "cat",
            "/proc/self/cgroup",
        ]);
        o.ok();
        for (got, base) in o.lines().iter().zip(init.lines()) {
            let ctrls = base.split(':').nth(1).unwrap_or("");
            if ctrls.split(',').any(|c| c == "pids") {
                assert_eq!(*got, format!("{base}/pidsonly"), "{o:?}");
            } else {
                assert_eq!(got, base, "{o:?}");
            }
        }
    }
    // A sub-cgroup that does not exist is an error.
    b.rt(&["exec", "--cgroup", "missing-sub", &id, "true"])
        .fails_naming(&["missing-sub"]);
}

// ---------------------------------------------------------------------------
// 10. time namespace with a user namespace
// ---------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 has no time namespace support"
)]
fn berth_only_time_namespace_offsets_with_a_user_namespace() {
    let mut b = bundle("timens-userns");
    b.namespace("user", None);
    b.namespace("time", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.remove_mount("/sys/fs/cgroup");
    b.set(
        "/linux/timeOffsets",
        json!({"monotonic": {"secs": 864000, "nanosecs": 0}, "boottime": {"secs": 1728000, "nanosecs": 0}}),
    );
    b.sh("cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime; id -u");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        ["monotonic", "864000", "0"],
        "{o:?}"
    );
    assert_eq!(
        l[1].split_whitespace().collect::<Vec<_>>(),
        ["boottime", "1728000", "0"],
        "{o:?}"
    );
    assert!(l[2].parse::<u64>().unwrap() >= 1728000, "{o:?}");
    assert_eq!(l[3], "0", "{o:?}");
}

// ---------------------------------------------------------------------------
// 11. a user namespace whose rootfs lies under a directory the mapped root cannot search
// ---------------------------------------------------------------------------

/// The bundle directory is 0700 and owned by host root; container root is host uid 100000, which
/// may not search it. The runtime (host root) can open the rootfs before it enters the user
/// namespace. runc 1.1.5 fails here: "mount <rootfs>:<rootfs>, flags: 0x5000: permission denied".
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 binds the rootfs by path from inside the user namespace: EACCES"
)]
fn berth_only_user_namespace_rootfs_under_an_unsearchable_directory() {
    let mut b = bundle("userns-0700");
    std::fs::write(b.rootfs().join("rootfs-marker"), "reached\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    b.namespace("user", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.remove_mount("/sys/fs/cgroup");
    b.sh("id -u; cat /proc/self/uid_map; cat /rootfs-marker");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(l[0], "0", "{o:?}");
    assert_eq!(
        l[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"],
        "{o:?}"
    );
    assert_eq!(l[2], "reached", "{o:?}");
}

// ---------------------------------------------------------------------------
// 12. relative masked and read-only paths
// ---------------------------------------------------------------------------

/// runc masks and remounts these after pivot_root with `/` as its working directory, so
/// `proc/keys` means `/proc/keys` (the spec asks for absolute paths; runc accepts these).
#[test]
fn relative_masked_and_readonly_paths_are_relative_to_the_root() {
    let mut b = bundle("relmask");
    b.set("/linux/maskedPaths", json!(["proc/keys", "proc/acpi"]));
    b.set("/linux/readonlyPaths", json!(["proc/sys"]));
    b.sh(
        "stat -c %t:%T /proc/keys; wc -c < /proc/keys; ls -A /proc/acpi | wc -l; \
          awk '$5 == \"/proc/sys\" {print $6}' /proc/self/mountinfo | cut -d, -f1",
    );
    let o = b.run();
    assert!(o.success(), "relative paths must be accepted: {o:?}");
    let l = o.lines();
    assert_eq!(
        l[0], "1:3",
        "/proc/keys is not masked with /dev/null: {o:?}"
    );
    assert_eq!(l[1].trim(), "0", "{o:?}");
    assert_eq!(l[2].trim(), "0", "/proc/acpi is not masked: {o:?}");
    assert_eq!(l.get(3).map(String::as_str), Some("ro"), "/proc/sys: {o:?}");
}

// ---------------------------------------------------------------------------
// 13. /proc or /sys a symlink in the image
// ---------------------------------------------------------------------------

#[track_caller]
fn refuses_symlinked_mount_point(dir: &str, target: &str) {
    let mut b = bundle("procsymlink");
    let p = b.rootfs().join(dir);
    std::fs::remove_dir(&p).unwrap();
    std::os::unix::fs::symlink(target, &p).unwrap();
    let id = b.new_id();
    let o = b.create(&id);
    assert!(
        !o.stderr.contains("panicked at"),
        "/{dir} -> {target}: the runtime panicked: {o:?}"
    );
    o.fails_naming(&[&format!("/{dir}")]);
    assert!(
        o.stderr.to_lowercase().contains("directory"),
        "/{dir} -> {target}: the error must say the mount point must be a directory: {o:?}"
    );
    b.assert_nothing_left(&id);
    // nothing was mounted or created through the link
    if target.starts_with('/') {
        assert!(
            !Path::new(target).exists(),
            "{target} was created on the host"
        );
    }
}

/// runc: `filesystem "proc" must be mounted on ordinary directory`.
#[test]
fn proc_symlink_in_the_image_is_refused_naming_proc() {
    refuses_symlinked_mount_point("proc", "/tmp/berth-conformance-no-such-proc-target");
    refuses_symlinked_mount_point("proc", "../etc");
}

#[test]
fn sys_symlink_in_the_image_is_refused_naming_sys() {
    refuses_symlinked_mount_point("sys", "/tmp/berth-conformance-no-such-sys-target");
    refuses_symlinked_mount_point("sys", "../etc");
}

// ---------------------------------------------------------------------------
// 14. error wording
// ---------------------------------------------------------------------------

/// runc logs errors as `level=error msg="container does not exist"`.
#[test]
fn state_of_an_unknown_id_is_an_error_saying_it_does_not_exist() {
    let b = bundle("errword");
    let o = b.state("no-such-container-errword");
    o.fails();
    assert!(
        o.stderr.to_lowercase().contains("error"),
        "stderr does not say error: {o:?}"
    );
    assert!(o.stderr.contains("does not exist"), "{o:?}");
}

#[test]
fn failed_create_says_error_on_stderr() {
    let mut b = bundle("errword2");
    b.set("/root/path", json!("no-such-rootfs"));
    let id = b.new_id();
    let o = b.create(&id);
    o.fails();
    assert!(
        o.stderr.to_lowercase().contains("error"),
        "stderr does not say error: {o:?}"
    );
    b.assert_nothing_left(&id);
}

// ---------------------------------------------------------------------------
// 15. bad input names the field
// ---------------------------------------------------------------------------

/// runc: `json: cannot unmarshal string into Go struct field User.process.user.uid of type uint32`.
#[test]
fn ill_typed_uid_names_process_user_uid() {
    let mut b = bundle("badtype-uid");
    b.set("/process/user", json!({"uid": "0", "gid": 0}));
    let id = b.new_id();
    b.create(&id).fails_naming(&["process.user.uid"]);
    b.assert_nothing_left(&id);
}

/// runc: `json: cannot unmarshal array into Go struct field Spec.hooks of type specs.Hooks`,
/// for an empty array as for one with entries.
#[test]
fn hooks_as_an_array_are_refused_naming_hooks() {
    for hooks in [json!([]), json!([{"path": "/bin/true"}])] {
        let mut b = bundle("hooks-array");
        b.set("/hooks", hooks.clone());
        let id = b.new_id();
        b.create(&id).fails_naming(&["hooks"]);
        b.assert_nothing_left(&id);
    }
}

/// A 10 MB hostname: sethostname(2) takes at most 64 bytes. runc: `sethostname: invalid argument`.
#[test]
fn huge_hostname_fails_saying_why_and_leaves_nothing() {
    let mut b = bundle("hugehost");
    b.set("/hostname", json!("h".repeat(10 * 1024 * 1024)));
    let id = b.new_id();
    let o = b.create(&id);
    assert!(
        !o.stderr.contains("panicked at"),
        "{}",
        &o.stderr[..o.stderr.len().min(2000)]
    );
    let short = Out {
        stderr: o.stderr.chars().take(4000).collect(),
        stdout: o.stdout.chars().take(4000).collect(),
        ..o
    };
    short.fails_naming(&["hostname"]);
    b.assert_nothing_left(&id);
}

// ---------------------------------------------------------------------------
// 16. runtime-spec 1.3: pids.limit 0, memory -1 with swap, ociVersion
// ---------------------------------------------------------------------------

/// runtime-spec 1.3 (PR #1279): pids.limit 0 is a real limit (pids.max = 0): no fork at all.
/// runc 1.1.5 treats 0 as "unset". The config says ociVersion 1.3.0: berth keeps the older
/// reading ("0 = no limit") for configs written to an older spec, as podman writes 0 for
/// `--pids-limit -1` (see `earlier_configs_keep_pids_limit_zero_as_unlimited`).
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 treats pids.limit 0 as unset"
)]
fn berth_only_pids_limit_zero_forbids_fork() {
    let mut b = bundle("pids0");
    b.set("/ociVersion", json!("1.3.0"));
    b.set("/linux/resources/pids", json!({"limit": 0}));
    // A subshell must fork; the redirection of the builtin echo needs no fork.
    // (busybox sh gives up on the whole script when the fork fails: no /tmp/out is a pass too)
    b.sh("echo start > /tmp/out; ( exit 3 ); echo rc=$? >> /tmp/out");
    let id = b.new_id();
    b.create(&id).ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap();
    assert_eq!(cgroup_read(pid as i32, "pids", "pids.max"), "0");
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    let out = b.read_rootfs("/tmp/out");
    assert!(
        out.starts_with("start"),
        "the container did not run: {out:?}"
    );
    assert!(
        !out.contains("rc=3"),
        "the container forked with pids.limit 0"
    );
}

/// A config written to runtime-spec 1.2 or older meant "no limit" by pids.limit 0 (runc 1.1 read it
/// so, and podman 4 writes 0 for `--pids-limit -1`): the container forks freely.
#[test]
fn earlier_configs_keep_pids_limit_zero_as_unlimited() {
    let mut b = bundle("pids0old");
    b.set("/ociVersion", json!("1.0.2-dev"));
    b.set("/linux/resources/pids", json!({"limit": 0}));
    b.sh("( exit 3 ); echo rc=$?");
    let o = b.run();
    o.ok();
    assert!(o.stdout.contains("rc=3"), "{o:?}");
}

/// memory.limit -1 with a swap value: on cgroup v2 the swap value is the swap limit (runc >= 1.2.1;
/// 1.1.5 refuses "unable to set swap limit without memory limit"). On cgroup v1 the kernel itself
/// refuses a memory.memsw.limit_in_bytes below an unlimited memory.limit_in_bytes: not testable.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 refuses memory -1 with a swap value (fixed in 1.2.1)"
)]
#[cfg_attr(
    all(berth_runtime, not(host_cgroup_v2)),
    ignore = "cgroup v1/hybrid host: the kernel refuses memsw below an unlimited memory limit"
)]
fn berth_only_memory_unlimited_with_swap_is_accepted_on_cgroup_v2() {
    assert!(
        cgroup_v2(),
        "cgroup v1/hybrid host, but the test binary was built on a cgroup v2 host: rebuild it"
    );
    let mut b = bundle("memswap");
    b.set(
        "/linux/resources/memory",
        json!({"limit": -1, "swap": 268435456}),
    );
    b.args(&["sleep", "600"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(cgroup_read(pid, "memory", "memory.max"), "max");
    assert_eq!(cgroup_read(pid, "memory", "memory.swap.max"), "268435456");
}

/// runc 1.1.5 reports ociVersionMax "1.0.2-dev" and state ociVersion "1.0.2-dev".
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 implements runtime-spec 1.0.2-dev"
)]
fn berth_only_features_and_state_say_oci_version_1_3_0() {
    let mut b = bundle("ociver");
    let f = b.rt(&["features"]);
    f.ok();
    let v: Value = serde_json::from_str(&f.stdout).expect("features JSON");
    assert_eq!(v["ociVersionMax"], "1.3.0", "{}", f.stdout);
    b.args(&["sleep", "600"]);
    let id = b.create_ok();
    assert_eq!(b.state_json(&id)["ociVersion"], "1.3.0");
}

// ---------------------------------------------------------------------------
// 17. masked directories
// ---------------------------------------------------------------------------

/// Masked directories that exist on this host (inside, procfs and sysfs show the same entries).
fn masked_dirs() -> Vec<&'static str> {
    [
        "/proc/acpi",
        "/proc/asound",
        "/proc/driver",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/kernel/security",
        "/sys/devices/virtual/powercap",
    ]
    .into_iter()
    .filter(|d| Path::new(d).is_dir())
    .collect()
}

/// mountinfo lines (mount point, major:minor, per-mount options) of the masked directories.
fn masked_dir_mounts() -> (Out, Vec<(String, String, String)>) {
    let dirs = masked_dirs();
    assert!(dirs.len() >= 2, "this host has too few of {dirs:?}");
    let mut b = bundle("maskdirs");
    b.set("/linux/maskedPaths", json!(dirs));
    let list = dirs.join(" ");
    b.sh(&format!(
        "for d in {list}; do echo \"$d $(ls -A $d | wc -l) $(touch $d/x 2>/dev/null && echo writable || echo ro)\"; done; \
         echo MOUNTINFO; cat /proc/self/mountinfo"
    ));
    let o = b.run_ok();
    let mi = o
        .stdout
        .split("MOUNTINFO\n")
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mounts = dirs
        .iter()
        .map(|d| {
            let l = mi
                .lines()
                .rfind(|l| l.split_whitespace().nth(4) == Some(d))
                .unwrap_or_else(|| panic!("{d} is not a mount point: {mi}"));
            let f: Vec<&str> = l.split_whitespace().collect();
            (d.to_string(), f[2].to_string(), f[5].to_string())
        })
        .collect();
    (o, mounts)
}

#[test]
fn masked_directories_are_empty_and_read_only() {
    let (o, mounts) = masked_dir_mounts();
    for d in masked_dirs() {
        let line = format!("{d} 0 ro");
        assert!(
            o.lines().contains(&line),
            "{d} is not empty and read-only: {o:?}"
        );
    }
    for (d, _, opts) in &mounts {
        assert!(
            opts.split(',').any(|x| x == "ro"),
            "{d} mount is not ro: {opts}"
        );
    }
}

/// runc >= 1.3 and crun cover all masked directories with one read-only tmpfs (one superblock,
/// bind-mounted at each); runc 1.1.5 mounts one tmpfs per directory.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 mounts a tmpfs per masked directory"
)]
fn berth_only_masked_directories_share_one_tmpfs() {
    let (_, mounts) = masked_dir_mounts();
    let devs: BTreeSet<&str> = mounts.iter().map(|(_, dev, _)| dev.as_str()).collect();
    assert_eq!(
        devs.len(),
        1,
        "masked directories on several tmpfs: {mounts:?}"
    );
}
