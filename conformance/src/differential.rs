//! Differential testing with runc as the oracle.
//!
//! A seeded generator builds OCI configs (runtime-spec config.md and
//! config-linux.md fields that runc 1.1.5 implements, valid and invalid values,
//! plus config shapes like those Docker, containerd/CRI and podman write) as a
//! base config plus a list of tagged [`Mutation`]s. Each case runs once with
//! the runtime under test ("berth") and once with runc, each in a fresh bundle
//! made by the harness ([`Bundle`]), the runtime started in a private mount
//! namespace of its own (`unshare -m`) so that no config, however wrong, can
//! touch the host's mounts. A probe script inside the container prints what it
//! sees (credentials, capabilities, limits, mounts, namespaces, devices,
//! sysctls, cgroup files, ...); the output is normalised (ids, bundle paths,
//! pids, inode numbers) into [`Facts`] and compared. Either both runtimes
//! refuse the config (non-zero `run` before the probe started) or both run it
//! and every fact agrees; anything else is a divergence.
//!
//! A divergence is minimised by dropping mutations while it persists; the
//! remaining tags plus the fact section form its stable key
//! (`section@tag+tag`), which is what `differential-known.txt` lists.

use crate::{cgroup_dirs_existing, default_spec, processes_of, set_ptr, wait_child, Bundle};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fixed default seed of `DIFF_SEED`.
pub const DEFAULT_SEED: u64 = 0x00be_27b0_5eed;
/// Default number of cases (`DIFF_CASES`).
pub const DEFAULT_CASES: u64 = 300;
/// Where the probe script lives inside the rootfs.
pub const PROBE: &str = "/.probe/probe.sh";
/// Time limit of one `run`.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/// splitmix64: small, fast, good enough, and stable across platforms.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The generator of case `index` of a campaign seeded with `seed`: each
    /// case depends on (seed, index) only, so one case can be re-run alone.
    pub fn for_case(seed: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ index.wrapping_mul(0xa24b_aed4_963e_e407));
        let a = r.next_u64();
        Rng(a ^ index.rotate_left(17))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Each element kept with `percent` % probability (order kept).
    pub fn subset<T: Clone>(&mut self, xs: &[T], percent: u64) -> Vec<T> {
        xs.iter()
            .filter(|_| self.chance(percent))
            .cloned()
            .collect()
    }

    /// An index chosen by weights.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------
// Host facts
// ---------------------------------------------------------------------------

/// `unlimited` in /proc/self/limits and in rlimit values.
pub const UNLIMITED: u64 = u64::MAX;

/// What the generator and the normaliser need to know about this host.
#[derive(Debug, Clone)]
pub struct Host {
    /// RLIMIT_* -> (soft, hard) of this process (the runtimes inherit them).
    pub limits: BTreeMap<String, (u64, u64)>,
    /// Namespace links of this process (`net:[4026531840]`) -> "host".
    pub ns: BTreeMap<String, String>,
    /// (controllers, path) lines of /proc/self/cgroup.
    pub cgroups: Vec<(String, String)>,
    /// Capability bounding set of this process (root here lacks CAP_SYS_RESOURCE).
    pub cap_bnd: u64,
}

/// /proc/self/limits row names and their RLIMIT_* names.
pub const LIMIT_NAMES: [(&str, &str); 16] = [
    ("Max cpu time", "RLIMIT_CPU"),
    ("Max file size", "RLIMIT_FSIZE"),
    ("Max data size", "RLIMIT_DATA"),
    ("Max stack size", "RLIMIT_STACK"),
    ("Max core file size", "RLIMIT_CORE"),
    ("Max resident set", "RLIMIT_RSS"),
    ("Max processes", "RLIMIT_NPROC"),
    ("Max open files", "RLIMIT_NOFILE"),
    ("Max locked memory", "RLIMIT_MEMLOCK"),
    ("Max address space", "RLIMIT_AS"),
    ("Max file locks", "RLIMIT_LOCKS"),
    ("Max pending signals", "RLIMIT_SIGPENDING"),
    ("Max msgqueue size", "RLIMIT_MSGQUEUE"),
    ("Max nice priority", "RLIMIT_NICE"),
    ("Max realtime priority", "RLIMIT_RTPRIO"),
    ("Max realtime timeout", "RLIMIT_RTTIME"),
];

fn parse_limit(s: &str) -> Option<u64> {
    if s == "unlimited" {
        Some(UNLIMITED)
    } else {
        s.parse().ok()
    }
}

/// Split a /proc/self/limits row into (name, soft, hard).
fn limits_row(line: &str) -> Option<(&'static str, String, String)> {
    let (name, _) = LIMIT_NAMES.iter().find(|(n, _)| line.starts_with(n))?;
    let rest: Vec<&str> = line[name.len()..].split_whitespace().collect();
    Some((name, rest.first()?.to_string(), rest.get(1)?.to_string()))
}

impl Host {
    pub fn probe() -> Result<Host> {
        let text = fs::read_to_string("/proc/self/limits").context("read /proc/self/limits")?;
        let mut limits = BTreeMap::new();
        for line in text.lines() {
            if let Some((name, soft, hard)) = limits_row(line) {
                let rl = LIMIT_NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, r)| *r)
                    .unwrap_or_default();
                if let (Some(s), Some(h)) = (parse_limit(&soft), parse_limit(&hard)) {
                    limits.insert(rl.to_string(), (s, h));
                }
            }
        }
        let mut ns = BTreeMap::new();
        for n in NS_FILES {
            if let Ok(l) = fs::read_link(format!("/proc/self/ns/{n}")) {
                ns.insert(l.to_string_lossy().into_owned(), "host".to_string());
            }
        }
        let cg = fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
        let cgroups = cg
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let _ = it.next()?;
                Some((it.next()?.to_string(), it.next()?.to_string()))
            })
            .collect();
        let status = fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
        let cap_bnd = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(u64::MAX);
        Ok(Host {
            limits,
            ns,
            cgroups,
            cap_bnd,
        })
    }

    /// Current value of a sysctl (`net.ipv4.ip_forward`), whitespace-normalised.
    pub fn sysctl(&self, key: &str) -> Option<String> {
        let p = format!("/proc/sys/{}", key.replace('.', "/"));
        fs::read_to_string(p)
            .ok()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    fn limit(&self, rl: &str) -> (u64, u64) {
        self.limits
            .get(rl)
            .copied()
            .unwrap_or((UNLIMITED, UNLIMITED))
    }
}

const NS_FILES: [&str; 10] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// One edit of the base config or of the bundle. Strings may hold the
/// placeholders `@BUNDLE@` (bundle directory), `@ID@` (container id) and
/// `@HELPER@` (pid of the namespace helper process).
#[derive(Debug, Clone)]
pub enum Op {
    /// Set the value at a JSON pointer (parents created).
    Set(String, Value),
    /// Remove the value at a JSON pointer.
    Remove(String),
    /// Append to the array at a JSON pointer (created if absent).
    Push(String, Value),
    /// Add a namespace, replacing one of the same type.
    Namespace(Value),
    /// Remove every namespace of a type.
    DropNamespace(String),
    /// Append a mount.
    Mount(Value),
    /// Remove every mount at a destination.
    DropMount(String),
    /// Append an option to every mount at a destination.
    MountOpt(String, String),
    /// Remove an option from every mount at a destination.
    DropMountOpt(String, String),
    /// Set the rlimit of a type (type, soft, hard), replacing an entry of that type.
    Rlimit(String, u64, u64),
    /// Append an environment entry.
    Env(String),
    /// Remove the environment entries of a name.
    DropEnv(String),
    /// mkdir -p in the rootfs, then chmod.
    RootfsDir(String, u32),
    /// Write a file in the rootfs (parents created).
    RootfsFile(String, String, u32),
    /// Symlink in the rootfs: (target, link path).
    RootfsSymlink(String, String),
    /// chown the rootfs tree (but the shared busybox inode) to uid=gid.
    RootfsChown(u32),
    /// mkdir -p in the bundle directory, then chmod.
    BundleDir(String, u32),
    /// Write a file in the bundle directory.
    BundleFile(String, String, u32),
    /// Start a namespace helper (`unshare -n -i -u -m sleep`) whose pid is `@HELPER@`.
    Helper,
    /// Run the process through `exec` (see [`ExecMode`]).
    Exec(ExecMode),
    /// Append `exec` flags (used with [`ExecMode::Cli`]).
    ExecFlags(Vec<String>),
}

impl Op {
    /// Compact JSON form for reports.
    pub fn to_json(&self) -> Value {
        match self {
            Op::Set(p, v) => json!(["set", p, v]),
            Op::Remove(p) => json!(["remove", p]),
            Op::Push(p, v) => json!(["push", p, v]),
            Op::Namespace(v) => json!(["namespace", v]),
            Op::DropNamespace(t) => json!(["drop-namespace", t]),
            Op::Mount(v) => json!(["mount", v]),
            Op::DropMount(d) => json!(["drop-mount", d]),
            Op::MountOpt(d, o) => json!(["mount-option", d, o]),
            Op::DropMountOpt(d, o) => json!(["drop-mount-option", d, o]),
            Op::Rlimit(t, so, h) => json!(["rlimit", t, so, h]),
            Op::Env(e) => json!(["env", e]),
            Op::DropEnv(e) => json!(["drop-env", e]),
            Op::RootfsDir(p, m) => json!(["rootfs-dir", p, format!("{m:o}")]),
            Op::RootfsFile(p, _, m) => json!(["rootfs-file", p, format!("{m:o}")]),
            Op::RootfsSymlink(t, l) => json!(["rootfs-symlink", l, t]),
            Op::RootfsChown(u) => json!(["rootfs-chown", u]),
            Op::BundleDir(p, m) => json!(["bundle-dir", p, format!("{m:o}")]),
            Op::BundleFile(p, _, m) => json!(["bundle-file", p, format!("{m:o}")]),
            Op::Helper => json!(["helper"]),
            Op::Exec(m) => json!(["exec", format!("{m:?}")]),
            Op::ExecFlags(f) => json!(["exec-flags", f]),
        }
    }

    fn is_prep(&self) -> bool {
        matches!(
            self,
            Op::RootfsDir(..)
                | Op::RootfsFile(..)
                | Op::RootfsSymlink(..)
                | Op::RootfsChown(..)
                | Op::BundleDir(..)
                | Op::BundleFile(..)
        )
    }
}

/// A tagged group of ops: the unit the minimiser drops. The tag classifies
/// what the mutation does (`mount.opt.size`, `rlimit.soft>hard`), never its
/// random values, so that divergence keys are stable across seeds.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub tag: String,
    pub ops: Vec<Op>,
}

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub index: u64,
    pub shape: String,
    pub muts: Vec<Mutation>,
}

/// The config and bundle preparation for a subset of a case's mutations.
#[derive(Debug, Clone)]
pub struct Built {
    pub config: Value,
    pub preps: Vec<Op>,
    pub helper: bool,
    /// Run the process with `exec` in a running container instead of as the init.
    pub exec: Option<ExecMode>,
    /// `exec` flags (with [`ExecMode::Cli`]).
    pub exec_flags: Vec<String>,
}

/// How the generated process is exec'd into a container whose init sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// `exec --process process.json ID` (the config's process object).
    ProcessFile,
    /// `exec [flags] ID -- args` (the config's process as the base).
    Cli,
}

/// The base every case edits: the harness's `runc spec`-like default running the probe.
pub fn base_config() -> Value {
    let mut c = default_spec();
    set_ptr(&mut c, "/process/args", json!(["sh", PROBE]));
    c
}

impl Case {
    /// Build the config with the mutations whose `keep` flag is set.
    pub fn build(&self, keep: &[bool]) -> Built {
        let muts: Vec<&Mutation> = self
            .muts
            .iter()
            .zip(keep.iter().chain(std::iter::repeat(&true)))
            .filter(|(_, k)| **k)
            .map(|(m, _)| m)
            .collect();
        build(&muts)
    }

    pub fn build_all(&self) -> Built {
        self.build(&vec![true; self.muts.len()])
    }

    /// Sorted, deduplicated tags of the kept mutations.
    pub fn tags(&self, keep: &[bool]) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .muts
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(m, _)| m.tag.as_str())
            .collect();
        set.into_iter().map(str::to_string).collect()
    }
}

/// Apply mutations to the base config.
pub fn build(muts: &[&Mutation]) -> Built {
    let mut b = Built {
        config: base_config(),
        preps: Vec::new(),
        helper: false,
        exec: None,
        exec_flags: Vec::new(),
    };
    for m in muts {
        for op in &m.ops {
            apply(&mut b, op);
        }
    }
    b
}

fn array_at<'a>(cfg: &'a mut Value, ptr: &str) -> &'a mut Vec<Value> {
    if cfg.pointer(ptr).map(|v| !v.is_array()).unwrap_or(true) {
        set_ptr(cfg, ptr, json!([]));
    }
    match cfg.pointer_mut(ptr) {
        Some(Value::Array(a)) => a,
        _ => unreachable!("set_ptr just made {ptr} an array"),
    }
}

fn remove_at(cfg: &mut Value, ptr: &str) {
    crate::remove_ptr(cfg, ptr);
}

fn apply(b: &mut Built, op: &Op) {
    let cfg = &mut b.config;
    match op {
        Op::Set(p, v) => set_ptr(cfg, p, v.clone()),
        Op::Remove(p) => remove_at(cfg, p),
        Op::Push(p, v) => array_at(cfg, p).push(v.clone()),
        Op::Namespace(ns) => {
            let a = array_at(cfg, "/linux/namespaces");
            a.retain(|n| n["type"] != ns["type"]);
            a.push(ns.clone());
        }
        Op::DropNamespace(t) => {
            if let Some(Value::Array(a)) = cfg.pointer_mut("/linux/namespaces") {
                a.retain(|n| n["type"] != t.as_str());
            }
        }
        Op::Mount(m) => array_at(cfg, "/mounts").push(m.clone()),
        Op::DropMount(d) => {
            if let Some(Value::Array(a)) = cfg.pointer_mut("/mounts") {
                a.retain(|m| m["destination"] != d.as_str());
            }
        }
        Op::MountOpt(d, o) | Op::DropMountOpt(d, o) => {
            let add = matches!(op, Op::MountOpt(..));
            if let Some(Value::Array(a)) = cfg.pointer_mut("/mounts") {
                for m in a.iter_mut().filter(|m| m["destination"] == d.as_str()) {
                    if !m["options"].is_array() {
                        m["options"] = json!([]);
                    }
                    if let Some(opts) = m["options"].as_array_mut() {
                        if add {
                            opts.push(json!(o));
                        } else {
                            opts.retain(|x| x != o.as_str());
                        }
                    }
                }
            }
        }
        Op::Rlimit(t, so, h) => {
            let a = array_at(cfg, "/process/rlimits");
            let v = json!({"type": t, "soft": so, "hard": h});
            match a.iter_mut().find(|r| r["type"] == t.as_str()) {
                Some(r) => *r = v,
                None => a.push(v),
            }
        }
        Op::Env(e) => array_at(cfg, "/process/env").push(json!(e)),
        Op::DropEnv(name) => {
            if let Some(Value::Array(a)) = cfg.pointer_mut("/process/env") {
                let prefix = format!("{name}=");
                a.retain(|e| e.as_str().map(|s| !s.starts_with(&prefix)).unwrap_or(true));
            }
        }
        Op::Helper => b.helper = true,
        Op::Exec(m) => b.exec = Some(*m),
        Op::ExecFlags(f) => b.exec_flags.extend(f.iter().cloned()),
        p if p.is_prep() => b.preps.push(p.clone()),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

use crate::ALL_CAPS;

/// The capabilities Docker and containerd give a container by default.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// podman 4's default capabilities.
const PODMAN_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Syscalls a busybox shell, its applets and the probe need (plus what an
/// ordinary program uses), like the allow list of container managers'
/// default profiles. `close_range` is among them; variants drop it.
pub const SECCOMP_ALLOW: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "clone3",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_waitv",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "ioctl",
    "ioprio_get",
    "kill",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lseek",
    "lstat",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mmap",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_yield",
    "select",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_tid_address",
    "setuid",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
    "personality",
];

const X86_ARCHES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

struct Gen<'h> {
    rng: Rng,
    host: &'h Host,
    muts: Vec<Mutation>,
    /// Whether this case may hold an invalid value at all (most cases should
    /// run, so that their effects are compared).
    invalid_allowed: bool,
    invalid_used: bool,
    n: u32,
}

impl Gen<'_> {
    fn add(&mut self, tag: &str, ops: Vec<Op>) {
        self.muts.push(Mutation {
            tag: tag.to_string(),
            ops,
        });
    }

    /// At most one invalid value per case (the first one decides the outcome).
    fn invalid(&mut self, percent: u64) -> bool {
        if !self.invalid_allowed || self.invalid_used || !self.rng.chance(percent) {
            return false;
        }
        self.invalid_used = true;
        true
    }

    fn uniq(&mut self) -> u32 {
        self.n += 1;
        self.n
    }

    fn pick_str(&mut self, xs: &[&str]) -> String {
        self.rng.pick(xs).to_string()
    }

    fn grantable_caps(&self) -> Vec<&'static str> {
        ALL_CAPS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.host.cap_bnd & (1u64 << i) != 0)
            .map(|(_, c)| *c)
            .collect()
    }

    fn lacking_caps(&self) -> Vec<&'static str> {
        ALL_CAPS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.host.cap_bnd & (1u64 << i) == 0)
            .map(|(_, c)| *c)
            .collect()
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

fn set(p: &str, v: Value) -> Op {
    Op::Set(s(p), v)
}

/// Generate case `index` of the campaign `seed`.
pub fn generate(seed: u64, index: u64, host: &Host) -> Case {
    let mut rng = Rng::for_case(seed, index);
    let invalid_allowed = rng.chance(40);
    let mut g = Gen {
        rng,
        host,
        muts: Vec::new(),
        invalid_allowed,
        invalid_used: false,
        n: 0,
    };
    let shapes = ["runc", "docker", "cri", "podman", "minimal"];
    let shape = shapes[g.rng.weighted(&[30, 20, 20, 15, 15])];
    match shape {
        "docker" => shape_docker(&mut g),
        "cri" => shape_cri(&mut g),
        "podman" => shape_podman(&mut g),
        "minimal" => shape_minimal(&mut g),
        _ => shape_runc(&mut g),
    }
    let n = if matches!(shape, "runc" | "minimal") {
        g.rng.range(2, 7)
    } else {
        g.rng.range(0, 4)
    };
    type Feature = fn(&mut Gen);
    let features: [(u64, Feature); 26] = [
        (5, f_exec),
        (5, f_args),
        (6, f_env),
        (5, f_cwd),
        (7, f_user),
        (4, f_umask),
        (8, f_caps),
        (7, f_rlimits),
        (4, f_nnp),
        (3, f_oom),
        (4, f_hostname),
        (4, f_root),
        (9, f_tmpfs),
        (8, f_bind),
        (9, f_special),
        (9, f_namespaces),
        (7, f_paths),
        (5, f_sysctl),
        (6, f_devices),
        (7, f_resources),
        (9, f_seccomp),
        (2, f_personality),
        (2, f_propagation),
        (2, f_cgroups_path),
        (4, f_misc),
        (2, f_exit),
    ];
    let weights: Vec<u64> = features.iter().map(|(w, _)| *w).collect();
    for _ in 0..n {
        let i = g.rng.weighted(&weights);
        (features[i].1)(&mut g);
    }
    Case {
        seed,
        index,
        shape: shape.to_string(),
        muts: g.muts,
    }
}

