//! The container's init: what the child of `create` does, in the order a container is born.
//!
//! 1. wait for the parent (cgroup joined, id maps written), enter the namespaces;
//! 2. build the filesystem (mounts, /dev), let the parent run the prestart/createRuntime hooks, run the
//!    createContainer hooks, pivot_root, set up the terminal, mask and make paths read-only;
//! 3. hostname, sysctls, limits, cwd, executable lookup; report `Ready` and wait on the exec socket;
//! 4. when `start` connects: startContainer hooks, credentials, capabilities, seccomp, execve.
//!
//! Until `Ready`, errors go to the parent over the channel; after it, to `start` over its connection.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use anyhow::{bail, Context, Result};

use crate::namespaces::{self, JoinFds, Kind};
use crate::process::{self, Exec};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::{Channel, Msg};
use crate::validate::Plan;
use crate::{hooks, sys, terminal};

pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    /// Fds of the parent that the init must not keep (the state dir lock, the parent's channel end).
    pub close_fds: Vec<i32>,
    pub join_fds: &'a JoinFds,
    pub exec_listener: UnixListener,
    /// A connected console socket, when the process has a terminal.
    pub console_socket: Option<OwnedFd>,
    /// The caller's fds that pass into the container (`--preserve-fds`, socket activation).
    pub preserve_fds: Vec<std::os::fd::RawFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Idmapped bind mounts made by the parent (their fds are inherited across the clone).
    pub idmapped: &'a rootfs::IdmappedTrees,
}

/// Entry point of the child; never returns.
pub fn main(args: InitArgs, channel: Channel) -> ! {
    for fd in &args.close_fds {
        let _ = nix::unistd::close(*fd);
    }
    let code = match setup(&args, &channel) {
        Err(e) => {
            let _ = channel.send(&Msg::Error(format!("{e:#}")));
            1
        }
        Ok((exec, state_pid)) => {
            drop(channel);
            match wait_for_start(&args.exec_listener) {
                Err(_) => 1,
                Ok(mut conn) => {
                    let Err(e) = finish(&args, &exec, state_pid, &conn);
                    let msg = format!("{e:#}");
                    let _ = conn.write_all(msg.as_bytes());
                    // As a shell reports it: 127 for a missing program, 126 for one that cannot run.
                    if msg.ends_with("no such file or directory") {
                        127
                    } else if msg.ends_with("permission denied") {
                        126
                    } else {
                        1
                    }
                }
            }
        }
    };
    std::process::exit(code)
}

