//! `process`: the container's process, set up in two halves by its init (and by `exec`).
//!
//! - `prepare` runs while the container is being created, as root in all its namespaces: rlimits, I/O
//!   priority, scheduler, umask, cwd, `HOME`, and the lookup of the executable (so a missing binary fails
//!   `create`, as runc reports it: `exec: "x": executable file not found in $PATH`).
//! - `exec` runs once `start` released the init: uid/gid and groups, capabilities, no_new_privs, seccomp,
//!   fds, signals, and execve. Credentials come last so nothing before needs the profile's permission.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::resource::{setrlimit, Resource};
use oci_spec::runtime::{
    IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process,
};

use crate::capabilities::CapSets;
use crate::seccomp::SeccompProgram;
use crate::sys;

#[derive(Clone, Debug)]
pub struct Rlimit {
    pub name: &'static str,
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Clone, Debug)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub terminal: bool,
    /// consoleSize: (height, width).
    pub console_size: Option<(u16, u16)>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    /// The five sets; a config without `process.capabilities` gets empty ones, as runc gives it.
    pub capabilities: CapSets,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
    /// ioprio value for ioprio_set.
    pub io_priority: Option<i32>,
    pub scheduler: Option<sys::SchedAttr>,
    /// `execCPUAffinity` (for processes `exec` starts; not the init's): before and after the cgroup.
    pub cpu_affinity_initial: Option<Vec<usize>>,
    pub cpu_affinity_final: Option<Vec<usize>>,
}

fn rlimit_resource(t: PosixRlimitType) -> (&'static str, Resource) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        RlimitFsize => ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        RlimitData => ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        RlimitStack => ("RLIMIT_STACK", Resource::RLIMIT_STACK),
        RlimitCore => ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        RlimitRss => ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        RlimitNproc => ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        RlimitNofile => ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        RlimitMemlock => ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        RlimitAs => ("RLIMIT_AS", Resource::RLIMIT_AS),
        RlimitLocks => ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        RlimitSigpending => ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        RlimitMsgqueue => ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        RlimitNice => ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        RlimitRtprio => ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        RlimitRttime => ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
    }
}

/// One entry per name, the last value winning in the place of the first (what runc's init gets by
/// setenv(3)-ing each entry in turn): `exec -e NAME=v` overrides the config's NAME.
fn dedup_env(env: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in env {
        let name = e.split_once('=').map_or(e.as_str(), |(n, _)| n).to_owned();
        match at.get(&name) {
            Some(&i) => out[i] = e,
            None => {
                at.insert(name, out.len());
                out.push(e);
            }
        }
    }
    out
}

/// Parse a cpu list like "0-3,7".
pub fn parse_cpu_list(field: &str, s: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow!("{field}: {s:?} is not a cpu list like \"0-3,7\"");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 1024 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => {
                let c: usize = part.parse().map_err(|_| bad())?;
                if c >= 1024 {
                    return Err(bad());
                }
                cpus.push(c)
            }
        }
    }
    Ok(cpus)
}