// --- shapes -----------------------------------------------------------------

fn caps_all_sets(caps: &[&str], inheritable: bool, ambient: bool) -> Value {
    json!({
        "bounding": caps,
        "effective": caps,
        "permitted": caps,
        "inheritable": if inheritable { caps.to_vec() } else { vec![] },
        "ambient": if ambient { caps.to_vec() } else { vec![] },
    })
}

fn bind(dest: &str, src: &str, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": opts})
}

const DOCKER_MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const DEFAULT_READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Files the managers bind into a container (/etc/hosts...): made in the bundle.
fn manager_files(prefix: &str) -> Vec<Op> {
    vec![
        Op::BundleDir(prefix.to_string(), 0o755),
        Op::BundleFile(
            format!("{prefix}/hosts"),
            s("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"),
            0o644,
        ),
        Op::BundleFile(format!("{prefix}/hostname"), s("c0ffee123456\n"), 0o644),
        Op::BundleFile(
            format!("{prefix}/resolv.conf"),
            s("nameserver 10.0.0.53\nsearch example.org\noptions ndots:5\n"),
            0o644,
        ),
        Op::BundleDir(format!("{prefix}/shm"), 0o1777),
    ]
}

fn std_proc(opts: &[&str]) -> Value {
    json!({"destination": "/proc", "type": "proc", "source": "proc", "options": opts})
}
fn std_dev() -> Value {
    json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
           "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]})
}
fn std_devpts() -> Value {
    json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
           "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]})
}
fn std_sysfs() -> Value {
    json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
           "options": ["nosuid", "noexec", "nodev", "ro"]})
}
fn std_mqueue() -> Value {
    json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
           "options": ["nosuid", "noexec", "nodev"]})
}
fn std_cgroup(opts: &[&str]) -> Value {
    json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": opts})
}

/// A seccomp profile like the managers' defaults: allow list, default ERRNO.
fn profile_allowlist(errno_ret: Option<u32>, drop: &[&str], extra: Vec<Value>) -> Value {
    let names: Vec<&str> = SECCOMP_ALLOW
        .iter()
        .copied()
        .filter(|n| !drop.contains(n))
        .collect();
    let mut rules = vec![json!({"names": names, "action": "SCMP_ACT_ALLOW"})];
    rules.extend(extra);
    let mut p = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": X86_ARCHES,
        "syscalls": rules,
    });
    if let Some(e) = errno_ret {
        p["defaultErrnoRet"] = json!(e);
    }
    p
}

/// Docker's and containerd's RuntimeDefault shape: clone only without
/// namespace flags, clone3 ENOSYS, personality with a few values.
fn profile_docker(errno_ret: u32) -> Value {
    let drop = ["clone", "clone3", "personality"];
    let extra = vec![
        json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}),
    ];
    profile_allowlist(Some(errno_ret), &drop, extra)
}

fn shape_runc(g: &mut Gen) {
    // What `runc spec` 1.1 writes, on top of the harness's variant of it.
    if g.rng.chance(40) {
        let c = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        g.add(
            "runc.spec-caps",
            vec![set("/process/capabilities", caps_all_sets(&c, true, true))],
        );
    }
    if g.rng.chance(40) {
        g.add(
            "runc.spec-readonly",
            vec![set("/root/readonly", json!(true))],
        );
    }
    if g.rng.chance(20) {
        g.add(
            "runc.spec-cgroupns",
            vec![Op::Namespace(json!({"type": "cgroup"}))],
        );
    }
}

fn shape_minimal(g: &mut Gen) {
    let mut mounts = vec![std_proc(&[])];
    if g.rng.chance(50) {
        mounts.push(std_dev());
    }
    g.add("minimal.mounts", vec![set("/mounts", json!(mounts))]);
    if g.rng.chance(50) {
        g.add(
            "minimal.no-caps",
            vec![Op::Remove(s("/process/capabilities"))],
        );
    }
    if g.rng.chance(50) {
        g.add(
            "minimal.no-paths",
            vec![
                Op::Remove(s("/linux/maskedPaths")),
                Op::Remove(s("/linux/readonlyPaths")),
            ],
        );
    }
    if g.rng.chance(40) {
        g.add(
            "minimal.namespaces",
            vec![set(
                "/linux/namespaces",
                json!([{"type": "mount"}, {"type": "pid"}, {"type": "uts"}]),
            )],
        );
    }
    if g.rng.chance(40) {
        g.add(
            "minimal.no-rlimits",
            vec![Op::Remove(s("/process/rlimits"))],
        );
    }
    if g.rng.chance(30) {
        g.add(
            "minimal.no-device-rules",
            vec![Op::Remove(s("/linux/resources"))],
        );
    }
}

fn shape_docker(g: &mut Gen) {
    let mut ops = manager_files("docker");
    ops.push(set(
        "/mounts",
        json!([
            std_proc(&["nosuid", "noexec", "nodev"]),
            std_dev(),
            std_devpts(),
            std_sysfs(),
            std_cgroup(&["ro", "nosuid", "noexec", "nodev"]),
            std_mqueue(),
            bind("/dev/shm", "docker/shm", &["rbind", "rprivate"]),
            bind(
                "/etc/resolv.conf",
                "@BUNDLE@/docker/resolv.conf",
                &["rbind", "rprivate"]
            ),
            bind(
                "/etc/hostname",
                "@BUNDLE@/docker/hostname",
                &["rbind", "rprivate"]
            ),
            bind(
                "/etc/hosts",
                "@BUNDLE@/docker/hosts",
                &["rbind", "rprivate"]
            ),
        ]),
    ));
    g.add("docker.mounts", ops);
    g.add(
        "docker.caps",
        vec![set(
            "/process/capabilities",
            json!({"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS}),
        )],
    );
    g.add(
        "docker.process",
        vec![
            set(
                "/process/env",
                json!([
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=c0ffee123456"
                ]),
            ),
            set("/process/noNewPrivileges", json!(false)),
            set("/process/oomScoreAdj", json!(0)),
            set("/hostname", json!("c0ffee123456")),
            set(
                "/process/user",
                json!({"uid": 0, "gid": 0, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]}),
            ),
            Op::Remove(s("/process/rlimits")),
        ],
    );
    g.add(
        "docker.paths",
        vec![
            set("/linux/maskedPaths", json!(DOCKER_MASKED)),
            set("/linux/readonlyPaths", json!(DEFAULT_READONLY)),
        ],
    );
    g.add(
        "docker.namespaces",
        vec![set(
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}]),
        )],
    );
    if g.rng.chance(80) {
        g.add(
            "docker.seccomp",
            vec![set("/linux/seccomp", profile_docker(1))],
        );
    }
    g.add(
        "docker.devices",
        vec![set(
            "/linux/resources",
            json!({
                "devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                    {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
                ],
                "memory": {"disableOOMKiller": false},
                "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0},
                "pids": {"limit": 0},
                "blockIO": {"weight": 0}
            }),
        )],
    );
    if g.rng.chance(60) {
        g.add(
            "docker.sysctls",
            vec![set(
                "/linux/sysctl",
                json!({"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}),
            )],
        );
    }
    if g.rng.chance(50) {
        g.add(
            "docker.cgroups-path",
            vec![set(
                "/linux/cgroupsPath",
                json!("/berth-diff-@ID@/docker/ctr"),
            )],
        );
    }
}

fn shape_cri(g: &mut Gen) {
    let mut ops = manager_files("cri");
    ops.push(Op::BundleFile(
        s("cri/termination-log"),
        String::new(),
        0o644,
    ));
    ops.push(Op::BundleDir(s("cri/serviceaccount"), 0o755));
    ops.push(Op::BundleFile(
        s("cri/serviceaccount/token"),
        s("token\n"),
        0o644,
    ));
    ops.push(set(
        "/mounts",
        json!([
            std_proc(&["nosuid", "noexec", "nodev"]),
            std_dev(),
            std_devpts(),
            std_mqueue(),
            std_sysfs(),
            std_cgroup(&["nosuid", "noexec", "nodev", "relatime", "ro"]),
            bind(
                "/etc/hosts",
                "@BUNDLE@/cri/hosts",
                &["rbind", "rprivate", "rw"]
            ),
            bind(
                "/dev/termination-log",
                "@BUNDLE@/cri/termination-log",
                &["rbind", "rprivate", "rw"]
            ),
            bind(
                "/etc/hostname",
                "@BUNDLE@/cri/hostname",
                &["rbind", "rprivate", "rw"]
            ),
            bind(
                "/etc/resolv.conf",
                "@BUNDLE@/cri/resolv.conf",
                &["rbind", "rprivate", "rw"]
            ),
            bind("/dev/shm", "@BUNDLE@/cri/shm", &["rbind", "rprivate", "rw"]),
            bind(
                "/var/run/secrets/kubernetes.io/serviceaccount",
                "@BUNDLE@/cri/serviceaccount",
                &["rbind", "rprivate", "ro"]
            ),
        ]),
    ));
    g.add("cri.mounts", ops);
    g.add(
        "cri.caps",
        vec![set(
            "/process/capabilities",
            json!({"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS}),
        )],
    );
    let user = match g.rng.below(3) {
        0 => json!({"uid": 0, "gid": 0, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]}),
        1 => json!({"uid": 65534, "gid": 65534, "additionalGids": [65534]}),
        _ => json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 2000]}),
    };
    g.add(
        "cri.process",
        vec![
            set(
                "/process/env",
                json!([
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=pod-a",
                    "KUBERNETES_SERVICE_HOST=10.96.0.1",
                    "KUBERNETES_SERVICE_PORT=443",
                    "KUBERNETES_PORT=tcp://10.96.0.1:443"
                ]),
            ),
            set("/process/noNewPrivileges", json!(false)),
            set("/process/user", user),
            Op::Remove(s("/process/rlimits")),
            Op::Remove(s("/hostname")),
        ],
    );
    let oom = if g.rng.chance(50) {
        1000
    } else {
        g.rng.range(2, 999)
    };
    g.add(
        "cri.oom-score",
        vec![set("/process/oomScoreAdj", json!(oom))],
    );
    g.add(
        "cri.annotations",
        vec![set(
            "/annotations",
            json!({
                "io.kubernetes.cri.container-name": "c",
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.image-name": "docker.io/library/busybox:latest",
                "io.kubernetes.cri.sandbox-id": "5ea1d0c0ffee",
                "io.kubernetes.cri.sandbox-name": "pod-a",
                "io.kubernetes.cri.sandbox-namespace": "default",
                "io.kubernetes.cri.sandbox-uid": "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
            }),
        )],
    );
    let mut masked = DOCKER_MASKED.to_vec();
    masked.push("/proc/interrupts");
    g.add(
        "cri.paths",
        vec![
            set("/linux/maskedPaths", json!(masked)),
            set("/linux/readonlyPaths", json!(DEFAULT_READONLY)),
        ],
    );
    // The sandbox (pause) container's network, ipc and uts namespaces.
    if g.rng.chance(60) {
        g.add(
            "cri.sandbox-namespaces",
            vec![
                Op::Helper,
                set(
                    "/linux/namespaces",
                    json!([
                        {"type": "pid"},
                        {"type": "ipc", "path": "/proc/@HELPER@/ns/ipc"},
                        {"type": "uts", "path": "/proc/@HELPER@/ns/uts"},
                        {"type": "mount"},
                        {"type": "network", "path": "/proc/@HELPER@/ns/net"}
                    ]),
                ),
            ],
        );
    }
    let res = if g.rng.chance(50) {
        json!({"devices": [{"allow": false, "access": "rwm"}], "cpu": {"shares": 2, "period": 100000}})
    } else {
        json!({"devices": [{"allow": false, "access": "rwm"}],
               "cpu": {"shares": 102, "quota": 50000, "period": 100000},
               "memory": {"limit": 268435456, "swap": 268435456}})
    };
    g.add("cri.resources", vec![set("/linux/resources", res)]);
    g.add(
        "cri.cgroups-path",
        vec![set(
            "/linux/cgroupsPath",
            json!("/berth-diff-@ID@/kubepods/besteffort/pod0d1e2f3a/ctr"),
        )],
    );
    if g.rng.chance(80) {
        g.add(
            "cri.seccomp",
            vec![set("/linux/seccomp", profile_docker(1))],
        );
    }
    if g.rng.chance(25) {
        g.add(
            "cri.readonly-root",
            vec![set("/root/readonly", json!(true))],
        );
    }
}

