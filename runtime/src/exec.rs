//! Both sides of `exec`: a new process in a running container.
//!
//! The parent enters the container's pid namespace for its children (through the init's pidfd), clones
//! the process straight into it, adds it to the container's cgroup and applies its OOM score; the child
//! joins every other namespace of the container with one setns(pidfd), sets up the terminal, the
//! process's limits and credentials, the container's seccomp profile, and execs. Until the execve, errors
//! come back over the channel; its close-on-exec end closing means the program runs.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};

use crate::cgroups::Cgroup;
use crate::container::Container;
use crate::namespaces::Kind;
use crate::process::{self, ProcessPlan};
use crate::seccomp::SeccompProgram;
use crate::sync::{Channel, Incoming, Msg};
use crate::{sys, terminal};

pub struct ExecOptions {
    pub process: ProcessPlan,
    pub seccomp: Option<SeccompProgram>,
    /// Where the seccomp notify listener goes (`linux.seccomp.listenerPath`).
    pub agent: Option<crate::seccomp_listener::Agent>,
    /// `linux.personality` of the container, as its init has it.
    pub personality: Option<u64>,
    /// The cgroup the process joins: the container's, or a sub-cgroup of it (`--cgroup`).
    pub cgroup: crate::cgroups::CgroupConfig,
    /// The container's namespaces (new or joined at create): the process joins all of them.
    pub namespaces: Vec<Kind>,
    /// A connected socket that receives the terminal's master, when the process has a terminal.
    pub console_socket: Option<OwnedFd>,
    /// The caller's fds passed with `--preserve-fds`.
    pub preserve_fds: Vec<std::os::fd::RawFd>,
}

/// A started exec process.
pub struct Execed {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Start the process in the container; returns once it runs (or why it could not).
pub fn exec(c: &Container, o: ExecOptions) -> Result<Execed> {
    let init = c
        .pidfd()
        .context("the container's init process is not running")?;
    let (parent_end, child_end) = Channel::pair()?;
    let cgroup = Cgroup::open(&o.cgroup)?;

    // Born in the container's pid namespace: no intermediate process.
    let own_pid_ns = if o.namespaces.contains(&Kind::Pid) {
        let own = File::open("/proc/self/ns/pid").context("opening /proc/self/ns/pid")?;
        setns(&init, CloneFlags::CLONE_NEWPID)
            .context("setns into the container's pid namespace")?;
        Some(own)
    } else {
        None
    };
    let forked = sys::clone3(0, None);
    if let Ok(sys::Forked::Child) = forked {
        drop(parent_end);
        child_main(c, &o, &init, child_end)
    }
    if let Some(own) = &own_pid_ns {
        setns(own, CloneFlags::CLONE_NEWPID).context("setns back into berth's pid namespace")?;
    }
    let (pid, pidfd) = match forked.context("clone3 of the exec process")? {
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
        sys::Forked::Child => unreachable!("the child never returns from child_main"),
    };
    drop(child_end);
    drop(o.console_socket);

    let placed = (|| -> Result<()> {
        // execCPUAffinity: `initial` until the process is in the container's cgroup; then `final` (set
        // by the process itself, before it execs) or, without one, the container's default affinity
        // (its init's), so that `initial` does not stay.
        let affinity = &o.process;
        if let Some(cpus) = &affinity.cpu_affinity_initial {
            process::set_affinity(pid, cpus).context("process.execCPUAffinity.initial")?;
        }
        cgroup.add(pid)?;
        if affinity.cpu_affinity_initial.is_some() && affinity.cpu_affinity_final.is_none() {
            let init = nix::unistd::Pid::from_raw(c.state.pid);
            let default = nix::sched::sched_getaffinity(init)
                .context("process.execCPUAffinity: the affinity of the container's init")?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &default).context(
                "process.execCPUAffinity: back to the container's default affinity after initial",
            )?;
        }
        if let Some(adj) = o.process.oom_score_adj {
            process::write_oom_score_adj(pid, adj)?;
        }
        parent_end.send(&Msg::Go)
    })();
    let outcome = placed.and_then(|_| loop {
        match parent_end.recv_any()? {
            Incoming::Closed => break Ok(()),
            Incoming::Listener(fd) => {
                let agent = o
                    .agent
                    .as_ref()
                    .context("exec channel: a seccomp listener without a listenerPath")?;
                let state = serde_json::to_value(c.oci_state(crate::container::Status::Running))?;
                agent.deliver(pid, state, fd)?;
            }
            Incoming::Msg(Msg::Error(e)) => bail!("{e}"),
            Incoming::Msg(other) => bail!("exec channel: unexpected {other:?}"),
        }
    });
    if let Err(e) = outcome {
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = sys::waitid_pidfd(pidfd.as_fd(), libc::WEXITED);
        return Err(e);
    }
    Ok(Execed { pid, pidfd })
}

fn child_main(c: &Container, o: &ExecOptions, init: &OwnedFd, channel: Channel) -> ! {
    let result = (|| -> Result<std::convert::Infallible> {
        sys::prctl(libc::PR_SET_DUMPABLE, 0).context("prctl(PR_SET_DUMPABLE)")?;
        channel.expect(Msg::Go)?;
        // In the container's pid namespace already, not yet in its mount namespace.
        crate::procfs::open_early()?;
        let flags = o
            .namespaces
            .iter()
            .filter(|k| **k != Kind::Pid)
            .fold(CloneFlags::empty(), |acc, k| acc | k.flag());
        if !flags.is_empty() {
            setns(init, flags)
                .with_context(|| format!("setns into the container's namespaces ({flags:?})"))?;
        }
        if !o.namespaces.contains(&Kind::Mount) {
            // No mount namespace: the container lives in a chroot.
            let root = format!("/proc/{}/root", c.state.pid);
            nix::unistd::chroot(root.as_str()).with_context(|| format!("chroot {root}"))?;
            nix::unistd::chdir("/").context("chdir /")?;
        }
        if o.process.terminal {
            let sock = o
                .console_socket
                .as_ref()
                .context("a terminal needs a console socket")?;
            let (master, slave) = terminal::open_pty(o.process.console_size)?;
            terminal::send_master(sock.as_fd(), master.as_fd())?;
            drop(master);
            terminal::become_controlled(&slave)?;
        }
        if let Some(p) = o.personality {
            sys::personality(p).context("linux.personality")?;
        }
        let e = process::prepare(&o.process)?;
        process::exec(
            &o.process,
            &e,
            o.seccomp.as_ref(),
            &o.preserve_fds,
            Some(channel.fd()),
        )
    })();
    let Err(e) = result;
    let _ = channel.send(&Msg::Error(format!("{e:#}")));
    std::process::exit(255)
}