/// Steps 1–3. Returns the resolved executable and the init's pid as the runtime sees it.
fn setup(args: &InitArgs, channel: &Channel) -> Result<(Exec, i32)> {
    let plan = args.plan;
    // Nobody may open /proc/<init>/exe (the berth binary) while the init runs berth's code.
    // berth run by an unprivileged user cannot write the id maps (nor oom_score_adj) of a
    // non-dumpable child, whose /proc files then belong to root: there the flag is set once the
    // namespaces are entered, before anything of the container runs (runc too is dumpable
    // while its parent writes the maps).
    let privileged = nix::unistd::geteuid().is_root();
    if privileged {
        sys::prctl(libc::PR_SET_DUMPABLE, 0).context("prctl(PR_SET_DUMPABLE)")?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    channel.expect(Msg::Go)?;
    // (A forked init on the staged path inherits the non-dumpable flag.)
    namespaces::enter(&plan.namespaces, args.join_fds, channel)?;
    if !privileged {
        sys::prctl(libc::PR_SET_DUMPABLE, 0).context("prctl(PR_SET_DUMPABLE)")?;
    }

    crate::debug!("init {}: in its namespaces", plan.id);
    crate::procfs::open_early()?;
    // Opened before any of the container's mounts exist: sysctls are written through a procfs of our
    // own, never a path that a mount (the image's, or one raced in) could redirect.
    let sysctls = if plan.sysctl.is_empty() {
        None
    } else {
        Some(crate::procfs::Sysctls::open()?)
    };
    if plan.namespaces.is_new(Kind::Net) {
        crate::netdev::loopback_up()?;
    }
    let prepared = rootfs::prepare(&RootfsPlan {
        rootfs: &plan.rootfs,
        mount_namespace: plan.namespaces.has(Kind::Mount),
        mounts: &plan.mounts,
        propagation: plan.rootfs_propagation,
        devices: &plan.devices,
        in_user_namespace: plan.namespaces.is_new(Kind::User)
            || plan.namespaces.joined(Kind::User).is_some(),
        console: plan.process.terminal,
        cgroup_namespace: plan.namespaces.has(Kind::Cgroup),
        idmapped: args.idmapped,
    })?;

    crate::debug!("init {}: mounts and devices ready", plan.id);
    channel.send(&Msg::RunCreateRuntimeHooks)?;
    let state_pid = match channel.recv()? {
        Some(Msg::HooksDone(pid)) => pid,
        Some(Msg::Error(e)) => bail!("{e}"),
        other => bail!("init channel: expected HooksDone, got {other:?}"),
    };
    hooks::run(
        "createContainer",
        &plan.hooks.create_container,
        &hook_state(plan, "creating", state_pid),
    )?;

    if plan.namespaces.has(Kind::Mount) {
        rootfs::pivot(&prepared.root, args.no_pivot)?;
    } else {
        nix::unistd::fchdir(prepared.root.as_raw_fd()).context("fchdir into the rootfs")?;
        nix::unistd::chroot(".").context("chroot into the rootfs (no mount namespace)")?;
        nix::unistd::chdir("/").context("chdir /")?;
    }

    if plan.process.terminal {
        let sock = args
            .console_socket
            .as_ref()
            .context("process.terminal is true but there is no console socket")?;
        let (master, slave) = terminal::open_pty(plan.process.console_size)?;
        if let Some(console) = &prepared.console {
            rootfs::bind_console(&slave, console)?;
        }
        terminal::send_master(sock.as_fd(), master.as_fd())?;
        drop(master);
        terminal::become_controlled(&slave)?;
    }

    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).with_context(|| format!("hostname {h:?}: sethostname"))?;
    }
    if let Some(d) = &plan.domainname {
        sys::setdomainname(d).with_context(|| format!("domainname {d:?}: setdomainname"))?;
    }
    // After the hostname, as runc; the handle goes right after.
    if let Some(sysctls) = sysctls {
        for (key, value) in &plan.sysctl {
            sysctls.write(key, value)?;
        }
    }
    crate::debug!("init {}: pivoted into the rootfs", plan.id);
    // After the sysctls: /proc/sys is usually one of the read-only paths.
    rootfs::finalize(
        &plan.masked_paths,
        &plan.readonly_paths,
        plan.root_readonly,
        plan.rootfs_propagation,
    )?;
    if !args.no_new_keyring {
        new_session_keyring(&plan.id)?;
    }
    if let Some(p) = plan.personality {
        sys::personality(p).context("linux.personality")?;
    }
    if let Some(mp) = &plan.memory_policy {
        let maxnode = mp.nodes.iter().max().map_or(0, |m| m + 1);
        let mut mask = vec![0 as libc::c_ulong; maxnode.div_ceil(64).max(1)];
        for n in &mp.nodes {
            mask[n / 64] |= 1 << (n % 64);
        }
        sys::set_mempolicy(
            mp.mode,
            if maxnode == 0 { &[] } else { &mask },
            maxnode as u64 + 1,
        )
        .context("linux.memoryPolicy: set_mempolicy")?;
    }
    let exec = process::prepare(&plan.process)?;
    // No more parent death signal: the parent exits once we are ready.
    sys::prctl(libc::PR_SET_PDEATHSIG, 0).ok();
    channel.send(&Msg::Ready)?;
    Ok((exec, state_pid))
}

/// A session keyring of the container's own, `_ses.<id>`, not the caller's. As runc does, the
/// keyring is also made searchable by its user (KEY_USR_SEARCH), so that the container's processes can
/// still search it after they change to another uid.
fn new_session_keyring(id: &str) -> Result<()> {
    const KEY_USR_SEARCH: u32 = 0x0008_0000;
    let name = std::ffi::CString::new(format!("_ses.{id}"))?;
    let key = match sys::join_session_keyring(&name) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(()),
        r => r.context("creating the container's session keyring")?,
    };
    let desc =
        sys::keyctl_describe(key).context("keyctl(KEYCTL_DESCRIBE) of the session keyring")?;
    let perm = desc
        .split(';')
        .nth(3)
        .and_then(|p| u32::from_str_radix(p, 16).ok())
        .with_context(|| {
            format!("the session keyring's description {desc:?} has no permissions")
        })?;
    sys::keyctl_setperm(key, perm | KEY_USR_SEARCH)
        .context("keyctl(KEYCTL_SETPERM) of the session keyring")
}

/// Block until `start` connects to the exec socket.
fn wait_for_start(listener: &UnixListener) -> Result<UnixStream> {
    loop {
        match listener.accept() {
            Ok((conn, _)) => return Ok(conn),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("waiting for start on the exec socket"),
        }
    }
}

/// Step 4: never returns on success (execve).
fn finish(
    args: &InitArgs,
    exec: &Exec,
    state_pid: i32,
    start: &UnixStream,
) -> Result<std::convert::Infallible> {
    let plan = args.plan;
    hooks::run(
        "startContainer",
        &plan.hooks.start_container,
        &hook_state(plan, "created", state_pid),
    )?;
    process::exec(
        &plan.process,
        exec,
        plan.seccomp.as_ref(),
        &args.preserve_fds,
        Some(start.as_fd()),
    )
}

/// The state JSON given to hooks run by the init.
fn hook_state(plan: &Plan, status: &str, pid: i32) -> String {
    serde_json::json!({
        "ociVersion": crate::config::OCI_VERSION,
        "id": plan.id,
        "status": status,
        "pid": pid,
        "bundle": plan.bundle,
        "annotations": plan.spec.annotations().clone().unwrap_or_default(),
    })
    .to_string()
}