fn shape_podman(g: &mut Gen) {
    let mut ops = manager_files("podman");
    ops.push(Op::BundleFile(
        s("podman/containerenv"),
        s("engine=\"podman-4.3.1\"\nname=\"c\"\nrootless=0\n"),
        0o644,
    ));
    ops.push(Op::BundleDir(s("podman/secrets"), 0o755));
    ops.push(set(
        "/mounts",
        json!([
            std_proc(&["nosuid", "noexec", "nodev"]),
            std_dev(),
            std_sysfs(),
            std_devpts(),
            std_mqueue(),
            bind(
                "/etc/hostname",
                "@BUNDLE@/podman/hostname",
                &["bind", "rprivate"]
            ),
            bind(
                "/etc/resolv.conf",
                "@BUNDLE@/podman/resolv.conf",
                &["bind", "rprivate"]
            ),
            bind("/etc/hosts", "@BUNDLE@/podman/hosts", &["bind", "rprivate"]),
            bind(
                "/dev/shm",
                "@BUNDLE@/podman/shm",
                &["bind", "rprivate", "nosuid", "noexec", "nodev"]
            ),
            bind(
                "/run/.containerenv",
                "@BUNDLE@/podman/containerenv",
                &["bind", "rprivate"]
            ),
            bind(
                "/run/secrets",
                "@BUNDLE@/podman/secrets",
                &["bind", "rprivate"]
            ),
            std_cgroup(&["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]),
    ));
    g.add("podman.mounts", ops);
    g.add(
        "podman.caps",
        vec![set(
            "/process/capabilities",
            json!({"bounding": PODMAN_CAPS, "effective": PODMAN_CAPS, "permitted": PODMAN_CAPS}),
        )],
    );
    let (_, nofile) = g.host.limit("RLIMIT_NOFILE");
    let (_, nproc) = g.host.limit("RLIMIT_NPROC");
    g.add(
        "podman.process",
        vec![
            set(
                "/process/env",
                json!([
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm",
                    "container=podman",
                    "HOME=/root",
                    "HOSTNAME=c0ffee123456"
                ]),
            ),
            set("/process/user/umask", json!(18)),
            set("/process/noNewPrivileges", json!(false)),
            set("/process/oomScoreAdj", json!(0)),
            set("/hostname", json!("c0ffee123456")),
            set(
                "/process/rlimits",
                json!([
                    {"type": "RLIMIT_NOFILE", "hard": nofile.min(1048576), "soft": nofile.min(1048576)},
                    {"type": "RLIMIT_NPROC", "hard": nproc.min(4194304), "soft": nproc.min(4194304)}
                ]),
            ),
        ],
    );
    g.add(
        "podman.paths",
        vec![
            set(
                "/linux/maskedPaths",
                json!([
                    "/proc/acpi",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/proc/scsi",
                    "/sys/firmware",
                    "/sys/fs/selinux",
                    "/sys/dev/block"
                ]),
            ),
            set(
                "/linux/readonlyPaths",
                json!([
                    "/proc/asound",
                    "/proc/bus",
                    "/proc/fs",
                    "/proc/irq",
                    "/proc/sys",
                    "/proc/sysrq-trigger"
                ]),
            ),
        ],
    );
    g.add(
        "podman.namespaces",
        vec![set(
            "/linux/namespaces",
            json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]),
        )],
    );
    g.add(
        "podman.linux",
        vec![
            set("/linux/sysctl", json!({"net.ipv4.ping_group_range": "0 0"})),
            set(
                "/linux/resources",
                json!({"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 2048}}),
            ),
            set(
                "/linux/cgroupsPath",
                json!("/berth-diff-@ID@/libpod_parent/libpod-ctr"),
            ),
            set(
                "/annotations",
                json!({"io.container.manager": "libpod", "org.opencontainers.image.stopSignal": "15"}),
            ),
        ],
    );
    if g.rng.chance(80) {
        // containers/common's profile answers unknown syscalls with ENOSYS.
        let extra = vec![
            json!({"names": ["bdflush", "kexec_load", "kexec_file_load", "open_by_handle_at"],
                                "action": "SCMP_ACT_ERRNO", "errnoRet": 1}),
        ];
        g.add(
            "podman.seccomp",
            vec![set(
                "/linux/seccomp",
                profile_allowlist(Some(38), &[], extra),
            )],
        );
    }
    if g.rng.chance(25) {
        // --userns=auto like: a mapped range and a rootfs owned by it.
        let h = 100000;
        g.add(
            "podman.userns",
            vec![
                Op::Namespace(json!({"type": "user"})),
                set(
                    "/linux/uidMappings",
                    json!([{"containerID": 0, "hostID": h, "size": 65536}]),
                ),
                set(
                    "/linux/gidMappings",
                    json!([{"containerID": 0, "hostID": h, "size": 65536}]),
                ),
                Op::RootfsChown(h),
            ],
        );
    }
}

// --- features ---------------------------------------------------------------

fn f_args(g: &mut Gen) {
    if g.invalid(20) {
        let (tag, op) = match g.rng.below(6) {
            0 => (
                "args.missing-executable",
                set("/process/args", json!(["/bin/nonexistent"])),
            ),
            1 => ("args.empty", set("/process/args", json!([]))),
            2 => ("args.directory", set("/process/args", json!(["/bin"]))),
            3 => (
                "args.not-executable",
                set("/process/args", json!(["/etc/passwd"])),
            ),
            4 => (
                "args.not-in-path",
                set("/process/args", json!(["no-such-command"])),
            ),
            _ => ("args.absent", Op::Remove(s("/process/args"))),
        };
        g.add(tag, vec![op]);
        return;
    }
    let (tag, args) = match g.rng.below(5) {
        0 => ("args.absolute", json!(["/bin/sh", PROBE])),
        1 => (
            "args.extra",
            json!(["sh", PROBE, "a b", "", "-x", "--", "ü*?", "$HOME", "'q'"]),
        ),
        2 => (
            "args.sh-c",
            json!(["sh", "-c", format!(". {PROBE}"), "argv0", "one", "two"]),
        ),
        3 => ("args.relative-path", json!(["bin/sh", PROBE])),
        _ => ("args.busybox", json!(["/bin/busybox", "sh", PROBE])),
    };
    let mut ops = vec![set("/process/args", args)];
    if tag == "args.relative-path" {
        ops.push(set("/process/cwd", json!("/")));
    }
    g.add(tag, ops);
}

fn f_env(g: &mut Gen) {
    if g.invalid(15) {
        let (tag, e) = match g.rng.below(3) {
            0 => ("env.no-equals", "NOEQUALS"),
            1 => ("env.empty-name", "=value"),
            _ => ("env.nul-byte", "NUL=a\u{0}b"),
        };
        if g.rng.chance(30) {
            g.add("env.no-path-lookup", vec![Op::DropEnv(s("PATH"))]);
            return;
        }
        g.add(tag, vec![Op::Env(s(e))]);
        return;
    }
    for _ in 0..g.rng.range(1, 3) {
        let (tag, ops) = match g.rng.below(13) {
            0 => (
                "env.duplicate",
                vec![Op::Env(s("DUP=first")), Op::Env(s("DUP=second"))],
            ),
            1 => ("env.duplicate-path", vec![Op::Env(s("PATH=/bin:/sbin"))]),
            2 => ("env.empty-value", vec![Op::Env(s("EMPTY="))]),
            3 => ("env.spaces", vec![Op::Env(s("SPACED=a  b c "))]),
            4 => ("env.equals", vec![Op::Env(s("EQ=x=y==z"))]),
            5 => ("env.unicode", vec![Op::Env(s("UNI=ünïcødé ✓"))]),
            6 => {
                let n = g.rng.range(1000, 20000) as usize;
                ("env.long", vec![Op::Env(format!("LONG={}", "x".repeat(n)))])
            }
            7 => ("env.home", vec![Op::Env(s("HOME=/tmp"))]),
            8 => (
                "env.no-path",
                vec![
                    Op::DropEnv(s("PATH")),
                    set("/process/args", json!(["/bin/sh", PROBE])),
                ],
            ),
            9 => ("env.no-term", vec![Op::DropEnv(s("TERM"))]),
            10 => (
                "env.clear",
                vec![
                    set("/process/env", json!([])),
                    set("/process/args", json!(["/bin/sh", PROBE])),
                ],
            ),
            11 => {
                let ops = (0..200).map(|i| Op::Env(format!("MANY_{i}={i}"))).collect();
                ("env.many", ops)
            }
            _ => (
                "env.absent",
                vec![
                    Op::Remove(s("/process/env")),
                    set("/process/args", json!(["/bin/sh", PROBE])),
                ],
            ),
        };
        g.add(tag, ops);
    }
}

fn f_cwd(g: &mut Gen) {
    if g.invalid(20) {
        let (tag, cwd) = match g.rng.below(3) {
            0 => ("cwd.relative", "tmp"),
            1 => ("cwd.empty", ""),
            _ => ("cwd.file", "/bin/busybox"),
        };
        g.add(tag, vec![set("/process/cwd", json!(cwd))]);
        return;
    }
    let n = g.uniq();
    let (tag, ops) = match g.rng.below(7) {
        0 => ("cwd.tmp", vec![set("/process/cwd", json!("/tmp"))]),
        1 => ("cwd.home", vec![set("/process/cwd", json!("/home/user1"))]),
        2 => (
            "cwd.missing",
            vec![set("/process/cwd", json!(format!("/missing{n}/deep/dir")))],
        ),
        3 => (
            "cwd.dotdot",
            vec![set("/process/cwd", json!("/tmp/../home/./user2"))],
        ),
        4 => (
            "cwd.trailing-slash",
            vec![set("/process/cwd", json!("/etc/"))],
        ),
        5 => (
            "cwd.private-dir",
            vec![
                Op::RootfsDir(format!("/private{n}"), 0o700),
                set("/process/cwd", json!(format!("/private{n}"))),
            ],
        ),
        _ => (
            "cwd.symlink",
            vec![
                Op::RootfsSymlink(s("/home/user1"), format!("/homelink{n}")),
                set("/process/cwd", json!(format!("/homelink{n}"))),
            ],
        ),
    };
    g.add(tag, ops);
}

fn f_user(g: &mut Gen) {
    if g.invalid(10) {
        let (tag, v) = match g.rng.below(3) {
            0 => ("user.uid-string", json!("1000")),
            1 => ("user.uid-negative", json!(-1)),
            _ => ("user.uid-overflow", json!(4294967296u64)),
        };
        g.add(tag, vec![set("/process/user/uid", v)]);
        return;
    }
    let (uid, gid) = *g.rng.pick(&[
        (1000u32, 1000u32),
        (1001, 100),
        (65534, 65534),
        (4242, 4243),
        (0, 1000),
        (1000, 0),
    ]);
    let tag = if uid == 0 {
        "user.root-other-gid"
    } else if uid == 4242 {
        "user.uid-not-in-passwd"
    } else {
        "user.non-root"
    };
    g.add(
        tag,
        vec![
            set("/process/user/uid", json!(uid)),
            set("/process/user/gid", json!(gid)),
        ],
    );
    if g.rng.chance(50) {
        let gids = match g.rng.below(7) {
            0 => json!([]),
            1 => json!([100]),
            2 => json!([5, 100, 2000]),
            3 => json!([0]),
            4 => json!([100, 100]),
            5 => json!((0..32).map(|i| 3000 + i).collect::<Vec<u32>>()),
            _ => json!([4294967294u32]),
        };
        g.add(
            "user.additional-gids",
            vec![set("/process/user/additionalGids", gids)],
        );
    }
    if g.rng.chance(10) {
        g.add(
            "user.username",
            vec![set("/process/user/username", json!("user1"))],
        );
    }
}

fn f_umask(g: &mut Gen) {
    if g.rng.chance(15) {
        let v = *g.rng.pick(&[0o1777u32, 0o7777, 0o10022]);
        g.add(
            "umask.above-0777",
            vec![set("/process/user/umask", json!(v))],
        );
        return;
    }
    let v = *g.rng.pick(&[0u32, 0o022, 0o027, 0o077, 0o777, 0o002]);
    g.add("umask.set", vec![set("/process/user/umask", json!(v))]);
}

fn f_caps(g: &mut Gen) {
    let grantable = g.grantable_caps();
    let lacking = g.lacking_caps();
    if g.invalid(15) {
        let k = g.rng.below(if lacking.is_empty() { 4 } else { 5 });
        let (tag, ops) = match k {
            0 => (
                "caps.unknown-name",
                vec![Op::Push(
                    s("/process/capabilities/bounding"),
                    json!("CAP_BOGUS"),
                )],
            ),
            1 => (
                "caps.lowercase-name",
                vec![
                    Op::Push(s("/process/capabilities/permitted"), json!("cap_chown")),
                    Op::Push(s("/process/capabilities/effective"), json!("cap_chown")),
                ],
            ),
            2 => (
                "caps.no-prefix",
                vec![Op::Push(
                    s("/process/capabilities/bounding"),
                    json!("CHOWN"),
                )],
            ),
            3 => (
                "caps.effective-not-permitted",
                vec![set(
                    "/process/capabilities",
                    json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"],
                           "effective": ["CAP_KILL", "CAP_CHOWN"]}),
                )],
            ),
            _ => {
                let c = g.rng.pick(&lacking).to_string();
                (
                    "caps.host-lacks",
                    vec![set(
                        "/process/capabilities",
                        json!({"bounding": [c], "permitted": [c], "effective": [c]}),
                    )],
                )
            }
        };
        g.add(tag, ops);
        return;
    }
    let (tag, ops) = match g.rng.below(8) {
        0 => {
            let set_ = g.rng.subset(&grantable, 40);
            let inh = g.rng.subset(&set_, 50);
            let amb = g.rng.subset(&inh, 60);
            (
                "caps.consistent",
                vec![set(
                    "/process/capabilities",
                    json!({"bounding": set_, "effective": set_, "permitted": set_,
                           "inheritable": inh, "ambient": amb}),
                )],
            )
        }
        1 => {
            let bnd = g.rng.subset(&grantable, 50);
            let prm = g.rng.subset(&grantable, 40);
            let eff = g.rng.subset(&prm, 70);
            let inh = g.rng.subset(&grantable, 20);
            let amb = g.rng.subset(&grantable, 10);
            (
                "caps.random-sets",
                vec![set(
                    "/process/capabilities",
                    json!({"bounding": bnd, "effective": eff, "permitted": prm,
                           "inheritable": inh, "ambient": amb}),
                )],
            )
        }
        2 => (
            "caps.none",
            vec![set(
                "/process/capabilities",
                json!({"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []}),
            )],
        ),
        3 => ("caps.absent", vec![Op::Remove(s("/process/capabilities"))]),
        4 => {
            let which = g.pick_str(&[
                "bounding",
                "effective",
                "permitted",
                "inheritable",
                "ambient",
            ]);
            (
                "caps.set-absent",
                vec![Op::Remove(format!("/process/capabilities/{which}"))],
            )
        }
        5 => (
            "caps.all",
            vec![set(
                "/process/capabilities",
                caps_all_sets(&grantable, true, true),
            )],
        ),
        6 => (
            "caps.duplicates",
            vec![set(
                "/process/capabilities",
                caps_all_sets(&["CAP_KILL", "CAP_KILL", "CAP_CHOWN"], false, false),
            )],
        ),
        _ => {
            // Ambient capabilities of a non-root process.
            let c = ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"];
            (
                "caps.ambient-non-root",
                vec![
                    set("/process/capabilities", caps_all_sets(&c, true, true)),
                    set("/process/user/uid", json!(1000)),
                    set("/process/user/gid", json!(1000)),
                ],
            )
        }
    };
    g.add(tag, ops);
}

/// The smallest value of a limit the probe (and the runtimes' own init code
/// before exec) still works with.
fn rlimit_floor(rl: &str) -> u64 {
    match rl {
        "RLIMIT_AS" | "RLIMIT_DATA" => 1 << 30,
        "RLIMIT_RSS" => 256 << 20,
        "RLIMIT_STACK" => 8 << 20,
        "RLIMIT_FSIZE" => 64 << 20,
        "RLIMIT_NOFILE" => 256,
        "RLIMIT_NPROC" => 512,
        "RLIMIT_CPU" => 120,
        "RLIMIT_SIGPENDING" | "RLIMIT_LOCKS" => 256,
        "RLIMIT_RTTIME" => 10_000_000,
        _ => 0,
    }
}

const RLIMIT_TYPES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

fn f_rlimits(g: &mut Gen) {
    if g.rng.chance(10) {
        if g.rng.chance(50) {
            g.add("rlimit.clear", vec![set("/process/rlimits", json!([]))]);
        } else {
            g.add("rlimit.absent", vec![Op::Remove(s("/process/rlimits"))]);
        }
        return;
    }
    let push = |ty: &str, soft: u64, hard: u64| Op::Rlimit(s(ty), soft, hard);
    let dup = |ty: &str, soft: u64, hard: u64| {
        Op::Push(
            s("/process/rlimits"),
            json!({"type": ty, "soft": soft, "hard": hard}),
        )
    };
    for _ in 0..g.rng.range(1, 3) {
        let ty = g.pick_str(&RLIMIT_TYPES);
        let (hsoft, hhard) = g.host.limit(&ty);
        let floor = rlimit_floor(&ty).min(hhard);
        // a hard limit in [floor, host hard]
        let hard = if hhard == UNLIMITED {
            if g.rng.chance(40) {
                UNLIMITED
            } else {
                floor.max(1) * g.rng.range(1, 64)
            }
        } else if g.rng.chance(50) {
            hhard
        } else {
            g.rng.range(floor, hhard)
        };
        if g.invalid(15) {
            let k = g.rng.below(3);
            if k == 0 && hard < UNLIMITED - 10 {
                let soft = hard + g.rng.range(1, 10);
                g.add("rlimit.soft>hard", vec![push(&ty, soft, hard)]);
                return;
            }
            if k == 1 && hhard != UNLIMITED {
                g.add("rlimit.hard>host-hard", vec![push(&ty, hhard, hhard + 1)]);
                return;
            }
            g.add("rlimit.unknown-type", vec![push("RLIMIT_BOGUS", 10, 10)]);
            return;
        }
        let (tag, soft) = match g.rng.below(4) {
            0 => ("rlimit.soft=hard", hard),
            1 if hard > floor => {
                let top = if hard == UNLIMITED {
                    floor.max(1) * 64
                } else {
                    hard - 1
                };
                ("rlimit.soft<hard", g.rng.range(floor, top.max(floor)))
            }
            2 => ("rlimit.host-values", hsoft.min(hard)),
            _ => ("rlimit.soft=hard", hard),
        };
        let (tag, soft, hard) = if tag == "rlimit.host-values" {
            (tag, hsoft, hhard)
        } else {
            (tag, soft, hard)
        };
        let mut ops = vec![push(&ty, soft, hard)];
        let tag = if g.rng.chance(10) {
            // the same type twice: which one wins?
            let h2 = if hard == UNLIMITED {
                hard
            } else {
                hard.max(floor)
            };
            ops.push(dup(&ty, floor.min(h2), h2));
            "rlimit.duplicate-type"
        } else {
            tag
        };
        g.add(tag, ops);
    }
}

fn f_nnp(g: &mut Gen) {
    match g.rng.below(3) {
        0 => g.add(
            "nnp.false",
            vec![set("/process/noNewPrivileges", json!(false))],
        ),
        1 => g.add(
            "nnp.true",
            vec![set("/process/noNewPrivileges", json!(true))],
        ),
        _ => g.add(
            "nnp.absent",
            vec![Op::Remove(s("/process/noNewPrivileges"))],
        ),
    }
}

fn f_oom(g: &mut Gen) {
    if g.invalid(25) {
        let (tag, v) = if g.rng.chance(50) {
            ("oom.above-1000", json!(1001))
        } else {
            // root here lacks CAP_SYS_RESOURCE: lowering is refused
            ("oom.negative", json!(*g.rng.pick(&[-1, -999, -1000])))
        };
        g.add(tag, vec![set("/process/oomScoreAdj", v)]);
        return;
    }
    let v = *g.rng.pick(&[0, 1, 500, 999, 1000]);
    g.add("oom.valid", vec![set("/process/oomScoreAdj", json!(v))]);
}

fn f_hostname(g: &mut Gen) {
    if g.invalid(20) {
        let (tag, ops) = match g.rng.below(3) {
            0 => (
                "hostname.too-long",
                vec![set("/hostname", json!("h".repeat(65)))],
            ),
            1 => (
                "domainname.too-long",
                vec![set("/domainname", json!("d".repeat(65)))],
            ),
            _ => (
                "hostname.without-uts-namespace",
                vec![
                    Op::DropNamespace(s("uts")),
                    set("/hostname", json!("no-uts")),
                ],
            ),
        };
        g.add(tag, ops);
        return;
    }
    let (tag, ops) = match g.rng.below(7) {
        0 => ("hostname.absent", vec![Op::Remove(s("/hostname"))]),
        1 => ("hostname.empty", vec![set("/hostname", json!(""))]),
        2 => (
            "hostname.max-length",
            vec![set("/hostname", json!("h".repeat(64)))],
        ),
        3 => (
            "hostname.dotted",
            vec![set("/hostname", json!("a-b.example.com"))],
        ),
        4 => (
            "domainname.set",
            vec![set("/domainname", json!("example.org"))],
        ),
        5 => ("domainname.empty", vec![set("/domainname", json!(""))]),
        _ => (
            "domainname.max-length",
            vec![set("/domainname", json!("d".repeat(64)))],
        ),
    };
    g.add(tag, ops);
}

fn f_root(g: &mut Gen) {
    if g.invalid(20) {
        if g.rng.chance(50) {
            g.add(
                "root.missing",
                vec![set("/root/path", json!("no-such-rootfs"))],
            );
        } else {
            g.add(
                "root.file",
                vec![
                    Op::BundleFile(s("rootfs-file"), s("x"), 0o644),
                    set("/root/path", json!("rootfs-file")),
                ],
            );
        }
        return;
    }
    match g.rng.below(3) {
        0 => g.add("root.readonly", vec![set("/root/readonly", json!(true))]),
        1 => g.add(
            "root.absolute-path",
            vec![set("/root/path", json!("@BUNDLE@/rootfs"))],
        ),
        _ => g.add(
            "root.trailing-slash",
            vec![set("/root/path", json!("rootfs/"))],
        ),
    }
}

/// Option mutations on the mount at `dest` (kind: tmpfs or bind).
fn mount_opts(g: &mut Gen, dest: &str, kind: &str) {
    for _ in 0..g.rng.range(0, 3) {
        let tmpfs = kind == "tmpfs";
        if g.invalid(10) {
            let opt = if tmpfs {
                g.pick_str(&[
                    "size=bogus",
                    "mode=99999",
                    "nr_inodes=x",
                    "bogusopt",
                    "bogus=1",
                ])
            } else {
                g.pick_str(&["rro", "rbogus"])
            };
            let tag = if tmpfs {
                "mount.opt.invalid"
            } else {
                "mount.opt.bind-odd"
            };
            g.add(tag, vec![Op::MountOpt(s(dest), opt)]);
            continue;
        }
        let k = g.rng.below(if tmpfs { 12 } else { 8 });
        let (tag, opt) = match k {
            0 => ("mount.opt.ro", s("ro")),
            1 => ("mount.opt.rw", s("rw")),
            2 => (
                "mount.opt.flag",
                g.pick_str(&[
                    "nosuid", "nodev", "noexec", "suid", "dev", "exec", "sync", "dirsync",
                ]),
            ),
            3 => (
                "mount.opt.atime",
                g.pick_str(&[
                    "strictatime",
                    "noatime",
                    "relatime",
                    "nodiratime",
                    "atime",
                    "norelatime",
                    "nostrictatime",
                ]),
            ),
            4 => (
                "mount.opt.propagation",
                g.pick_str(&[
                    "private",
                    "rprivate",
                    "slave",
                    "rslave",
                    "shared",
                    "rshared",
                    "unbindable",
                    "runbindable",
                ]),
            ),
            5 => (
                "mount.opt.recursive",
                g.pick_str(&["rro", "rnosuid", "rnodev", "rnoexec", "rrw", "rnoatime"]),
            ),
            6 | 7 if !tmpfs => (
                "mount.opt.data-on-bind",
                g.pick_str(&["mode=755", "size=1m", "foo=bar", "uid=1000"]),
            ),
            6 => (
                "mount.opt.mode",
                g.pick_str(&["mode=700", "mode=1777", "mode=0755", "mode=555"]),
            ),
            7 => (
                "mount.opt.size",
                g.pick_str(&["size=1m", "size=65536k", "size=10%", "size=4096"]),
            ),
            8 => (
                "mount.opt.nr_inodes",
                g.pick_str(&["nr_inodes=100", "nr_inodes=1k"]),
            ),
            9 => ("mount.opt.uid-gid", g.pick_str(&["uid=1000", "gid=1000"])),
            10 => ("mount.opt.tmpcopyup", s("tmpcopyup")),
            _ => ("mount.opt.ro-then-rw", s("rw")),
        };
        if tag == "mount.opt.ro-then-rw" {
            g.add(
                tag,
                vec![Op::MountOpt(s(dest), s("ro")), Op::MountOpt(s(dest), opt)],
            );
        } else {
            g.add(tag, vec![Op::MountOpt(s(dest), opt)]);
        }
    }
}

fn f_tmpfs(g: &mut Gen) {
    let n = g.uniq();
    let dest = match g.rng.below(8) {
        0 => s("/tmp"),
        1 => s("/run"),
        2 => format!("/mnt/t{n}"),
        3 => format!("/var/t{n}"),
        4 => s("/home/user1"),
        5 => format!("/deep{n}/a/b"),
        6 => s("/etc"),
        _ => format!("/srv/t{n}"),
    };
    let src = g.pick_str(&["tmpfs", "none", "shm"]);
    let opts = g.rng.subset(&["nosuid", "nodev", "noexec"], 50);
    let mut ops = vec![Op::Mount(
        json!({"destination": dest, "type": "tmpfs", "source": src, "options": opts}),
    )];
    if dest.starts_with("/srv/") {
        // content under the mount point (hidden by the tmpfs, copied with tmpcopyup)
        ops.insert(
            0,
            Op::RootfsFile(format!("{dest}/seed"), s("seed\n"), 0o644),
        );
    }
    g.add("mount.tmpfs", ops);
    mount_opts(g, &dest, "tmpfs");
}

fn f_bind(g: &mut Gen) {
    let n = g.uniq();
    let hostdir = format!("hostdir{n}");
    let mut ops = vec![
        Op::BundleDir(hostdir.clone(), 0o755),
        Op::BundleFile(format!("{hostdir}/a"), s("a\n"), 0o644),
        Op::BundleDir(format!("{hostdir}/sub"), 0o755),
        Op::BundleFile(format!("{hostdir}/sub/b"), s("b\n"), 0o644),
    ];
    if g.invalid(12) {
        if g.rng.chance(50) {
            g.add(
                "mount.bind.missing-source",
                vec![Op::Mount(bind(
                    &format!("/mnt/m{n}"),
                    "no-such-source",
                    &["bind"],
                ))],
            );
        } else {
            ops.push(Op::BundleFile(format!("hostfile{n}"), s("f\n"), 0o644));
            ops.push(Op::Mount(bind("/etc", &format!("hostfile{n}"), &["bind"])));
            g.add("mount.bind.file-over-dir", ops);
        }
        return;
    }
    let k = g.rng.below(9);
    let (tag, dest) = match k {
        0..=3 => {
            let dest = match g.rng.below(5) {
                0 => format!("/mnt/b{n}"),
                1 => s("/home/user2"),
                2 => format!("/srv/b{n}"),
                3 => format!("/tmp/b{n}"),
                _ => format!("/opt/x{n}/b"),
            };
            let src = if g.rng.chance(50) {
                hostdir.clone()
            } else {
                format!("@BUNDLE@/{hostdir}")
            };
            let rec = g.rng.chance(50);
            let mut m = bind(&dest, &src, &[if rec { "rbind" } else { "bind" }]);
            let tag = match g.rng.below(4) {
                0 => {
                    m["type"] = json!("none");
                    "mount.bind.type-none"
                }
                1 => {
                    m.as_object_mut().map(|o| o.remove("type"));
                    "mount.bind.no-type"
                }
                _ if rec => "mount.rbind",
                _ => "mount.bind",
            };
            ops.push(Op::Mount(m));
            (tag, dest)
        }
        4 => {
            let dest = if g.rng.chance(50) {
                format!("/etc/bindfile{n}")
            } else {
                s("/etc/hostname")
            };
            ops.push(Op::BundleFile(
                format!("hostfile{n}"),
                s("file content\n"),
                0o644,
            ));
            ops.push(Op::Mount(bind(&dest, &format!("hostfile{n}"), &["bind"])));
            ("mount.bind.file", dest)
        }
        5 => {
            // The host's cgroup tree (submounts), always read-only.
            let dest = format!("/mnt/hostcg{n}");
            let opts = match g.rng.below(3) {
                0 => vec!["rbind", "ro"],
                1 => vec!["rbind", "rro"],
                _ => vec!["bind", "ro"],
            };
            ops.push(Op::Mount(bind(&dest, "/sys/fs/cgroup", &opts)));
            g.add("mount.bind.host-submounts", ops);
            return;
        }
        6 => {
            ops.push(Op::BundleFile(
                format!("uptime{n}"),
                s("1.00 2.00\n"),
                0o644,
            ));
            ops.push(Op::Mount(bind(
                "/proc/uptime",
                &format!("uptime{n}"),
                &["bind", "ro"],
            )));
            ("mount.bind.over-proc-file", s("/proc/uptime"))
        }
        7 => {
            ops.push(Op::Mount(bind("/etc/hostname", "/dev/null", &["bind"])));
            ("mount.bind.device", s("/etc/hostname"))
        }
        _ => {
            // bind over a directory that has content in the rootfs
            ops.push(Op::RootfsFile(
                format!("/srv/over{n}/hidden"),
                s("h\n"),
                0o644,
            ));
            let dest = format!("/srv/over{n}");
            ops.push(Op::Mount(bind(&dest, &hostdir, &["rbind"])));
            ("mount.bind.over-content", dest)
        }
    };
    g.add(tag, ops);
    mount_opts(g, &dest, "bind");
}

fn f_special(g: &mut Gen) {
    let n = g.uniq();
    if g.invalid(12) {
        let (tag, ops) = match g.rng.below(4) {
            0 => (
                "mount.unknown-type",
                vec![Op::Mount(
                    json!({"destination": format!("/mnt/u{n}"), "type": "bogusfs", "source": "x"}),
                )],
            ),
            1 => (
                "mount.no-destination",
                vec![Op::Mount(json!({"type": "tmpfs", "source": "tmpfs"}))],
            ),
            2 => (
                "mount.devpts.bad-option",
                vec![Op::MountOpt(s("/dev/pts"), s("gid=abc"))],
            ),
            _ => (
                "mount.proc.bad-option",
                vec![Op::MountOpt(s("/proc"), s("hidepid=bogus"))],
            ),
        };
        g.add(tag, ops);
        return;
    }
    let tmpfs = |d: &str| json!({"destination": d, "type": "tmpfs", "source": "tmpfs"});
    let (tag, ops) = match g.rng.below(22) {
        0 => ("mount.proc.drop", vec![Op::DropMount(s("/proc"))]),
        1 => {
            let o = g.pick_str(&[
                "nosuid",
                "noexec",
                "nodev",
                "hidepid=2",
                "hidepid=invisible",
                "subset=pid",
            ]);
            ("mount.proc.options", vec![Op::MountOpt(s("/proc"), o)])
        }
        2 => (
            "mount.proc.second",
            vec![Op::Mount(
                json!({"destination": format!("/mnt/proc{n}"), "type": "proc", "source": "proc"}),
            )],
        ),
        3 => ("mount.sysfs.drop", vec![Op::DropMount(s("/sys"))]),
        4 => ("mount.sysfs.rw", vec![Op::DropMountOpt(s("/sys"), s("ro"))]),
        5 => (
            "mount.cgroup.drop",
            vec![Op::DropMount(s("/sys/fs/cgroup"))],
        ),
        6 => (
            "mount.cgroup.rw",
            vec![Op::DropMountOpt(s("/sys/fs/cgroup"), s("ro"))],
        ),
        7 => (
            "mount.cgroup2",
            vec![
                Op::DropMount(s("/sys/fs/cgroup")),
                Op::Mount(
                    json!({"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2",
                                 "options": ["nosuid", "noexec", "nodev", "ro"]}),
                ),
            ],
        ),
        8 => ("mount.mqueue.drop", vec![Op::DropMount(s("/dev/mqueue"))]),
        9 => {
            let o = g.pick_str(&["ptmxmode=0600", "mode=0600", "gid=0", "max=10"]);
            ("mount.devpts.options", vec![Op::MountOpt(s("/dev/pts"), o)])
        }
        10 => ("mount.devpts.drop", vec![Op::DropMount(s("/dev/pts"))]),
        11 => ("mount.dev.drop", vec![Op::DropMount(s("/dev"))]),
        12 => {
            let o = g.pick_str(&["size=1m", "mode=1700", "ro"]);
            ("mount.shm.options", vec![Op::MountOpt(s("/dev/shm"), o)])
        }
        13 => (
            "mount.relative-destination",
            vec![Op::Mount(tmpfs(&format!("mnt/rel{n}")))],
        ),
        14 => (
            "mount.dotdot-destination",
            vec![Op::Mount(tmpfs(&format!("/mnt/../mnt/dd{n}")))],
        ),
        15 => {
            let target = g.pick_str(&["/tmp", "../../tmp", "../../../../../../../../tmp"]);
            (
                "mount.symlink-in-destination",
                vec![
                    Op::RootfsSymlink(target, format!("/lnk{n}")),
                    Op::Mount(tmpfs(&format!("/lnk{n}/sub"))),
                ],
            )
        }
        16 => (
            "mount.symlink-destination",
            vec![
                Op::RootfsDir(format!("/mnt/real{n}"), 0o755),
                Op::RootfsSymlink(format!("/mnt/real{n}"), format!("/lnkf{n}")),
                Op::Mount(tmpfs(&format!("/lnkf{n}"))),
            ],
        ),
        17 => (
            "mount.nested",
            vec![
                Op::Mount(tmpfs(&format!("/mnt/n{n}"))),
                Op::Mount(tmpfs(&format!("/mnt/n{n}/inner"))),
            ],
        ),
        18 => (
            "mount.nested-reversed",
            vec![
                Op::Mount(tmpfs(&format!("/mnt/r{n}/inner"))),
                Op::Mount(tmpfs(&format!("/mnt/r{n}"))),
            ],
        ),
        19 => {
            let d = format!("/mnt/s{n}");
            let mut a = tmpfs(&d);
            a["options"] = json!(["size=1m"]);
            let mut b = tmpfs(&d);
            b["options"] = json!(["size=2m"]);
            ("mount.stacked", vec![Op::Mount(a), Op::Mount(b)])
        }
        20 => ("mount.into-proc", vec![Op::Mount(tmpfs("/proc/bus"))]),
        _ => (
            "mount.empty-options",
            vec![Op::Mount(
                json!({"destination": format!("/mnt/e{n}"), "type": "tmpfs", "source": "tmpfs", "options": []}),
            )],
        ),
    };
    g.add(tag, ops);
}

fn userns_ops(g: &mut Gen) -> Vec<Op> {
    let h: u32 = *g.rng.pick(&[100000u32, 231072]);
    let (uid, gid) = match g.rng.below(4) {
        0 => (
            json!([{"containerID": 0, "hostID": h, "size": 1}, {"containerID": 1, "hostID": h + 1, "size": 65535}]),
            json!([{"containerID": 0, "hostID": h, "size": 65536}]),
        ),
        _ => (
            json!([{"containerID": 0, "hostID": h, "size": 65536}]),
            json!([{"containerID": 0, "hostID": h, "size": 65536}]),
        ),
    };
    let mut ops = vec![
        Op::Namespace(json!({"type": "user"})),
        set("/linux/uidMappings", uid),
        set("/linux/gidMappings", gid),
    ];
    if g.rng.chance(70) {
        ops.push(Op::RootfsChown(h));
    }
    ops
}

fn f_namespaces(g: &mut Gen) {
    if g.invalid(20) {
        let (tag, ops) = match g.rng.below(8) {
            0 => (
                "ns.unknown-type",
                vec![Op::Push(s("/linux/namespaces"), json!({"type": "bogus"}))],
            ),
            1 => (
                "ns.duplicate",
                vec![Op::Push(s("/linux/namespaces"), json!({"type": "pid"}))],
            ),
            2 => (
                "ns.missing-path",
                vec![Op::Namespace(
                    json!({"type": "network", "path": "/nonexistent/ns/net"}),
                )],
            ),
            3 => (
                "ns.path-of-wrong-type",
                vec![
                    Op::Helper,
                    Op::Namespace(json!({"type": "uts", "path": "/proc/@HELPER@/ns/net"})),
                ],
            ),
            4 => (
                "ns.user.no-mappings",
                vec![Op::Namespace(json!({"type": "user"}))],
            ),
            5 => (
                "ns.user.mappings-without-userns",
                vec![
                    set(
                        "/linux/uidMappings",
                        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
                    ),
                    set(
                        "/linux/gidMappings",
                        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
                    ),
                ],
            ),
            6 => (
                "ns.user.overlapping-mappings",
                vec![
                    Op::Namespace(json!({"type": "user"})),
                    set(
                        "/linux/uidMappings",
                        json!([{"containerID": 0, "hostID": 100000, "size": 1000},
                               {"containerID": 500, "hostID": 200000, "size": 1000}]),
                    ),
                    set(
                        "/linux/gidMappings",
                        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
                    ),
                ],
            ),
            _ => ("ns.time", vec![Op::Namespace(json!({"type": "time"}))]),
        };
        g.add(tag, ops);
        return;
    }
    let k = g.rng.below(11);
    match k {
        0..=4 => {
            let t = ["pid", "network", "ipc", "uts", "mount"][k as usize];
            let mut ops = vec![Op::DropNamespace(s(t))];
            let tag = match t {
                // runc refuses a hostname without a UTS namespace and masked paths without a mount namespace
                "uts" => {
                    ops.push(Op::Remove(s("/hostname")));
                    ops.push(Op::Remove(s("/domainname")));
                    "ns.drop.uts"
                }
                "mount" => {
                    ops.push(set("/linux/maskedPaths", json!([])));
                    ops.push(set("/linux/readonlyPaths", json!([])));
                    "ns.drop.mount"
                }
                "pid" => "ns.drop.pid",
                "network" => "ns.drop.network",
                _ => "ns.drop.ipc",
            };
            g.add(tag, ops);
        }
        5 => g.add("ns.cgroup", vec![Op::Namespace(json!({"type": "cgroup"}))]),
        6 | 7 => {
            let ops = userns_ops(g);
            g.add("ns.user", ops);
        }
        8 => {
            let mut ops = vec![Op::Helper];
            let types = g.rng.subset(&["net", "ipc", "uts", "mnt"], 50);
            let types = if types.is_empty() { vec!["net"] } else { types };
            for t in &types {
                let ty = match *t {
                    "net" => "network",
                    "mnt" => "mount",
                    x => x,
                };
                ops.push(Op::Namespace(
                    json!({"type": ty, "path": format!("/proc/@HELPER@/ns/{t}")}),
                ));
            }
            let tag = if types.contains(&"mnt") {
                "ns.join.mount"
            } else {
                "ns.join"
            };
            g.add(tag, ops);
        }
        9 => g.add(
            "ns.order",
            vec![set(
                "/linux/namespaces",
                json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}, {"type": "pid"}]),
            )],
        ),
        _ => g.add(
            "ns.all",
            vec![
                Op::Namespace(json!({"type": "cgroup"})),
                Op::Namespace(json!({"type": "ipc"})),
                Op::Namespace(json!({"type": "uts"})),
            ],
        ),
    }
}

fn f_paths(g: &mut Gen) {
    let masked = g.rng.chance(50);
    let (list, name) = if masked {
        ("/linux/maskedPaths", "masked")
    } else {
        ("/linux/readonlyPaths", "readonly")
    };
    let pool: &[&str] = if masked {
        &[
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/acpi",
            "/proc/scsi",
            "/sys/devices/virtual/powercap",
            "/proc/interrupts",
            "/proc/sys/kernel",
            "/sys/kernel/mm",
        ]
    } else {
        &[
            "/proc/sys",
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sysrq-trigger",
            "/sys/kernel",
            "/proc/sys/net",
        ]
    };
    let n = g.uniq();
    let push = |p: String| Op::Push(s(list), json!(p));
    let (tag, ops) = match g.rng.below(11) {
        0 | 1 => {
            let mut ps = g.rng.subset(pool, 30);
            if ps.is_empty() {
                ps.push(pool[0]);
            }
            ("existing", ps.into_iter().map(|p| push(s(p))).collect())
        }
        2 => {
            let p = g.pick_str(&["/etc/passwd", "/home", "/etc/group", "/var", "/tmp"]);
            ("rootfs-path", vec![push(p)])
        }
        3 => {
            let p = g.pick_str(&["/proc/nonexistent", "/nope/deeper/x", "/sys/nonexistent"]);
            ("missing", vec![push(p)])
        }
        4 => {
            let p = g.pick_str(&["proc/kcore", "etc/group", "sys/firmware", "proc/sys"]);
            ("relative", vec![push(p)])
        }
        5 => ("clear", vec![set(list, json!([]))]),
        6 => ("absent", vec![Op::Remove(s(list))]),
        7 => (
            "symlink",
            vec![
                Op::RootfsSymlink(s("/etc/group"), format!("/grouplink{n}")),
                push(format!("/grouplink{n}")),
            ],
        ),
        8 => {
            let p = g.pick_str(pool);
            ("duplicate", vec![push(p.clone()), push(p)])
        }
        9 => {
            let p = g.pick_str(&["/proc/../proc/kcore", "/sys/firmware/", "//proc//keys"]);
            ("unclean", vec![push(p)])
        }
        _ => {
            let p = g.pick_str(&["/proc/kcore", "/etc/group", "/sys/firmware"]);
            g.add(
                "paths.masked-and-readonly",
                vec![
                    Op::Push(s("/linux/maskedPaths"), json!(p)),
                    Op::Push(s("/linux/readonlyPaths"), json!(p)),
                ],
            );
            return;
        }
    };
    g.add(&format!("{name}.{tag}"), ops);
}

fn sysctl_op(key: &str, v: &str) -> Op {
    Op::Set(format!("/linux/sysctl/{key}"), json!(v))
}

fn f_sysctl(g: &mut Gen) {
    if g.invalid(25) {
        let (tag, ops) = match g.rng.below(5) {
            0 => {
                let k = g.pick_str(&[
                    "vm.swappiness",
                    "fs.file-max",
                    "kernel.panic",
                    "kernel.pid_max",
                ]);
                // the host's own value: harmless even if a runtime wrote it
                let v = g.host.sysctl(&k).unwrap_or_else(|| s("0"));
                ("sysctl.not-namespaced", vec![sysctl_op(&k, &v)])
            }
            1 => {
                let v = g
                    .host
                    .sysctl("net.ipv4.ip_forward")
                    .unwrap_or_else(|| s("0"));
                (
                    "sysctl.net-without-netns",
                    vec![
                        Op::DropNamespace(s("network")),
                        sysctl_op("net.ipv4.ip_forward", &v),
                    ],
                )
            }
            2 => {
                let v = g
                    .host
                    .sysctl("kernel.shm_rmid_forced")
                    .unwrap_or_else(|| s("0"));
                (
                    "sysctl.ipc-without-ipcns",
                    vec![
                        Op::DropNamespace(s("ipc")),
                        sysctl_op("kernel.shm_rmid_forced", &v),
                    ],
                )
            }
            3 => (
                "sysctl.unknown-key",
                vec![sysctl_op("net.ipv4.bogus_key", "1")],
            ),
            _ => (
                "sysctl.bad-value",
                vec![sysctl_op("net.ipv4.ip_forward", "abc")],
            ),
        };
        g.add(tag, ops);
        return;
    }
    let net: [(&str, &[&str]); 8] = [
        ("net.ipv4.ip_forward", &["1", "0"]),
        ("net.ipv4.ip_unprivileged_port_start", &["0", "80", "1024"]),
        ("net.ipv4.ping_group_range", &["0 2147483647", "1 0"]),
        ("net.core.somaxconn", &["1000", "4096"]),
        ("net.ipv4.tcp_syncookies", &["0", "1"]),
        ("net.ipv4.ip_local_port_range", &["20000 30000"]),
        ("net.ipv4.conf.all.rp_filter", &["0", "2"]),
        ("net.ipv6.conf.all.disable_ipv6", &["1"]),
    ];
    let ipc: [(&str, &[&str]); 7] = [
        ("kernel.shm_rmid_forced", &["1"]),
        ("kernel.msgmax", &["16384"]),
        ("kernel.msgmnb", &["32768"]),
        ("kernel.sem", &["250 32000 32 256"]),
        ("kernel.shmmax", &["68719476736"]),
        ("fs.mqueue.msg_max", &["20", "100"]),
        ("fs.mqueue.queues_max", &["128"]),
    ];
    let (tag, ops) = match g.rng.below(5) {
        0 | 1 => {
            let mut ops = Vec::new();
            for _ in 0..g.rng.range(1, 3) {
                let (k, vs) = g.rng.pick(&net);
                let v = g.rng.pick(vs).to_string();
                ops.push(sysctl_op(k, &v));
            }
            ("sysctl.net", ops)
        }
        2 | 3 => {
            let (k, vs) = g.rng.pick(&ipc);
            let v = g.rng.pick(vs).to_string();
            ("sysctl.ipc", vec![sysctl_op(k, &v)])
        }
        _ => {
            if g.rng.chance(50) {
                (
                    "sysctl.uts.domainname",
                    vec![sysctl_op("kernel.domainname", "sysctl.example")],
                )
            } else {
                (
                    "sysctl.uts.hostname",
                    vec![sysctl_op("kernel.hostname", "sysctlhost")],
                )
            }
        }
    };
    g.add(tag, ops);
}

fn f_devices(g: &mut Gen) {
    let n = g.uniq();
    if g.invalid(15) {
        let (tag, v) = match g.rng.below(3) {
            0 => (
                "devices.bad-type",
                json!({"path": format!("/dev/bad{n}"), "type": "x", "major": 1, "minor": 3}),
            ),
            1 => (
                "devices.missing-type",
                json!({"path": format!("/dev/bad{n}"), "major": 1, "minor": 3}),
            ),
            _ => {
                g.add(
                    "devices.cgroup.bad-access",
                    vec![Op::Push(
                        s("/linux/resources/devices"),
                        json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}),
                    )],
                );
                return;
            }
        };
        g.add(tag, vec![Op::Push(s("/linux/devices"), v)]);
        return;
    }
    let rule = |allow: bool, ty: &str, major: i64, minor: i64, access: &str| {
        Op::Push(
            s("/linux/resources/devices"),
            json!({"allow": allow, "type": ty, "major": major, "minor": minor, "access": access}),
        )
    };
    match g.rng.below(9) {
        0..=2 => {
            let (path, ty, major, minor) = match g.rng.below(8) {
                0 => (format!("/dev/dnull{n}"), "c", 1, 3),
                1 => (format!("/dev/dzero{n}"), "c", 1, 5),
                2 => (s("/dev/net/tun"), "c", 10, 200),
                3 => (s("/dev/fuse"), "c", 10, 229),
                4 => (format!("/dev/loopx{n}"), "b", 7, 0),
                5 => (format!("/dev/fifo{n}"), "p", 0, 0),
                6 => (format!("/mydevs/null{n}"), "c", 1, 3),
                _ => (format!("/dev/big{n}"), "c", 1, 300),
            };
            let mut d = json!({"path": path, "type": ty});
            if ty != "p" {
                d["major"] = json!(major);
                d["minor"] = json!(minor);
            }
            match g.rng.below(4) {
                0 => {}
                1 => d["fileMode"] = json!(0o666),
                2 => d["fileMode"] = json!(0o600),
                _ => d["fileMode"] = json!(0o620),
            }
            if g.rng.chance(30) {
                d["uid"] = json!(*g.rng.pick(&[0, 1000]));
            }
            if g.rng.chance(30) {
                d["gid"] = json!(*g.rng.pick(&[0, 5, 1000]));
            }
            g.add("devices.node", vec![Op::Push(s("/linux/devices"), d)]);
            if ty != "p" && g.rng.chance(50) {
                let access = g.pick_str(&["rwm", "r", "rw", "m"]);
                g.add(
                    "devices.cgroup.allow-node",
                    vec![rule(true, ty, major, minor, &access)],
                );
            }
        }
        3 => g.add(
            "devices.redefine-default",
            vec![Op::Push(
                s("/linux/devices"),
                json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}),
            )],
        ),
        4 => {
            let minor = *g.rng.pick(&[5i64, 9, 3]);
            let access = g.pick_str(&["rwm", "r", "w"]);
            g.add("devices.cgroup.deny", vec![rule(false, "c", 1, minor, &access)]);
        }
        5 => g.add(
            "devices.cgroup.allow-all",
            vec![Op::Push(
                s("/linux/resources/devices"),
                json!({"allow": true, "access": "rwm"}),
            )],
        ),
        6 => g.add(
            "devices.cgroup.wildcard",
            vec![Op::Push(
                s("/linux/resources/devices"),
                json!({"allow": true, "type": "c", "access": "m"}),
            )],
        ),
        7 => g.add(
            "devices.cgroup.clear",
            vec![set("/linux/resources/devices", json!([]))],
        ),
        _ => g.add(
            "devices.cgroup.allow-then-deny",
            vec![
                rule(true, "c", 1, 5, "rwm"),
                rule(false, "c", 1, 5, "r"),
            ],
        ),
    }
}