impl ProcessPlan {
    pub fn from_spec(p: &Process) -> Result<ProcessPlan> {
        let args = p.args().clone().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            bail!("process.args must name the program to run");
        }
        let cwd = p.cwd().clone();
        if !cwd.is_absolute() {
            bail!(
                "process.cwd {:?} must be an absolute path",
                cwd.display().to_string()
            );
        }
        let env = p.env().clone().unwrap_or_default();
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                bail!("process.env[{i}] {e:?} is not NAME=value");
            }
        }
        let env = dedup_env(env);
        let mut seen = std::collections::HashSet::new();
        let mut rlimits = Vec::new();
        for (i, r) in p.rlimits().iter().flatten().enumerate() {
            let (name, resource) = rlimit_resource(r.typ());
            if !seen.insert(name) {
                bail!("process.rlimits[{i}]: {name} is given twice");
            }
            if r.soft() > r.hard() {
                bail!(
                    "process.rlimits[{i}]: {name} soft limit {} is above its hard limit {}",
                    r.soft(),
                    r.hard()
                );
            }
            rlimits.push(Rlimit {
                name,
                resource,
                soft: r.soft(),
                hard: r.hard(),
            });
        }
        let io_priority = match p.io_priority() {
            Some(io) => {
                let class = match io.class() {
                    IOPriorityClass::IoprioClassRt => 1,
                    IOPriorityClass::IoprioClassBe => 2,
                    IOPriorityClass::IoprioClassIdle => 3,
                };
                let prio = io.priority();
                if !(0..=7).contains(&prio) {
                    bail!("process.ioPriority.priority {prio} is out of range 0..7");
                }
                Some((class << 13) | prio as i32)
            }
            None => None,
        };
        let scheduler = match p.scheduler() {
            Some(s) => {
                let policy = match s.policy() {
                    LinuxSchedulerPolicy::SchedOther => 0,
                    LinuxSchedulerPolicy::SchedFifo => 1,
                    LinuxSchedulerPolicy::SchedRr => 2,
                    LinuxSchedulerPolicy::SchedBatch => 3,
                    LinuxSchedulerPolicy::SchedIso => 4,
                    LinuxSchedulerPolicy::SchedIdle => 5,
                    LinuxSchedulerPolicy::SchedDeadline => 6,
                };
                let flags = s.flags().iter().flatten().fold(0u64, |acc, f| {
                    acc | match f {
                        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
                    }
                });
                let nice = s.nice().unwrap_or(0);
                if !(-20..=19).contains(&nice) {
                    bail!("process.scheduler.nice {nice} is out of range -20..19");
                }
                Some(sys::SchedAttr {
                    sched_policy: policy,
                    sched_flags: flags,
                    sched_nice: nice,
                    sched_priority: s.priority().unwrap_or(0).max(0) as u32,
                    sched_runtime: s.runtime().unwrap_or(0),
                    sched_deadline: s.deadline().unwrap_or(0),
                    sched_period: s.period().unwrap_or(0),
                    ..Default::default()
                })
            }
            None => None,
        };
        let (cpu_affinity_initial, cpu_affinity_final) = match p.exec_cpu_affinity() {
            Some(a) => (
                a.initial()
                    .as_deref()
                    .map(|s| parse_cpu_list("process.execCPUAffinity.initial", s))
                    .transpose()?,
                a.cpu_affinity_final()
                    .as_deref()
                    .map(|s| parse_cpu_list("process.execCPUAffinity.final", s))
                    .transpose()?,
            ),
            None => (None, None),
        };
        let user = p.user();
        Ok(ProcessPlan {
            args,
            env,
            cwd,
            terminal: p.terminal().unwrap_or(false),
            console_size: p
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16)),
            uid: user.uid(),
            gid: user.gid(),
            // Each group once, as runc hands them to setgroups(2).
            additional_gids: {
                let mut seen = std::collections::HashSet::new();
                let mut gids = user.additional_gids().clone().unwrap_or_default();
                gids.retain(|g| seen.insert(*g));
                gids
            },
            umask: user.umask(),
            // No capabilities asked for: none (runc's behaviour), not the runtime's own.
            capabilities: p
                .capabilities()
                .as_ref()
                .map(CapSets::from_spec)
                .transpose()?
                .unwrap_or_default(),
            rlimits,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            apparmor_profile: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
            selinux_label: p.selinux_label().clone().filter(|s| !s.is_empty()),
            io_priority,
            scheduler,
            cpu_affinity_initial,
            cpu_affinity_final,
        })
    }

    fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
    }
}

/// The execve arguments, resolved during `prepare`.
pub type Exec = sys::ExecArgs;

/// The fds (at and above 3) that berth's caller gave it, read before berth opened any of its own.
static INHERITED_FDS: std::sync::OnceLock<Vec<RawFd>> = std::sync::OnceLock::new();

/// Record the fds berth was started with. Call first thing, before anything opens a file: only these
/// may pass into a container (`--preserve-fds`, socket activation), never berth's own.
pub fn record_inherited_fds() -> Result<()> {
    let fds = sys::open_fds().context("listing /proc/self/fd")?;
    let _ = INHERITED_FDS.set(fds);
    Ok(())
}

/// The fds `--preserve-fds count` passes: those of 3 .. 3+count that the caller really had open.
pub fn passed_fds(count: u32) -> Vec<RawFd> {
    let end = 3i64 + i64::from(count);
    INHERITED_FDS
        .get()
        .map(|fds| {
            fds.iter()
                .copied()
                .filter(|fd| i64::from(*fd) < end)
                .collect()
        })
        .unwrap_or_default()
}