fn f_resources(g: &mut Gen) {
    const MI: i64 = 1 << 20;
    if g.invalid(20) {
        let (tag, ops) = match g.rng.below(7) {
            0 => (
                "res.cpu.shares-below-min",
                vec![set("/linux/resources/cpu/shares", json!(1))],
            ),
            1 => (
                "res.cpu.shares-above-max",
                vec![set("/linux/resources/cpu/shares", json!(300000))],
            ),
            2 => (
                "res.memory.swap-below-limit",
                vec![
                    set("/linux/resources/memory/limit", json!(128 * MI)),
                    set("/linux/resources/memory/swap", json!(64 * MI)),
                ],
            ),
            3 => (
                "res.memory.swappiness-above-100",
                vec![set("/linux/resources/memory/swappiness", json!(101))],
            ),
            4 => (
                "res.cpuset.bad-cpus",
                vec![set("/linux/resources/cpu/cpus", json!("7"))],
            ),
            5 => (
                "res.cpu.period-too-small",
                vec![
                    set("/linux/resources/cpu/period", json!(500)),
                    set("/linux/resources/cpu/quota", json!(1000)),
                ],
            ),
            _ => (
                "res.unified-on-v1",
                vec![set("/linux/resources/unified", json!({"pids.max": "10"}))],
            ),
        };
        g.add(tag, ops);
        return;
    }
    let (tag, ops) = match g.rng.below(14) {
        0 | 1 => {
            let v = *g.rng.pick(&[10i64, 64, 1000, -1, 0]);
            let tag = match v {
                0 => "res.pids.zero",
                -1 => "res.pids.unlimited",
                _ => "res.pids",
            };
            (tag, vec![set("/linux/resources/pids/limit", json!(v))])
        }
        2 | 3 => {
            let v = *g.rng.pick(&[64 * MI, 128 * MI, 512 * MI, -1]);
            (
                "res.memory.limit",
                vec![set("/linux/resources/memory/limit", json!(v))],
            )
        }
        4 => (
            "res.memory.reservation",
            vec![set("/linux/resources/memory/reservation", json!(32 * MI))],
        ),
        5 => {
            let l = 128 * MI;
            let sw = *g.rng.pick(&[l, 2 * l, -1]);
            (
                "res.memory.swap",
                vec![
                    set("/linux/resources/memory/limit", json!(l)),
                    set("/linux/resources/memory/swap", json!(sw)),
                ],
            )
        }
        6 => {
            let v = *g.rng.pick(&[0, 60, 100]);
            (
                "res.memory.swappiness",
                vec![set("/linux/resources/memory/swappiness", json!(v))],
            )
        }
        7 => (
            "res.memory.oom-killer-off",
            vec![set("/linux/resources/memory/disableOOMKiller", json!(true))],
        ),
        8 => {
            let which = g.pick_str(&["kernel", "kernelTCP"]);
            (
                "res.memory.kernel",
                vec![set(
                    &format!("/linux/resources/memory/{which}"),
                    json!(64 * MI),
                )],
            )
        }
        9 => {
            let v = *g.rng.pick(&[2, 512, 1024, 262144]);
            (
                "res.cpu.shares",
                vec![set("/linux/resources/cpu/shares", json!(v))],
            )
        }
        10 => {
            let (q, p) = *g.rng.pick(&[
                (50000i64, 100000u64),
                (-1, 100000),
                (20000, 50000),
                (1000000, 100000),
            ]);
            (
                "res.cpu.quota",
                vec![
                    set("/linux/resources/cpu/quota", json!(q)),
                    set("/linux/resources/cpu/period", json!(p)),
                ],
            )
        }
        11 => {
            let c = g.pick_str(&["0", "0-1", "1"]);
            (
                "res.cpuset",
                vec![
                    set("/linux/resources/cpu/cpus", json!(c)),
                    set("/linux/resources/cpu/mems", json!("0")),
                ],
            )
        }
        12 => match g.rng.below(4) {
            0 => (
                "res.blkio.weight",
                vec![set("/linux/resources/blockIO/weight", json!(500))],
            ),
            1 => (
                "res.blkio.throttle",
                vec![set(
                    "/linux/resources/blockIO/throttleReadBpsDevice",
                    json!([{"major": 7, "minor": 0, "rate": 1048576}]),
                )],
            ),
            2 => (
                "res.hugepages",
                vec![set(
                    "/linux/resources/hugepageLimits",
                    json!([{"pageSize": "2MB", "limit": 0}]),
                )],
            ),
            _ => (
                "res.network",
                vec![set("/linux/resources/network/classID", json!(1048577))],
            ),
        },
        _ => (
            "res.cpu.period-only",
            vec![set("/linux/resources/cpu/period", json!(50000))],
        ),
    };
    g.add(tag, ops);
}

fn f_seccomp(g: &mut Gen) {
    let minus_tag: String;
    let arches = match g.rng.below(3) {
        0 => json!(["SCMP_ARCH_X86_64"]),
        1 => Value::Null,
        _ => json!(X86_ARCHES),
    };
    let with_arches = |mut p: Value| {
        if arches.is_null() {
            p.as_object_mut().map(|o| o.remove("architectures"));
        } else {
            p["architectures"] = arches.clone();
        }
        p
    };
    let deny = |names: &[&str], action: &str, errno: Option<u32>| {
        let mut r = json!({"names": names, "action": action});
        if let Some(e) = errno {
            r["errnoRet"] = json!(e);
        }
        r
    };
    let allow_default = |rules: Vec<Value>| json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": X86_ARCHES, "syscalls": rules});
    if g.invalid(15) {
        let (tag, p) = match g.rng.below(6) {
            0 => (
                "seccomp.bad-action",
                allow_default(vec![deny(&["mkdir"], "SCMP_ACT_BOGUS", None)]),
            ),
            1 => (
                "seccomp.bad-default-action",
                json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            ),
            2 => (
                "seccomp.notify-without-listener",
                allow_default(vec![deny(&["mkdir"], "SCMP_ACT_NOTIFY", None)]),
            ),
            3 => {
                let mut p = allow_default(vec![deny(&["mkdir"], "SCMP_ACT_ERRNO", None)]);
                p["architectures"] = json!(["SCMP_ARCH_BOGUS"]);
                ("seccomp.bad-arch", p)
            }
            4 => (
                "seccomp.bad-operator",
                allow_default(vec![json!({"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
                                          "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_BOGUS"}]})]),
            ),
            _ => {
                let mut p = allow_default(vec![deny(&["mkdir"], "SCMP_ACT_ERRNO", None)]);
                p["flags"] = json!(["SECCOMP_FILTER_FLAG_BOGUS"]);
                ("seccomp.bad-flag", p)
            }
        };
        g.add(tag, vec![set("/linux/seccomp", p)]);
        return;
    }
    let (tag, p) = match g.rng.below(13) {
        0 | 1 => {
            let e = *g.rng.pick(&[None, Some(1u32), Some(38)]);
            (
                "seccomp.allowlist",
                with_arches(profile_allowlist(e, &[], vec![])),
            )
        }
        2 => (
            "seccomp.allowlist.no-close_range",
            with_arches(profile_allowlist(Some(1), &["close_range"], vec![])),
        ),
        3 => {
            let extra = vec![deny(&["clone3"], "SCMP_ACT_ERRNO", Some(38))];
            (
                "seccomp.allowlist.clone3-enosys",
                with_arches(profile_allowlist(Some(1), &["clone3"], extra)),
            )
        }
        4 => {
            let options: [&[&str]; 10] = [
                &["mkdir", "mkdirat"],
                &["chmod", "fchmodat", "fchmodat2"],
                &["symlink", "symlinkat"],
                &["uname"],
                &["getcwd"],
                &["socket"],
                &["sync"],
                &["faccessat2"],
                &["openat2"],
                &["prlimit64"],
            ];
            let drop = *g.rng.pick(&options);
            minus_tag = format!("seccomp.allowlist.minus-{}", drop[0]);
            (
                minus_tag.as_str(),
                with_arches(profile_allowlist(Some(1), drop, vec![])),
            )
        }
        5 | 6 => {
            let mut rules = Vec::new();
            for _ in 0..g.rng.range(1, 3) {
                let options: [&[&str]; 8] = [
                    &["mkdir", "mkdirat"],
                    &["chmod", "fchmodat", "fchmodat2"],
                    &["symlink", "symlinkat"],
                    &["uname"],
                    &["sethostname"],
                    &["unshare"],
                    &["mount"],
                    &["socket"],
                ];
                let names = *g.rng.pick(&options);
                let e = *g
                    .rng
                    .pick(&[None, Some(1u32), Some(13), Some(38), Some(95)]);
                let action = if g.rng.chance(15) {
                    "SCMP_ACT_LOG"
                } else {
                    "SCMP_ACT_ERRNO"
                };
                rules.push(deny(
                    names,
                    action,
                    if action == "SCMP_ACT_LOG" { None } else { e },
                ));
            }
            let mut p = allow_default(rules);
            p = with_arches(p);
            ("seccomp.denylist", p)
        }
        7 => {
            let action = g.pick_str(&[
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_TRAP",
            ]);
            (
                "seccomp.kill-actions",
                with_arches(allow_default(vec![deny(&["sync"], &action, None)])),
            )
        }
        8 => {
            let (op, v, v2) = *g.rng.pick(&[
                ("SCMP_CMP_EQ", 0o777u64, 0u64),
                ("SCMP_CMP_NE", 0o644, 0),
                ("SCMP_CMP_MASKED_EQ", 0o4000, 0o4000),
                ("SCMP_CMP_GT", 0o700, 0),
                ("SCMP_CMP_GE", 0o777, 0),
                ("SCMP_CMP_LT", 0o100, 0),
                ("SCMP_CMP_LE", 0o600, 0),
            ]);
            let arg = |i: u32| {
                let mut a = json!({"index": i, "value": v, "op": op});
                if op == "SCMP_CMP_MASKED_EQ" {
                    a["value"] = json!(v2);
                    a["valueTwo"] = json!(v);
                }
                a
            };
            let rules = vec![
                json!({"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [arg(1)]}),
                json!({"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [arg(2)]}),
            ];
            ("seccomp.arg-conditions", with_arches(allow_default(rules)))
        }
        9 => {
            let rules = vec![
                json!({"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                       "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_GE"},
                                {"index": 1, "value": 0o777, "op": "SCMP_CMP_LE"}]}),
                json!({"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                       "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_GE"},
                                {"index": 2, "value": 0o777, "op": "SCMP_CMP_LE"}]}),
            ];
            (
                "seccomp.two-conditions-same-arg",
                with_arches(allow_default(rules)),
            )
        }
        10 => {
            let mut p = allow_default(vec![deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", None)]);
            let f = match g.rng.below(4) {
                0 => json!(["SECCOMP_FILTER_FLAG_LOG"]),
                1 => json!(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
                2 => json!(["SECCOMP_FILTER_FLAG_TSYNC"]),
                _ => json!([]),
            };
            p["flags"] = f;
            ("seccomp.flags", p)
        }
        11 => {
            if g.rng.chance(50) {
                (
                    "seccomp.empty-allow",
                    with_arches(json!({"defaultAction": "SCMP_ACT_ALLOW"})),
                )
            } else {
                (
                    "seccomp.unknown-syscall-name",
                    with_arches(allow_default(vec![deny(
                        &["bogus_syscall", "mkdir", "mkdirat"],
                        "SCMP_ACT_ERRNO",
                        None,
                    )])),
                )
            }
        }
        _ => {
            let mut p = allow_default(vec![deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", None)]);
            p["architectures"] = json!(["SCMP_ARCH_AARCH64"]);
            ("seccomp.foreign-arch-only", p)
        }
    };
    g.add(tag, vec![set("/linux/seccomp", p)]);
    if g.rng.chance(40) {
        g.add(
            "nnp.false",
            vec![set("/process/noNewPrivileges", json!(false))],
        );
    }
}

fn f_personality(g: &mut Gen) {
    if g.invalid(15) {
        g.add(
            "personality.unknown-domain",
            vec![set("/linux/personality", json!({"domain": "BOGUS"}))],
        );
        return;
    }
    match g.rng.below(3) {
        0 => g.add(
            "personality.linux32",
            vec![set("/linux/personality", json!({"domain": "LINUX32"}))],
        ),
        1 => g.add(
            "personality.linux",
            vec![set(
                "/linux/personality",
                json!({"domain": "LINUX", "flags": []}),
            )],
        ),
        _ => g.add(
            "personality.linux32",
            vec![set(
                "/linux/personality",
                json!({"domain": "LINUX32", "flags": []}),
            )],
        ),
    }
}

fn f_propagation(g: &mut Gen) {
    if g.invalid(15) {
        g.add(
            "rootfs-propagation.invalid",
            vec![set("/linux/rootfsPropagation", json!("bogus"))],
        );
        return;
    }
    let p = g.pick_str(&[
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    ]);
    g.add(
        "rootfs-propagation",
        vec![set("/linux/rootfsPropagation", json!(p))],
    );
}

fn f_cgroups_path(g: &mut Gen) {
    if g.rng.chance(50) {
        g.add(
            "cgroups-path.nested",
            vec![set("/linux/cgroupsPath", json!("/berth-diff-@ID@/a/b"))],
        );
    } else {
        g.add(
            "cgroups-path.relative",
            vec![set("/linux/cgroupsPath", json!("berth-diff-rel-@ID@"))],
        );
    }
}

fn f_misc(g: &mut Gen) {
    let (tag, ops) = match g.rng.below(8) {
        0 => {
            let v = g.pick_str(&["1.0.0", "1.1.0", "1.2.0", "1.0.2-dev"]);
            ("oci-version.other", vec![set("/ociVersion", json!(v))])
        }
        1 => (
            "oci-version.not-semver",
            vec![set("/ociVersion", json!("bogus"))],
        ),
        2 => (
            "annotations",
            vec![set(
                "/annotations",
                json!({"org.example.key": "value", "empty": "", "com.example/ünï": "x=y"}),
            )],
        ),
        3 => (
            "console-size-without-terminal",
            vec![set(
                "/process/consoleSize",
                json!({"height": 24, "width": 80}),
            )],
        ),
        4 => (
            "hooks.empty",
            vec![set(
                "/hooks",
                json!({"prestart": [], "poststart": [], "poststop": []}),
            )],
        ),
        5 => (
            "lsm.apparmor",
            vec![set("/process/apparmorProfile", json!("unconfined"))],
        ),
        6 if g.invalid(50) => (
            // (no SELinux on this host: refused)
            "lsm.selinux",
            vec![set(
                "/process/selinuxLabel",
                json!("system_u:system_r:container_t:s0:c1,c2"),
            )],
        ),
        _ => (
            "unknown-field",
            vec![set("/linux/bogusField", json!({"x": 1}))],
        ),
    };
    g.add(tag, ops);
}

fn f_exec(g: &mut Gen) {
    if g.rng.chance(40) {
        g.add(
            "via.exec-process-file",
            vec![Op::Exec(ExecMode::ProcessFile)],
        );
        return;
    }
    g.add("via.exec", vec![Op::Exec(ExecMode::Cli)]);
    for _ in 0..g.rng.range(0, 3) {
        let flags: (&str, &[&str]) = match g.rng.below(10) {
            0 => ("exec.env", &["-e", "EXEC_VAR=x y"]),
            1 => ("exec.env-duplicate", &["-e", "DUP=one", "-e", "DUP=two"]),
            2 => (
                "exec.env-override",
                &["-e", "TERM=dumb", "-e", "PATH=/bin:/usr/bin"],
            ),
            3 => ("exec.cwd", &["--cwd", "/tmp"]),
            4 => ("exec.user", &["-u", "1000:1000"]),
            5 => ("exec.user", &["-u", "1001:100"]),
            6 => ("exec.user-name", &["-u", "user1"]),
            7 => ("exec.additional-gids", &["-g", "100", "-g", "2000"]),
            8 => ("exec.cap", &["--cap", "CAP_SYS_ADMIN"]),
            _ => ("exec.no-new-privs", &["--no-new-privs"]),
        };
        let (tag, f) = flags;
        g.add(
            tag,
            vec![Op::ExecFlags(f.iter().map(|x| x.to_string()).collect())],
        );
    }
}

fn f_exit(g: &mut Gen) {
    let code = *g.rng.pick(&[1, 3, 42, 255]);
    g.add("exit-code", vec![Op::Env(format!("PROBE_EXIT={code}"))]);
}

// ---------------------------------------------------------------------------
// Probe
// ---------------------------------------------------------------------------

/// Single-quote a string for sh.
fn sq(x: &str) -> String {
    format!("'{}'", x.replace('\'', "'\\''"))
}

fn abs(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

fn strings_at(cfg: &Value, ptr: &str) -> Vec<String> {
    cfg.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Cgroup files printed when they exist under the container's /sys/fs/cgroup.
const CGROUP_FILES: [&str; 24] = [
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "memory/memory.oom_control",
    "memory/memory.kmem.limit_in_bytes",
    "memory/memory.kmem.tcp.limit_in_bytes",
    "pids/pids.max",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpu/cpu.rt_runtime_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "devices/devices.list",
    "blkio/blkio.throttle.read_bps_device",
    "freezer/freezer.state",
    "net_cls/net_cls.classid",
    "memory.max",
    "pids.max",
    "cpu.max",
    "cpu.weight",
    "cgroup.controllers",
    "cgroup.type",
];

/// The probe script for a config: general facts plus the paths, sysctls,
/// devices and mount points the config names. It never uses /dev/null (a
/// config may deny it) and keeps going when a command fails.
pub fn probe_script(cfg: &Value) -> String {
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for p in strings_at(cfg, "/linux/maskedPaths")
        .into_iter()
        .chain(strings_at(cfg, "/linux/readonlyPaths"))
    {
        paths.insert(abs(&p));
    }
    let sysctls: Vec<String> = cfg
        .pointer("/linux/sysctl")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut devices = Vec::new();
    let mut devio = vec![
        s("/dev/null"),
        s("/dev/zero"),
        s("/dev/full"),
        s("/dev/random"),
        s("/dev/urandom"),
        s("/dev/tty"),
    ];
    if let Some(a) = cfg.pointer("/linux/devices").and_then(Value::as_array) {
        for d in a {
            if let Some(p) = d["path"].as_str() {
                devices.push(abs(p));
                let safe = d["type"] == "c"
                    && d["major"] == 1
                    && [3, 5, 7, 8, 9].iter().any(|m| d["minor"] == *m);
                if safe {
                    devio.push(abs(p));
                }
            }
        }
    }
    let mut dirs = BTreeSet::new();
    if let Some(a) = cfg.pointer("/mounts").and_then(Value::as_array) {
        for m in a {
            let ty = m["type"].as_str().unwrap_or("");
            let is_bind = m["options"]
                .as_array()
                .map(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
                .unwrap_or(false);
            if let Some(d) = m["destination"].as_str() {
                let d = abs(d);
                if (ty == "tmpfs" || ty == "bind" || ty == "none" || is_bind)
                    && d != "/dev"
                    && !d.starts_with("/proc")
                {
                    dirs.insert(d);
                }
            }
        }
    }
    let words =
        |xs: &mut dyn Iterator<Item = &String>| xs.map(|x| sq(x)).collect::<Vec<_>>().join(" ");
    let mut sc = String::new();
    sc.push_str(
        r#"exec 2>&1
echo '@@ begin'
echo '@@ args'
echo "0=$0"
for a in "$@"; do echo "[$a]"; done
echo '@@ id'
id
echo '@@ status'
grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|NSpid|Umask):' /proc/self/status
echo '@@ umask'
umask
echo '@@ cwd'
pwd -P
echo '@@ env'
if [ -r /proc/$$/environ ]; then tr '\0' '\n' < /proc/$$/environ; else env; fi
echo '@@ uts'
if [ "$(uname -s)" = Linux ]; then
  echo "hostname=$(uname -n)"
  echo "machine=$(uname -m)"
else
  echo "uname=failed"
fi
echo "domainname=$(cat /proc/sys/kernel/domainname)"
echo "personality=$(cat /proc/self/personality)"
echo '@@ limits'
cat /proc/self/limits
echo '@@ oom'
cat /proc/self/oom_score_adj
echo '@@ fds'
for f in /proc/$$/fd/*; do echo "${f##*/} $(readlink "$f")"; done
echo '@@ ns'
for n in cgroup ipc mnt net pid pid_for_children time user uts; do echo "$n $(readlink /proc/$$/ns/$n)"; done
echo '@@ idmap'
for m in uid_map gid_map setgroups; do echo "$m $(cat /proc/self/$m | tr -s ' \n' '  ')"; done
echo '@@ lo'
echo "flags $(cat /sys/class/net/lo/flags)"
echo "link $(ip link show lo | head -n 1)"
echo '@@ cgroup'
cat /proc/self/cgroup
echo '@@ cgfiles'
echo "hierarchies $(ls /sys/fs/cgroup | tr '\n' ' ')"
"#,
    );
    let _ = writeln!(
        sc,
        "for f in {}; do if [ -e /sys/fs/cgroup/$f ]; then echo \"$f $(tr '\\n' ';' < /sys/fs/cgroup/$f)\"; fi; done",
        CGROUP_FILES.join(" ")
    );
    let _ = writeln!(
        sc,
        "echo '@@ dev'\nfor f in /dev/* /dev/pts/* /dev/net/* /dev/mqueue/* {}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then stat -c '%n|%F|%t:%T|%a|%u:%g|%N' \"$f\"; fi; done",
        words(&mut devices.iter())
    );
    let _ = writeln!(
        sc,
        "echo '@@ devio'\nfor d in {}; do r=fail; x=$(head -c 1 \"$d\" 2>&1) && r=ok; w=fail; x=$( (true >\"$d\") 2>&1 ) && w=ok; echo \"$d r=$r w=$w\"; done",
        words(&mut devio.iter())
    );
    if !paths.is_empty() {
        let _ = writeln!(
            sc,
            r#"echo '@@ paths'
for p in {}; do
  if [ -L "$p" ]; then k=link; elif [ -d "$p" ]; then k=dir; elif [ -e "$p" ]; then k=file; else k=missing; fi
  if [ -d "$p" ]; then c=$(ls -A "$p" 2>&1 | wc -l); elif [ -e "$p" ]; then c=$(head -c 64 "$p" 2>&1 | wc -c); else c=-; fi
  w=no; [ -w "$p" ] && w=yes
  echo "$p $k $c $w"
done"#,
            words(&mut paths.iter())
        );
    }
    if !sysctls.is_empty() {
        sc.push_str("echo '@@ sysctl'\n");
        for k in &sysctls {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            let _ = writeln!(
                sc,
                "echo {} \"$(cat {} 2>&1 | tr -s ' \\t\\n' '   ')\"",
                sq(k),
                sq(&path)
            );
        }
    }
    if !dirs.is_empty() {
        let _ = writeln!(
            sc,
            "echo '@@ dirs'\nfor d in {}; do echo \"$d $(ls -A \"$d\" 2>&1 | sort | tr '\\n' ' ')\"; done",
            words(&mut dirs.iter())
        );
    }
    sc.push_str(
        r#"echo '@@ canary'
c() { n=$1; shift; o=$("$@" 2>&1); r=$?; echo "$n $r $o"; }
c mkdir mkdir /tmp/.canary-d
c rmdir rmdir /tmp/.canary-d
c create touch /tmp/.canary-f
c chmod777 chmod 777 /tmp/.canary-f
c chmod644 chmod 644 /tmp/.canary-f
c chmodsuid chmod 4755 /tmp/.canary-f
c symlink ln -s x /tmp/.canary-l
c rm rm -f /tmp/.canary-f /tmp/.canary-l
c sync sh -c sync
c rootfs touch /.probe/.canary
c rootfs-rm rm -f /.probe/.canary
echo '@@ mountinfo'
cat /proc/self/mountinfo
echo '@@ end'
exit ${PROBE_EXIT:-0}
"#,
    );
    sc
}

// ---------------------------------------------------------------------------
// Running one side
// ---------------------------------------------------------------------------

/// A runtime binary in a role ("berth" = under test, "runc" = oracle).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub role: String,
    pub path: PathBuf,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The probe started (or `run` exited 0).
    Ran,
    /// `run` failed before the probe started.
    Refused,
    /// `run` did not end within [`RUN_TIMEOUT`].
    Timeout,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Ran => "ran",
            Kind::Refused => "refused",
            Kind::Timeout => "timeout",
        }
    }
}

/// Normalised facts: section -> item -> value.
pub type Facts = BTreeMap<String, BTreeMap<String, String>>;

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub kind: Kind,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub facts: Facts,
    /// The config as written (placeholders replaced), for reports.
    pub config: Value,
}

fn substitute(v: &mut Value, subs: &[(&str, &str)]) {
    match v {
        Value::String(st) => {
            for (from, to) in subs {
                if st.contains(from) {
                    *st = st.replace(from, to);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, subs)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, subs)),
        _ => {}
    }
}

/// Is there a private namespace of this type (new, or the helper's)?
fn private_ns(cfg: &Value, ty: &str, helper: &str) -> bool {
    cfg.pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter().any(|n| {
                n["type"] == ty
                    && match n["path"].as_str() {
                        None | Some("") => true,
                        Some(p) => !helper.is_empty() && p.starts_with(&format!("/proc/{helper}/")),
                    }
            })
        })
        .unwrap_or(false)
}

fn sysctl_ns(key: &str) -> Option<&'static str> {
    if key.starts_with("net.") || key.starts_with("net/") {
        Some("network")
    } else if key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("fs.mqueue.")
    {
        Some("ipc")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some("uts")
    } else {
        None
    }
}