/// Set the process's limits, priorities and working directory, find its executable (in the container's
/// root: call after pivot_root).
pub fn prepare(p: &ProcessPlan) -> Result<Exec> {
    for r in &p.rlimits {
        setrlimit(r.resource, r.soft, r.hard).map_err(|e| {
            let hint = if e == nix::errno::Errno::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            anyhow!(
                "process.rlimits: setrlimit({}, soft {}, hard {}): {e}{hint}",
                r.name,
                r.soft,
                r.hard
            )
        })?;
    }
    if let Some(prio) = p.io_priority {
        sys::ioprio_set_self(prio).context("process.ioPriority: ioprio_set")?;
    }
    if let Some(attr) = &p.scheduler {
        sys::sched_setattr_self(attr).context("process.scheduler: sched_setattr")?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        p.umask.unwrap_or(0o022) as libc::mode_t,
    ));
    // runc creates a missing cwd; we are inside the container's root, so this cannot escape it.
    std::fs::create_dir_all(&p.cwd)
        .and_then(|_| std::env::set_current_dir(&p.cwd))
        .with_context(|| format!("process.cwd {}: cannot change into it", p.cwd.display()))?;
    check_cwd_inside_root(&p.cwd)?;

    let mut env = p.env.clone();
    if p.env_value("HOME").is_none() {
        env.push(format!("HOME={}", home_of(p.uid)));
    }
    let path = lookup(&p.args[0], p.env_value("PATH"))?;
    Ok(Exec::new(
        CString::new(path.as_os_str().as_bytes())?,
        p.args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<_, _>>()?,
        env.into_iter()
            .map(CString::new)
            .collect::<Result<_, _>>()?,
    ))
}

/// After chdir: the working directory must be inside the container's root. A cwd reached through a
/// leaked fd (`/proc/self/fd/N` naming a directory of the host, CVE-2024-21626) is not: getcwd(2)
/// then reports it as unreachable (glibc: ENOENT) or not below `/`.
fn check_cwd_inside_root(cwd: &Path) -> Result<()> {
    let refuse = |why: String| {
        anyhow!(
            "process.cwd {}: the working directory is outside the container's root ({why}); refusing to run there",
            cwd.display()
        )
    };
    match std::env::current_dir() {
        Ok(dir) if dir.is_absolute() && !dir.as_os_str().as_bytes().starts_with(b"(") => Ok(()),
        Ok(dir) => Err(refuse(format!("getcwd says {}", dir.display()))),
        Err(e) => Err(refuse(format!("getcwd: {e}"))),
    }
}

/// The home directory of `uid` from the container's /etc/passwd, or "/".
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_owned())
}

/// exec.LookPath as runc does it: a name with a slash is used as it is, others are searched in the
/// process's PATH. The messages are runc's, which container managers match on (`executable file not
/// found`, `no such file or directory`, `permission denied`).
pub fn lookup(name: &str, path_env: Option<&str>) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let check = |p: &Path| -> std::io::Result<()> {
        let meta = std::fs::metadata(p)?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                bail!("exec: {name:?}: permission denied")
            }
            Err(e) => bail!("exec: {name:?}: stat {name}: {}", io_text(&e)),
        };
    }
    for dir in path_env.unwrap_or("").split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if check(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    bail!("exec: {name:?}: executable file not found in $PATH")
}

/// An io::Error in Go's lower-case wording ("no such file or directory").
fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::EACCES) => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