/// Whatever a runtime does with this config, it must not change the host:
/// sysctls and host/domain names that would reach the host's namespaces get
/// the host's current values (harmless even if a runtime wrote them).
pub fn make_safe(cfg: &mut Value, host: &Host, helper: &str) {
    let keys: Vec<String> = cfg
        .pointer("/linux/sysctl")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for k in keys {
        let private = sysctl_ns(&k)
            .map(|t| private_ns(cfg, t, helper))
            .unwrap_or(false);
        if !private {
            if let Some(v) = host.sysctl(&k) {
                if let Some(o) = cfg
                    .pointer_mut("/linux/sysctl")
                    .and_then(Value::as_object_mut)
                {
                    o.insert(k, json!(v));
                }
            }
        }
    }
    if !private_ns(cfg, "uts", helper) {
        if cfg.get("hostname").is_some() {
            let h = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            cfg["hostname"] = json!(h.trim());
        }
        if cfg.get("domainname").is_some() {
            let d = fs::read_to_string("/proc/sys/kernel/domainname").unwrap_or_default();
            cfg["domainname"] = json!(d.trim());
        }
    }
}

/// Cgroup paths (relative to the hierarchy roots) a cgroupsPath may end up at:
/// itself when absolute; under this process's cgroup of each hierarchy when relative.
pub fn cgroup_candidates(path: &str, host: &Host) -> Vec<String> {
    if path.starts_with('/') {
        return vec![path.to_string()];
    }
    let mut out: BTreeSet<String> = BTreeSet::new();
    out.insert(format!("/{path}"));
    for (_, own) in &host.cgroups {
        out.insert(format!("{}/{path}", own.trim_end_matches('/')));
    }
    out.into_iter().collect()
}

fn prep(root: &Path, bundle: &Path, op: &Op) -> Result<()> {
    let under = |base: &Path, p: &str| base.join(p.trim_start_matches('/'));
    match op {
        Op::RootfsDir(p, m) | Op::BundleDir(p, m) => {
            let base = if matches!(op, Op::RootfsDir(..)) {
                root
            } else {
                bundle
            };
            let d = under(base, p);
            fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(*m))?;
        }
        Op::RootfsFile(p, c, m) | Op::BundleFile(p, c, m) => {
            let base = if matches!(op, Op::RootfsFile(..)) {
                root
            } else {
                bundle
            };
            let f = under(base, p);
            if let Some(parent) = f.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&f, c).with_context(|| format!("write {}", f.display()))?;
            fs::set_permissions(&f, fs::Permissions::from_mode(*m))?;
        }
        Op::RootfsSymlink(target, link) => {
            let l = under(root, link);
            if let Some(parent) = l.parent() {
                fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(target, &l)
                .with_context(|| format!("symlink {}", l.display()))?;
        }
        Op::RootfsChown(id) => chown_tree(root, *id)?,
        _ => {}
    }
    Ok(())
}

/// lchown a tree, leaving files with several links alone (busybox is a hard
/// link of the shared template).
fn chown_tree(p: &Path, id: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        for e in fs::read_dir(p)? {
            chown_tree(&e?.path(), id)?;
        }
    } else if meta.nlink() > 1 {
        return Ok(());
    }
    std::os::unix::fs::lchown(p, Some(id), Some(id))
        .with_context(|| format!("lchown {}", p.display()))
}

/// Run a command with stdin /dev/null and stdout/stderr into files of `dir`;
/// `None` as the code when it did not end in time (it is killed then).
fn run_capture(
    mut cmd: Command,
    dir: &Path,
    tag: &str,
    timeout: Duration,
) -> Result<(Option<i32>, String, String)> {
    let out_p = dir.join(format!(".stdout-{tag}"));
    let err_p = dir.join(format!(".stderr-{tag}"));
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_p)?)
        .stderr(fs::File::create(&err_p)?);
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().context("spawn the runtime")?;
    let code = wait_child(&mut child, timeout);
    if code.is_none() {
        // the wrapper and the runtime it started: the group we made
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
    }
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Ok((code, read(&out_p), read(&err_p)))
}

/// Exec mode: `run -d` the container with a sleeping init (the config's
/// process otherwise), exec the generated process, then delete the container.
/// A failing `run -d` or `exec` is a refusal.
fn run_exec(
    b: &mut Bundle,
    id: &str,
    cfg: &Value,
    mode: ExecMode,
    flags: &[String],
) -> Result<(Option<i32>, String, String)> {
    let bundle = b.path().to_string_lossy().into_owned();
    let mut process = cfg.get("process").cloned().unwrap_or(Value::Null);
    let args = process.get("args").cloned().unwrap_or(Value::Null);
    set_ptr(&mut b.config, "/process/args", json!(["/bin/sleep", "600"]));
    b.write_config(id);
    let cmd = b.rt_cmd(&["run", "-d", "--bundle", &bundle, id]);
    let (code, out, err) = run_capture(cmd, b.path(), "run", RUN_TIMEOUT)?;
    if code != Some(0) {
        return Ok((code.or(Some(1)), out, err));
    }
    let mut argv: Vec<String> = vec![s("exec")];
    match mode {
        ExecMode::ProcessFile => {
            if let Some(env) = process.get_mut("env").and_then(Value::as_array_mut) {
                env.push(json!(format!("CONFORMANCE_ID={id}")));
            }
            let pf = b.path().join("process.json");
            fs::write(&pf, serde_json::to_vec_pretty(&process)?)?;
            argv.push(s("--process"));
            argv.push(pf.to_string_lossy().into_owned());
            argv.push(id.to_string());
        }
        ExecMode::Cli => {
            argv.extend(flags.iter().cloned());
            // (runc takes everything after the id verbatim, without `--`)
            argv.push(id.to_string());
            argv.extend(
                args.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| x.as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_else(Vec::new),
            );
        }
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let cmd = b.rt_cmd(&argv);
    let (code, out2, err2) = run_capture(cmd, b.path(), "exec", RUN_TIMEOUT)?;
    let del = b.rt_cmd(&["delete", "--force", id]);
    let _ = run_capture(del, b.path(), "delete", RUN_TIMEOUT)?;
    Ok((code, out2, format!("{err}{err2}")))
}

/// Run a built config with one runtime in a fresh bundle and collect its facts.
pub fn run_built(built: &Built, rt: &Runtime, host: &Host) -> Result<RunResult> {
    // Declared before the bundle: dropped after it (the container goes first).
    let helper = if built.helper {
        Some(crate::Unshared::start(
            &["-n", "-i", "-u", "-m"],
            &["net", "ipc", "uts", "mnt"],
        ))
    } else {
        None
    };
    let helper_pid = helper
        .as_ref()
        .map(|h| h.pid().to_string())
        .unwrap_or_default();
    let mut b = Bundle::new("diff");
    let id = b.new_id();
    let bundle = b.path().to_string_lossy().into_owned();
    let mut cfg = built.config.clone();
    substitute(
        &mut cfg,
        &[
            ("@BUNDLE@", &bundle),
            ("@ID@", &id),
            ("@HELPER@", &helper_pid),
        ],
    );
    make_safe(&mut cfg, host, &helper_pid);
    let cg_path = cfg
        .pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| Bundle::cgroup_path_for(&id));
    let candidates = cgroup_candidates(&cg_path, host);
    for c in &candidates {
        b.cleanup_cgroup(c);
    }
    b.cleanup_cgroup(&format!("/berth-diff-{id}"));
    let rootfs = b.rootfs();
    for op in &built.preps {
        prep(&rootfs, b.path(), op)?;
    }
    let pdir = rootfs.join(".probe");
    fs::create_dir_all(&pdir)?;
    fs::set_permissions(&pdir, fs::Permissions::from_mode(0o755))?;
    let script = pdir.join("probe.sh");
    fs::write(&script, probe_script(&cfg))?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    b.config = cfg.clone();
    // The runtime runs in a private mount namespace of its own, recording it
    // first; the harness's runtime argument is replaced by ours.
    // After the runtime ends, the mounts it left in its namespace under the
    // bundle (configs without a mount namespace of their own) are listed.
    let wrapper = format!(
        "readlink /proc/self/ns/mnt > {mntns} 2>&1; shift; \"$0\" \"$@\"; rc=$?; \
         grep -F {root} /proc/self/mountinfo | cut -d' ' -f5 > {mounts} 2>&1; exit $rc",
        mntns = sq(&format!("{bundle}/.rt-mntns")),
        root = sq(&format!("{bundle}/rootfs")),
        mounts = sq(&format!("{bundle}/.rt-mounts")),
    );
    b.runtime_prefix = vec![
        s("unshare"),
        s("-m"),
        s("--propagation"),
        s("private"),
        s("/bin/sh"),
        s("-c"),
        wrapper,
        rt.path.to_string_lossy().into_owned(),
    ];
    let (code, stdout, stderr) = match built.exec {
        None => {
            b.write_config(&id);
            let cmd = b.rt_cmd(&["run", "--bundle", &bundle, &id]);
            run_capture(cmd, b.path(), "run", RUN_TIMEOUT)?
        }
        Some(mode) => run_exec(&mut b, &id, &cfg, mode, &built.exec_flags)?,
    };
    let kind = match code {
        None => Kind::Timeout,
        Some(_) if stdout.lines().any(|l| l == "@@ begin") => Kind::Ran,
        Some(0) => Kind::Ran,
        Some(_) => Kind::Refused,
    };
    let rt_mntns = fs::read_to_string(b.path().join(".rt-mntns"))
        .map(|x| x.trim().to_string())
        .unwrap_or_default();
    let mut ns_names = host.ns.clone();
    if !rt_mntns.is_empty() {
        ns_names.insert(rt_mntns, s("runtime"));
    }
    if let Some(h) = &helper {
        for n in NS_FILES {
            if let Ok(l) = fs::read_link(h.ns_path(n)) {
                ns_names
                    .entry(l.to_string_lossy().into_owned())
                    .or_insert_with(|| s("helper"));
            }
        }
    }
    let norm = Normaliser {
        masked: strings_at(&cfg, "/linux/maskedPaths")
            .iter()
            .map(|p| abs(p))
            .collect(),
        cgroup: cg_path.trim_end_matches('/').to_string(),
        bundle: bundle.clone(),
        id: id.clone(),
        own_cgroups: host
            .cgroups
            .iter()
            .map(|(_, p)| p.clone())
            .filter(|p| p.len() > 1)
            .collect(),
        ns: ns_names,
    };
    let mut facts = if kind == Kind::Ran {
        parse_probe(&stdout, &norm)
    } else {
        Facts::new()
    };
    if let (Kind::Ran, Some(c)) = (kind, code) {
        facts
            .entry(s("exit"))
            .or_default()
            .insert(s("code"), c.to_string());
    }
    let mut left = leftovers(&b, &id, &candidates, &cg_path);
    let mounts = fs::read_to_string(b.path().join(".rt-mounts")).unwrap_or_default();
    let mounts: Vec<String> = mounts.lines().map(|l| norm.text(l)).collect();
    if !mounts.is_empty() {
        left.insert(s("mounts"), mounts.join(" "));
    }
    if !left.is_empty() {
        facts.insert(s("leftover"), left);
    }
    Ok(RunResult {
        kind,
        code,
        stdout,
        stderr,
        facts,
        config: cfg,
    })
}

/// What a finished `run` left behind (polled briefly: exiting processes and
/// cgroups that are being removed are not leftovers).
fn leftovers(
    b: &Bundle,
    id: &str,
    candidates: &[String],
    cg_path: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_millis(600);
    loop {
        out.clear();
        let state: Vec<String> = fs::read_dir(b.state_root())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().replace(id, "<id>"))
                    .collect()
            })
            .unwrap_or_default();
        if !state.is_empty() {
            out.insert(s("state"), state.join(" "));
        }
        let dirs: Vec<String> = candidates
            .iter()
            .flat_map(|c| cgroup_dirs_existing(c))
            .map(|d| d.to_string_lossy().replace(id, "<id>"))
            .collect();
        if !dirs.is_empty() {
            out.insert(s("cgroup"), dirs.join(" "));
        }
        let procs = processes_of(id, cg_path);
        if !procs.is_empty() {
            out.insert(s("processes"), procs.len().to_string());
        }
        if out.is_empty() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// Normalising the probe output
// ---------------------------------------------------------------------------

struct Normaliser {
    /// Absolute maskedPaths: how a runtime makes them empty (tmpfs size=0,
    /// /dev/null of a tmpfs or devtmpfs) differs by nature.
    masked: BTreeSet<String>,
    /// The configured cgroupsPath (as run).
    cgroup: String,
    bundle: String,
    id: String,
    own_cgroups: Vec<String>,
    ns: BTreeMap<String, String>,
}

impl Normaliser {
    fn text(&self, x: &str) -> String {
        let mut t = x.to_string();
        if self.cgroup.len() > 1 {
            t = t.replace(&self.cgroup, "<cgroup>");
        }
        let mut t = t
            .replace(&self.bundle, "<bundle>")
            .replace(&self.id, "<id>");
        for own in &self.own_cgroups {
            t = t.replace(own.as_str(), "<own-cgroup>");
        }
        t
    }

    fn ns(&self, link: &str) -> String {
        if link.is_empty() {
            return s("-");
        }
        self.ns.get(link).cloned().unwrap_or_else(|| s("new"))
    }
}

fn squash(x: &str) -> String {
    x.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Per-mount options compared (others are implied or differ by nature).
const MOUNT_FLAGS: [&str; 8] = [
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "noexec",
    "noatime",
    "relatime",
    "nodiratime",
];
/// Filesystems whose superblock options come from the config.
const SUPER_FS: [&str; 7] = [
    "tmpfs", "devpts", "mqueue", "proc", "sysfs", "cgroup", "cgroup2",
];

fn unescape_mount(x: &str) -> String {
    x.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn parse_mountinfo(lines: &[&str], n: &Normaliser, out: &mut BTreeMap<String, String>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        let Some((pre, post)) = l.split_once(" - ") else {
            out.insert(format!("#{i}"), n.text(l));
            continue;
        };
        let f: Vec<&str> = pre.split_whitespace().collect();
        let p: Vec<&str> = post.split_whitespace().collect();
        if f.len() < 6 || p.is_empty() {
            out.insert(format!("#{i}"), n.text(l));
            continue;
        }
        let point = n.text(&unescape_mount(f[4]));
        // A masked file is a bind of a /dev/null: writes go nowhere either
        // way, and whether that bind is read-only only follows where the
        // runtime took its /dev/null from.
        let file_mask = n.masked.contains(&point) && f[3].ends_with("/null");
        let opts: Vec<&str> = f[5]
            .split(',')
            .filter(|o| MOUNT_FLAGS.contains(o))
            .filter(|o| !(file_mask && (*o == "ro" || *o == "rw")))
            .collect();
        let mut prop: Vec<&str> = f[6..]
            .iter()
            .map(|o| o.split(':').next().unwrap_or(o))
            .collect();
        prop.sort_unstable();
        let prop = if prop.is_empty() {
            s("private")
        } else {
            prop.join(",")
        };
        let fstype = p[0];
        let source = p.get(1).copied().unwrap_or("");
        // The superblock's own ro/rw flag only matters for other mounts of
        // it; the per-mount flags above decide access.
        let masked = n.masked.contains(&point);
        let sup = if SUPER_FS.contains(&fstype) && !masked {
            p.get(2)
                .copied()
                .unwrap_or("")
                .split(',')
                .filter(|o| *o != "ro" && *o != "rw")
                .collect::<Vec<_>>()
                .join(",")
        } else {
            s("-")
        };
        let (fstype, source, root) = if masked {
            ("<masked>", "", "")
        } else if fstype.starts_with("cgroup") {
            // the device name of a cgroup mount is cosmetic
            (fstype, "", f[3])
        } else {
            (fstype, source, f[3])
        };
        let k = seen.entry(point.clone()).or_insert(0);
        let item = format!("{point} #{k}");
        *k += 1;
        out.insert(
            item,
            format!(
                "{fstype} src={} root={} opts={} prop={prop} super={}",
                n.text(source),
                n.text(&unescape_mount(root)),
                opts.join(","),
                n.text(&sup)
            ),
        );
    }
}

/// Text a failed syscall left in a buffer (busybox prints it anyway).
fn unprintable(v: &str) -> bool {
    v.chars()
        .any(|c| c == '\u{fffd}' || (c.is_control() && c != '\t'))
}

fn parse_probe(stdout: &str, n: &Normaliser) -> Facts {
    let mut facts = parse_sections(stdout, n);
    for items in facts.values_mut() {
        for v in items.values_mut() {
            if unprintable(v) {
                *v = s("<unprintable>");
            }
        }
    }
    if let Some(h) = facts
        .get_mut("cgfiles")
        .and_then(|c| c.get_mut("hierarchies"))
    {
        // a cgroup2 root lists the host's cgroups, among them other runs' containers
        *h = h
            .split(' ')
            .filter(|e| !e.is_empty() && !e.contains("berth-") && !e.contains("<id>"))
            .collect::<Vec<_>>()
            .join(" ");
    }
    facts
}

fn parse_sections(stdout: &str, n: &Normaliser) -> Facts {
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for l in stdout.lines() {
        if let Some(name) = l.strip_prefix("@@ ") {
            sections.push((name.to_string(), Vec::new()));
        } else if let Some((_, v)) = sections.last_mut() {
            v.push(l);
        } else {
            sections.push((s("preamble"), vec![l]));
        }
    }
    let mut facts = Facts::new();
    let complete = sections.iter().any(|(name, _)| name == "end");
    facts
        .entry(s("probe"))
        .or_default()
        .insert(s("complete"), complete.to_string());
    for (name, lines) in sections {
        let out = facts.entry(name.clone()).or_default();
        let kv = |l: &str, sep: char| -> Option<(String, String)> {
            l.split_once(sep)
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        };
        match name.as_str() {
            "begin" | "end" => {}
            "mountinfo" => parse_mountinfo(&lines, n, out),
            "status" => {
                for l in &lines {
                    if let Some((k, v)) = kv(l, ':') {
                        let v = match k.as_str() {
                            "NSpid" => v
                                .split_whitespace()
                                .map(|p| if p == "1" { "1" } else { "N" })
                                .collect::<Vec<_>>()
                                .join(" "),
                            "Groups" => {
                                let mut g: Vec<u64> = v
                                    .split_whitespace()
                                    .filter_map(|x| x.parse().ok())
                                    .collect();
                                g.sort_unstable();
                                g.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
                            }
                            _ => squash(&v),
                        };
                        out.insert(k, v);
                    }
                }
            }
            "env" => {
                // What the runtime passed to execve: a name given twice keeps
                // both values, in order.
                for (i, l) in lines.iter().enumerate() {
                    match kv(l, '=') {
                        Some((k, v)) => {
                            let v = n.text(&v);
                            out.entry(k)
                                .and_modify(|e| {
                                    e.push_str(" | ");
                                    e.push_str(&v);
                                })
                                .or_insert(v);
                        }
                        None => {
                            out.insert(format!("#{i}"), n.text(l));
                        }
                    }
                }
            }
            "uts" => {
                for l in &lines {
                    if let Some((k, v)) = kv(l, '=') {
                        out.insert(k, v);
                    }
                }
            }
            "limits" => {
                for l in &lines {
                    if let Some((name, soft, hard)) = limits_row(l) {
                        out.insert(name.to_string(), format!("{soft} {hard}"));
                    }
                }
            }
            "fds" => {
                for l in &lines {
                    let (fd, target) = l.split_once(' ').unwrap_or((l, ""));
                    // runc's attached `run` relays stdio through pipes, berth
                    // passes its own through: a CLI detail, not the config's.
                    if ["0", "1", "2"].contains(&fd) {
                        out.insert(fd.to_string(), s("stdio"));
                        continue;
                    }
                    let t = if let Some(k) =
                        ["pipe:", "socket:"].iter().find(|k| target.starts_with(*k))
                    {
                        k.trim_end_matches(':').to_string()
                    } else {
                        n.text(target)
                    };
                    out.insert(fd.to_string(), t);
                }
            }
            "ns" => {
                for l in &lines {
                    let (ty, link) = l.split_once(' ').unwrap_or((l, ""));
                    out.insert(ty.to_string(), n.ns(link.trim()));
                }
            }
            "cgroup" => {
                for l in &lines {
                    let mut it = l.splitn(3, ':');
                    let (num, ctrls, path) = (it.next(), it.next(), it.next());
                    match (num, ctrls, path) {
                        (Some(num), Some(c), Some(p)) => {
                            out.insert(format!("{num}:{c}"), n.text(p));
                        }
                        _ => {
                            out.insert(n.text(l), String::new());
                        }
                    }
                }
            }
            "dev" => {
                for l in &lines {
                    let (path, rest) = l.split_once('|').unwrap_or((l, ""));
                    out.insert(path.to_string(), n.text(rest));
                }
            }
            _ => {
                // "item value" lines (args, paths, sysctl, dirs, canary, devio,
                // idmap, lo, cgfiles, oom, cwd, umask, id, preamble)
                let single = matches!(
                    name.as_str(),
                    "id" | "umask" | "cwd" | "oom" | "args" | "preamble"
                );
                for (i, l) in lines.iter().enumerate() {
                    if single {
                        out.insert(format!("{i}"), n.text(l));
                        continue;
                    }
                    let (k, v) = l.split_once(' ').unwrap_or((l, ""));
                    let v = if name == "lo" {
                        squash(v)
                    } else if k.ends_with("devices.list") {
                        // the kernel lists rules in insertion order; the set counts
                        let mut rules: Vec<&str> = v.split(';').filter(|r| !r.is_empty()).collect();
                        rules.sort_unstable();
                        rules.join(";")
                    } else {
                        n.text(v)
                    };
                    out.insert(n.text(k), v);
                }
            }
        }
    }
    facts
}

// ---------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------

/// The differing items of one fact section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDiff {
    pub section: String,
    /// (item, berth's value, runc's value)
    pub lines: Vec<(String, String, String)>,
}

impl SectionDiff {
    /// The lines as match keys. An item only one side has is the same
    /// divergence whatever its value, so that value becomes `*`.
    fn line_keys(&self) -> BTreeSet<String> {
        self.lines
            .iter()
            .map(|(i, a, b)| {
                let (a, b) = match (a.as_str(), b.as_str()) {
                    (ABSENT, _) => (ABSENT, "*"),
                    (_, ABSENT) => ("*", ABSENT),
                    (a, b) => (a, b),
                };
                format!("{i}\u{1}{a}\u{1}{b}")
            })
            .collect()
    }
}

const ABSENT: &str = "<absent>";

/// Compare berth's run (`a`) with runc's (`b`).
pub fn compare(a: &RunResult, b: &RunResult) -> Vec<SectionDiff> {
    if a.kind != b.kind {
        let section = match (a.kind, b.kind) {
            (Kind::Refused, _) => "refused-by-berth",
            (_, Kind::Refused) => "refused-by-runc",
            (Kind::Timeout, _) => "timeout-berth",
            _ => "timeout-runc",
        };
        return vec![SectionDiff {
            section: s(section),
            lines: vec![(s("outcome"), s(a.kind.word()), s(b.kind.word()))],
        }];
    }
    let empty = BTreeMap::new();
    let sections: BTreeSet<&String> = a.facts.keys().chain(b.facts.keys()).collect();
    let mut out = Vec::new();
    for sec in sections {
        let x = a.facts.get(sec).unwrap_or(&empty);
        let y = b.facts.get(sec).unwrap_or(&empty);
        let items: BTreeSet<&String> = x.keys().chain(y.keys()).collect(); // One divergence per item class: the item with digits folded (random
                                                                           // mount points, fd numbers), so that one cause gives one class.
        let mut classes: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
        for i in items {
            let va = x.get(i).map(String::as_str).unwrap_or(ABSENT);
            let vb = y.get(i).map(String::as_str).unwrap_or(ABSENT);
            if va != vb {
                let class = if sec == "mountinfo" && without_prop(va) == without_prop(vb) {
                    s("propagation")
                } else {
                    item_class(i)
                };
                classes.entry(format!("{sec}:{class}")).or_default().push((
                    i.clone(),
                    va.to_string(),
                    vb.to_string(),
                ));
            }
        }
        for (section, lines) in classes {
            out.push(SectionDiff { section, lines });
        }
    }
    out
}