/// Become the container's process: credentials, capabilities, no_new_privs, fds, signals, seccomp, and
/// execve. `pass_fds` are passed to the program; every other fd above 2 is closed on exec.
/// `listener_to`: the socket that takes the seccomp notify listener, when the profile notifies (see
/// `seccomp_listener`): handing it over is the one call after the filter but execve.
///
/// Everything that can fail, and every system call, comes before the seccomp filter: once it is
/// installed nothing runs but execve, so a profile need not allow anything else (profiles written
/// before Linux 5.9 have no close_range, hand-written ones lack much more).
pub fn exec(
    p: &ProcessPlan,
    e: &Exec,
    seccomp: Option<&SeccompProgram>,
    pass_fds: &[RawFd],
    listener_to: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<std::convert::Infallible> {
    let filter = seccomp.map(SeccompProgram::prepare).transpose()?;
    p.capabilities.apply_bounding()?;
    set_user(p)?;
    // Without no_new_privs, installing the filter needs CAP_SYS_ADMIN: it stays effective (and
    // permitted) until then. execve computes the program's capabilities afresh from the bounding,
    // inheritable and ambient sets (and the file's), so it does not survive into the program.
    let filter_needs_admin = filter.is_some() && !p.no_new_privileges;
    let keep = filter_needs_admin.then_some(caps::Capability::CAP_SYS_ADMIN);
    p.capabilities.apply(keep)?;
    if p.no_new_privileges {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
            .context("process.noNewPrivileges: prctl(PR_SET_NO_NEW_PRIVS)")?;
    }
    if let Some(cpus) = &p.cpu_affinity_final {
        set_affinity(0, cpus).context("process.execCPUAffinity.final")?;
    }
    sys::cloexec_from(3).context("close_range(3.., CLOSE_RANGE_CLOEXEC)")?;
    for fd in pass_fds {
        sys::clear_cloexec(*fd).with_context(|| format!("passing fd {fd}: fcntl(F_SETFD)"))?;
    }
    sys::reset_signals();
    crate::lsm::set_exec_attributes(p)?;
    if let Some(f) = &filter {
        if let Some(listener) = f
            .install()
            .context("linux.seccomp: installing the filter")?
        {
            let sock = listener_to
                .context("linux.seccomp: the profile notifies but there is no way to the agent")?;
            sys::send_fd(sock, crate::seccomp_listener::TAG, listener)
                .context("linux.seccomp: handing the notify listener over (sendmsg)")?;
        }
    }
    let err = sys::execve(e);
    let name = e.argv()[0].to_string_lossy();
    bail!("exec: {name:?}: {}", io_text(&err))
}

/// setgroups, setresgid, setresuid, keeping the permitted capabilities across the change.
fn set_user(p: &ProcessPlan) -> Result<()> {
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).context("prctl(PR_SET_KEEPCAPS)")?;
    let setgroups_allowed = crate::procfs::read_self("setgroups")
        .ok()
        .flatten()
        .is_none_or(|s| s.trim() != "deny");
    if setgroups_allowed || !p.additional_gids.is_empty() {
        let groups: Vec<nix::unistd::Gid> = p.additional_gids.iter().map(|g| (*g).into()).collect();
        nix::unistd::setgroups(&groups).with_context(|| {
            format!(
                "process.user.additionalGids: setgroups({:?})",
                p.additional_gids
            )
        })?;
    }
    nix::unistd::setresgid(p.gid.into(), p.gid.into(), p.gid.into())
        .with_context(|| format!("process.user.gid: setresgid({})", p.gid))?;
    nix::unistd::setresuid(p.uid.into(), p.uid.into(), p.uid.into())
        .with_context(|| format!("process.user.uid: setresuid({})", p.uid))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).context("prctl(PR_SET_KEEPCAPS, 0)")?;
    Ok(())
}

/// `process.oomScoreAdj` of process `pid` (written by the runtime, through its procfs handle).
pub fn write_oom_score_adj(pid: i32, adj: i32) -> Result<()> {
    crate::procfs::write_pid(pid, "oom_score_adj", adj.to_string().as_bytes()).map_err(|e| {
        let hint = if adj < 0 {
            " (lowering the OOM score needs CAP_SYS_RESOURCE)"
        } else {
            ""
        };
        anyhow!("process.oomScoreAdj {adj}: {e:#}{hint}")
    })
}

/// sched_setaffinity for `pid` (0: the caller).
pub fn set_affinity(pid: i32, cpus: &[usize]) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(*c).with_context(|| format!("cpu {c}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set)
        .context("sched_setaffinity")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_unique_last_value_first_place() {
        let env = |v: &[&str]| dedup_env(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            env(&["A=1", "B=2", "A=3", "C=", "B=4=5"]),
            vec!["A=3", "B=4=5", "C="]
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("f", "0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("f", "3-1").is_err());
        assert!(parse_cpu_list("f", "x").is_err());
    }

    #[test]
    fn lookup_uses_runc_wording() {
        let e = lookup("definitely-not-here", Some("/nonexistent")).unwrap_err();
        assert_eq!(
            format!("{e}"),
            "exec: \"definitely-not-here\": executable file not found in $PATH"
        );
        let e = lookup("/nonexistent/x", None).unwrap_err();
        assert!(format!("{e}").ends_with("no such file or directory"), "{e}");
        assert_eq!(
            lookup("sh", Some("/nonexistent:/bin")).unwrap(),
            Path::new("/bin/sh")
        );
    }
}