/// A normalised mountinfo value without its propagation (`prop=`) field.
fn without_prop(v: &str) -> String {
    v.split(' ')
        .filter(|w| !w.starts_with("prop="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An item name with each run of digits replaced by `N`.
pub fn item_class(item: &str) -> String {
    let mut o = String::new();
    let mut in_digits = false;
    for c in item.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                o.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            o.push(c);
        }
    }
    o
}

fn clip(x: &str, n: usize) -> String {
    if x.chars().count() <= n {
        x.to_string()
    } else {
        format!("{}…", x.chars().take(n).collect::<String>())
    }
}

/// A readable diff of one section.
pub fn render_diff(d: &SectionDiff, roles: (&str, &str)) -> String {
    let mut o = format!("  [{}]\n", d.section);
    for (i, a, b) in &d.lines {
        let _ = writeln!(
            o,
            "    {i}:\n      {:>5}: {}\n      {:>5}: {}",
            roles.0,
            clip(a, 400),
            roles.1,
            clip(b, 400)
        );
    }
    o
}

/// JSON differences from `a` to `b` (`path: old -> new`, `+ path[]: added`).
pub fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => json_diff(&p, u, v, out),
                    (Some(_), None) => out.push(format!("- {p}")),
                    (None, Some(v)) => out.push(format!("+ {p}: {}", clip(&v.to_string(), 600))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}/{i}"), u, v, out);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for u in x.iter().filter(|u| !y.contains(u)) {
                out.push(format!("- {path}[]: {}", clip(&u.to_string(), 600)));
            }
            for v in y.iter().filter(|v| !x.contains(v)) {
                out.push(format!("+ {path}[]: {}", clip(&v.to_string(), 600)));
            }
        }
        _ if a == b => {}
        _ => out.push(format!(
            "{path}: {} -> {}",
            clip(&a.to_string(), 300),
            clip(&b.to_string(), 600)
        )),
    }
}

// ---------------------------------------------------------------------------
// Campaign: cases, minimisation, known divergences, reports
// ---------------------------------------------------------------------------

/// Knobs, from the environment (see conformance/README.md).
#[derive(Debug, Clone)]
pub struct Settings {
    pub seed: u64,
    pub cases: u64,
    /// Run only this case (`DIFF_ONLY`), verbosely.
    pub only: Option<u64>,
    pub berth: Runtime,
    pub runc: Runtime,
    /// Minimise divergences (`DIFF_MINIMIZE=0` turns it off).
    pub minimize: bool,
    pub report_dir: PathBuf,
    pub known_file: PathBuf,
}

fn env_u64(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim();
            let n = if let Some(h) = v.strip_prefix("0x") {
                u64::from_str_radix(h, 16)
            } else {
                v.parse()
            };
            n.map(Some)
                .with_context(|| format!("{name}={v} is not a number"))
        }
        _ => Ok(None),
    }
}

fn resolve_binary(var: &str, default: &[PathBuf]) -> Result<PathBuf> {
    if let Ok(v) = std::env::var(var) {
        if !v.is_empty() {
            let p = if v.contains('/') {
                PathBuf::from(&v)
            } else {
                std::env::var_os("PATH")
                    .map(|p| {
                        std::env::split_paths(&p)
                            .map(|d| d.join(&v))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .find(|p| p.is_file())
                    .ok_or_else(|| anyhow!("{var}={v}: not found in PATH"))?
            };
            return fs::canonicalize(&p).with_context(|| format!("{var}={v}"));
        }
    }
    default
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| anyhow!("{var} is not set and none of {default:?} exists"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

impl Settings {
    pub fn from_env() -> Result<Settings> {
        let t = target_dir();
        let berth = resolve_binary("BERTH", &[t.join("debug/berth")])?;
        let runc = resolve_binary("RUNC", &[PathBuf::from("/usr/sbin/runc")])?;
        let minimize = std::env::var("DIFF_MINIMIZE")
            .map(|v| v != "0")
            .unwrap_or(true);
        Ok(Settings {
            seed: env_u64("DIFF_SEED")?.unwrap_or(DEFAULT_SEED),
            cases: env_u64("DIFF_CASES")?.unwrap_or(DEFAULT_CASES),
            only: env_u64("DIFF_ONLY")?,
            berth: Runtime {
                role: s("berth"),
                path: berth,
            },
            runc: Runtime {
                role: s("runc"),
                path: runc,
            },
            minimize,
            report_dir: std::env::var_os("DIFF_REPORT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| t.join("differential")),
            known_file: Path::new(env!("CARGO_MANIFEST_DIR")).join("differential-known.txt"),
        })
    }
}

/// One line of differential-known.txt: `section@tag+tag<TAB>reason`.
#[derive(Debug, Clone)]
pub struct Known {
    pub key: String,
    pub section: String,
    pub tags: BTreeSet<String>,
    pub reason: String,
}

fn split_key(key: &str) -> (String, BTreeSet<String>) {
    let (sec, tags) = key.split_once('@').unwrap_or((key, "base"));
    let tags = tags
        .split('+')
        .filter(|t| !t.is_empty() && *t != "base")
        .map(str::to_string)
        .collect();
    (sec.to_string(), tags)
}

impl Known {
    /// Does a found class match? The section and each tag may use `*`; every
    /// tag of the entry must match one of the class's tags.
    pub fn matches(&self, section: &str, tags: &[String]) -> bool {
        glob(&self.section, section) && self.tags.iter().all(|k| tags.iter().any(|t| glob(k, t)))
    }
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pat: &str, text: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

pub fn load_known(path: &Path) -> Result<Vec<Known>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim_end();
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((key, reason)) = l.split_once('\t') else {
            bail!("{}:{}: expected `key<TAB>reason`", path.display(), i + 1);
        };
        if reason.trim().is_empty() {
            bail!(
                "{}:{}: a known divergence needs a reason",
                path.display(),
                i + 1
            );
        }
        let (section, tags) = split_key(key.trim());
        out.push(Known {
            key: key.trim().to_string(),
            section,
            tags,
            reason: reason.trim().to_string(),
        });
    }
    Ok(out)
}

/// A divergence class found by the campaign.
#[derive(Debug, Clone)]
pub struct Found {
    pub key: String,
    pub section: String,
    pub tags: Vec<String>,
    /// The differing items at the minimal config.
    pub diff: SectionDiff,
    /// The minimal config relative to the base config.
    pub excerpt: Vec<String>,
    /// Bundle preparations of the minimal mutations.
    pub preps: Vec<String>,
    /// Case indices showing it.
    pub cases: Vec<u64>,
    /// stderr of both runtimes at the minimal config (refusals).
    pub stderr: (String, String),
    pub minimal_config: Value,
    pub known: Option<String>,
}

type Pair = (RunResult, RunResult, Vec<SectionDiff>);

/// A run of many cases with one pair of runtimes.
pub struct Campaign {
    pub settings: Settings,
    pub host: Host,
    pub known: Vec<Known>,
    pub found: Vec<Found>,
    /// Cases that diverged and the keys they were attributed to.
    pub divergent_cases: Vec<(u64, Vec<String>)>,
    pub runs: u64,
}

impl Campaign {
    pub fn new(settings: Settings) -> Result<Campaign> {
        let host = Host::probe()?;
        let known = load_known(&settings.known_file)?;
        Ok(Campaign {
            settings,
            host,
            known,
            found: Vec::new(),
            divergent_cases: Vec::new(),
            runs: 0,
        })
    }

    fn roles(&self) -> (&str, &str) {
        (&self.settings.berth.role, &self.settings.runc.role)
    }

    /// Run a built config with both runtimes.
    pub fn pair(&mut self, built: &Built) -> Result<Pair> {
        // Both at once (each has its own bundle, ids and cgroups).
        let (a, b) = std::thread::scope(|sc| {
            let ha = sc.spawn(|| run_built(built, &self.settings.berth, &self.host));
            let rb = run_built(built, &self.settings.runc, &self.host);
            let ra = ha
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the berth run panicked")));
            (ra, rb)
        });
        let (a, b) = (a?, b?);
        self.runs += 2;
        let d = compare(&a, &b);
        Ok((a, b, d))
    }

    /// Lines of `section` explained by divergences of the base config itself.
    fn base_lines(&self, section: &str) -> BTreeSet<String> {
        self.found
            .iter()
            .filter(|f| f.section == section && f.tags.is_empty())
            .flat_map(|f| f.diff.line_keys())
            .collect()
    }

    /// Does `diffs` still show an unexplained divergence in `section`?
    fn shows(&self, diffs: &[SectionDiff], section: &str) -> bool {
        let base = self.base_lines(section);
        diffs
            .iter()
            .filter(|d| d.section == section)
            .any(|d| d.line_keys().iter().any(|l| !base.contains(l)))
    }

    fn with_cache(
        &mut self,
        case: &Case,
        cache: &mut HashMap<Vec<bool>, Pair>,
        keep: &[bool],
    ) -> Result<Pair> {
        if let Some(p) = cache.get(keep) {
            return Ok(p.clone());
        }
        let p = self.pair(&case.build(keep))?;
        cache.insert(keep.to_vec(), p.clone());
        Ok(p)
    }

    /// Run one case; returns its one-line result.
    pub fn run_case(&mut self, index: u64, verbose: bool) -> Result<String> {
        let case = generate(self.settings.seed, index, &self.host);
        let all = vec![true; case.muts.len()];
        let mut cache = HashMap::new();
        let started = Instant::now();
        let (a, b, diffs) = self.with_cache(&case, &mut cache, &all)?;
        if verbose {
            println!("{}", describe_case(&case));
            println!(
                "config (as run by {}):\n{}",
                self.settings.berth.role,
                serde_json::to_string_pretty(&a.config).unwrap_or_default()
            );
            for r in [&a, &b] {
                println!(
                    "--- {:?} code {:?}\nstdout:\n{}\nstderr:\n{}",
                    r.kind, r.code, r.stdout, r.stderr
                );
            }
            for d in &diffs {
                print!("{}", render_diff(d, self.roles()));
            }
        }
        let head = format!(
            "case {index} [{}] {} mutations:",
            case.shape,
            case.muts.len()
        );
        if diffs.is_empty() {
            return Ok(format!(
                "{head} ok, both {} ({} ms)",
                a.kind.word(),
                started.elapsed().as_millis()
            ));
        }
        let mut keys = Vec::new();
        for d in &diffs {
            if let Some(k) = self.attribute(&case, &mut cache, d)? {
                keys.push(k);
            }
        }
        if keys.is_empty() {
            return Ok(format!(
                "{head} ok, both {} (divergence vanished when re-run: flaky) ({} ms)",
                a.kind.word(),
                started.elapsed().as_millis()
            ));
        }
        keys.sort();
        keys.dedup();
        self.divergent_cases.push((index, keys.clone()));
        let marks: Vec<String> = keys
            .iter()
            .map(|k| {
                let known = self
                    .found
                    .iter()
                    .find(|f| &f.key == k)
                    .and_then(|f| f.known.as_ref())
                    .is_some();
                if known {
                    format!("{k} (known)")
                } else {
                    k.clone()
                }
            })
            .collect();
        Ok(format!(
            "{head} DIVERGENCE {} ({} ms)",
            marks.join(", "),
            started.elapsed().as_millis()
        ))
    }

    /// Attribute a section divergence of a case to a found class (new or
    /// existing); `None` when it cannot be reproduced.
    fn attribute(
        &mut self,
        case: &Case,
        cache: &mut HashMap<Vec<bool>, Pair>,
        d: &SectionDiff,
    ) -> Result<Option<String>> {
        let n = case.muts.len();
        let all = vec![true; n];
        let sec = d.section.clone();
        // Explained by the base config's own divergence?
        let base = self.base_lines(&sec);
        if !base.is_empty() && d.line_keys().iter().all(|l| base.contains(l)) {
            let i = self
                .found
                .iter()
                .position(|f| f.section == sec && f.tags.is_empty())
                .unwrap_or(0);
            self.found[i].cases.push(case.index);
            return Ok(Some(self.found[i].key.clone()));
        }
        if !self.settings.minimize {
            let tags = case.tags(&all);
            return Ok(Some(self.record(case, &all, tags, d.clone(), cache)?));
        }
        // Explained by a class found before: does dropping its tags end it?
        let case_tags: BTreeSet<String> = case.tags(&all).into_iter().collect();
        let candidates: Vec<usize> = (0..self.found.len())
            .filter(|&i| {
                let f = &self.found[i];
                f.section == sec
                    && !f.tags.is_empty()
                    && f.tags.iter().all(|t| case_tags.contains(t))
            })
            .collect();
        for i in candidates {
            let tags = self.found[i].tags.clone();
            let keep: Vec<bool> = case.muts.iter().map(|m| !tags.contains(&m.tag)).collect();
            let (_, _, dd) = self.with_cache(case, cache, &keep)?;
            if !self.shows(&dd, &sec) {
                self.found[i].cases.push(case.index);
                return Ok(Some(self.found[i].key.clone()));
            }
        }
        // Minimise: the base config first, then drop mutations one by one.
        let (_, _, d0) = self.with_cache(case, cache, &all)?;
        if !self.shows(&d0, &sec) {
            return Ok(None);
        }
        let none = vec![false; n];
        let mut keep = all.clone();
        let (_, _, dn) = self.with_cache(case, cache, &none)?;
        if self.shows(&dn, &sec) {
            keep = none;
        } else {
            // Greedy passes until nothing more can go: dropping one mutation
            // can make an earlier one droppable.
            for _ in 0..4 {
                let mut changed = false;
                for i in 0..n {
                    if !keep[i] {
                        continue;
                    }
                    keep[i] = false;
                    let (_, _, di) = self.with_cache(case, cache, &keep)?;
                    if self.shows(&di, &sec) {
                        changed = true;
                    } else {
                        keep[i] = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        let (_, _, dm) = self.with_cache(case, cache, &keep)?;
        let md = dm
            .into_iter()
            .find(|x| x.section == sec)
            .unwrap_or_else(|| d.clone());
        let tags = case.tags(&keep);
        Ok(Some(self.record(case, &keep, tags, md, cache)?))
    }

    fn record(
        &mut self,
        case: &Case,
        keep: &[bool],
        tags: Vec<String>,
        diff: SectionDiff,
        cache: &mut HashMap<Vec<bool>, Pair>,
    ) -> Result<String> {
        let key = format!(
            "{}@{}",
            diff.section,
            if tags.is_empty() {
                s("base")
            } else {
                tags.join("+")
            }
        );
        if let Some(f) = self.found.iter_mut().find(|f| f.key == key) {
            f.cases.push(case.index);
            return Ok(key);
        }
        let (a, b, _) = self.with_cache(case, cache, keep)?;
        let built = case.build(keep);
        let mut excerpt = Vec::new();
        json_diff("", &base_config(), &built.config, &mut excerpt);
        let preps = case
            .muts
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .flat_map(|(m, _)| {
                m.ops.iter().filter(|o| {
                    o.is_prep() || matches!(o, Op::Helper | Op::Exec(_) | Op::ExecFlags(_))
                })
            })
            .map(|o| o.to_json().to_string())
            .collect();
        let known = self
            .known
            .iter()
            .find(|k| k.matches(&diff.section, &tags))
            .map(|k| format!("{}: {}", k.key, k.reason));
        let f = Found {
            key: key.clone(),
            section: diff.section.clone(),
            tags,
            diff,
            excerpt,
            preps,
            cases: vec![case.index],
            stderr: (clip(a.stderr.trim(), 1500), clip(b.stderr.trim(), 1500)),
            minimal_config: a.config.clone(),
            known,
        };
        self.write_report(&f, case, &a, &b);
        self.found.push(f);
        Ok(key)
    }

    fn write_report(&self, f: &Found, case: &Case, a: &RunResult, b: &RunResult) {
        let dir = &self.settings.report_dir;
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        let name: String = f
            .key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(150)
            .collect();
        let mut t = format!(
            "key: {}\nseed: {:#x} case: {}\nre-run: DIFF_SEED={:#x} DIFF_ONLY={} cargo test -p conformance --test differential -- --nocapture\n\n",
            f.key, case.seed, case.index, case.seed, case.index
        );
        t.push_str(&render_found(f, self.roles()));
        let _ = writeln!(t, "\n{}", describe_case(case));
        let _ = writeln!(
            t,
            "minimal config (as run by {}):\n{}",
            self.settings.berth.role,
            serde_json::to_string_pretty(&f.minimal_config).unwrap_or_default()
        );
        for (r, role) in [(a, self.roles().0), (b, self.roles().1)] {
            let _ = writeln!(
                t,
                "\n--- {role}: {:?} code {:?}\nstdout:\n{}\nstderr:\n{}",
                r.kind, r.code, r.stdout, r.stderr
            );
        }
        let _ = fs::write(dir.join(format!("{name}.txt")), t);
    }

    /// Found classes not in the known list.
    pub fn unknown(&self) -> Vec<&Found> {
        self.found.iter().filter(|f| f.known.is_none()).collect()
    }

    /// The end-of-run summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "differential: seed {:#x}, {} divergent cases, {} divergence classes ({} not known), {} runtime runs; {} vs {}",
            self.settings.seed,
            self.divergent_cases.len(),
            self.found.len(),
            self.unknown().len(),
            self.runs,
            self.settings.berth.path.display(),
            self.settings.runc.path.display()
        );
        for f in &self.found {
            let _ = writeln!(o, "\n=== {}", f.key);
            if let Some(k) = &f.known {
                let _ = writeln!(o, "known: {k}");
            }
            let mut cases = f.cases.clone();
            cases.dedup();
            let shown: Vec<String> = cases.iter().take(12).map(u64::to_string).collect();
            let _ = writeln!(
                o,
                "{} cases: {}{}; re-run: DIFF_SEED={:#x} DIFF_ONLY={}",
                cases.len(),
                shown.join(" "),
                if cases.len() > 12 { " …" } else { "" },
                self.settings.seed,
                cases[0]
            );
            o.push_str(&render_found(f, self.roles()));
        }
        o
    }
}

fn render_found(f: &Found, roles: (&str, &str)) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "minimal config (relative to the base config):");
    if f.excerpt.is_empty() {
        let _ = writeln!(o, "  (the base config itself)");
    }
    for l in &f.excerpt {
        let _ = writeln!(o, "  {l}");
    }
    for p in &f.preps {
        let _ = writeln!(o, "  run: {p}");
    }
    o.push_str(&render_diff(&f.diff, roles));
    if f.section.starts_with("refused") || f.section.starts_with("timeout") {
        let _ = writeln!(o, "  {} stderr: {}", roles.0, f.stderr.0);
        let _ = writeln!(o, "  {} stderr: {}", roles.1, f.stderr.1);
    }
    o
}

/// The case's mutations, one per line.
pub fn describe_case(case: &Case) -> String {
    let mut o = format!(
        "seed {:#x} case {} shape {}: {} mutations\n",
        case.seed,
        case.index,
        case.shape,
        case.muts.len()
    );
    for m in &case.muts {
        let ops: Vec<String> = m
            .ops
            .iter()
            .map(|op| clip(&op.to_json().to_string(), 300))
            .collect();
        let _ = writeln!(o, "  {}: {}", m.tag, ops.join(" "));
    }
    o
}
