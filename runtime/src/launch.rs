//! The parent side of `create` (and of `run`): parse → validate → prepare → clone → drive the init's
//! set-up → record the state. On any failure everything made so far is undone: the init is killed, the
//! cgroup and the state directory are removed (and poststop hooks run if create hooks had run).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cgroups::Cgroup;
use crate::container::{process_start_time, Container};
use crate::init::{self, InitArgs};
use crate::namespaces::{self, JoinFds, Kind, PidForChildren};
use crate::state::{State, StateDir, EXEC_SOCKET};
use crate::sync::{Channel, Msg};
use crate::validate::{self, Plan};
use crate::{config, hooks, rootfs, sys, terminal};

/// Where the container's terminal goes.
pub enum Console {
    /// No terminal.
    None,
    /// `--console-socket PATH`.
    Socket(PathBuf),
    /// `run`'s own socket: this end goes to the init, run keeps the other.
    Pair(OwnedFd),
}

pub struct CreateOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console: Console,
    pub pid_file: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
}

/// A created container, its state directory still locked by this command.
pub struct Created {
    pub state_dir: StateDir,
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub terminal: bool,
}

pub fn create(mut o: CreateOptions) -> Result<Created> {
    // Parse and validate: nothing exists yet, so a bad config leaves nothing behind.
    let (bundle, spec) = config::load(o.bundle)?;
    let mut plan = validate::plan(
        o.id,
        &bundle,
        spec,
        &validate::Options {
            systemd_cgroup: o.systemd_cgroup,
        },
    )?;
    // execCPUAffinity "is not applicable to the container's init process" (config.md): it is for the
    // processes `exec` starts, which read it from the saved config.
    plan.process.cpu_affinity_initial = None;
    plan.process.cpu_affinity_final = None;
    // An init that shares its pid namespace with other processes must not expose the berth binary.
    if !plan.namespaces.is_new(Kind::Pid) {
        crate::sealed_exe::ensure()?;
    }
    match (&o.console, plan.process.terminal) {
        (Console::None, true) => bail!(
            "process.terminal is true: a --console-socket is required to receive the terminal"
        ),
        (Console::Socket(_), false) => {
            bail!("--console-socket was given but process.terminal is false")
        }
        _ => {}
    }
    crate::debug!("create {}: config parsed and validated", o.id);
    let mut preserve_fds = o.preserve_fds;
    if let Some(n) = listen_fds() {
        plan.process.env.push(format!("LISTEN_FDS={n}"));
        plan.process.env.push("LISTEN_PID=1".to_owned());
        preserve_fds += n;
    }
    // Only fds the caller really had pass, never berth's own that happen to sit in the range.
    let preserve_fds = crate::process::passed_fds(preserve_fds);
    let cgroup = Cgroup::open(&plan.cgroup)?;
    if let Some(r) = &plan.resources {
        cgroup.check(r)?;
    }
    let join_fds = JoinFds::open(&plan.namespaces)?;
    if !plan.net_devices.is_empty() {
        if let Some(netns) = join_fds.get(Kind::Net) {
            crate::netdev::check_target(&plan.net_devices, netns.as_fd())?;
        }
    }
    // Idmapped mounts are made here, in the runtime's namespaces (see `IdmappedTrees`).
    let idmapped = rootfs::IdmappedTrees::prepare(&plan.mounts)?;
    let console_socket = match std::mem::replace(&mut o.console, Console::None) {
        Console::None => None,
        Console::Socket(ref p) => Some(OwnedFd::from(terminal::connect(p)?)),
        Console::Pair(fd) => Some(fd),
    };

    // Prepare: from here on, failures undo what was made.
    let state_dir = StateDir::create(o.root, o.id)?;
    let mut undo = Undo {
        state_dir: Some(state_dir),
        cgroup: None,
        pidfd: None,
        child: true,
        hooks_ran: false,
        net_devices: None,
    };
    match launch(
        &plan,
        &mut undo,
        cgroup,
        &join_fds,
        ForInit {
            console_socket,
            preserve_fds,
            idmapped,
        },
        &o,
    ) {
        Ok((pid, pidfd)) => {
            let state_dir = undo.state_dir.take().expect("state dir");
            Ok(Created {
                state_dir,
                pid,
                pidfd,
                terminal: plan.process.terminal,
            })
        }
        Err(e) => {
            undo.run(&plan);
            Err(e)
        }
    }
}

/// The fds passed by socket activation (LISTEN_FDS, when LISTEN_PID is ours or unset), as runc honours them.
fn listen_fds() -> Option<u32> {
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    match std::env::var("LISTEN_PID") {
        Ok(p) if p.parse() != Ok(std::process::id()) => None,
        _ => (n > 0).then_some(n),
    }
}

struct Undo {
    state_dir: Option<StateDir>,
    cgroup: Option<Cgroup>,
    pidfd: Option<OwnedFd>,
    /// The init is this process's child (reap it after killing it).
    child: bool,
    hooks_ran: bool,
    /// Network devices moved into the container's namespace.
    net_devices: Option<crate::netdev::MovedDevices>,
}

impl Undo {
    fn run(mut self, plan: &Plan) {
        // Before the init dies: its network namespace may go with it, and virtual devices with that.
        if let Some(moved) = self.net_devices.take() {
            crate::netdev::undo(moved);
        }
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            if self.child {
                let _ = sys::waitid_pidfd(fd.as_fd(), libc::WEXITED);
            } else {
                wait_exit(&fd);
            }
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.remove() {
                crate::warn!("cleaning up after a failed create: {e:#}");
            }
        }
        if self.hooks_ran {
            let state = serde_json::json!({
                "ociVersion": config::OCI_VERSION, "id": plan.id, "status": "stopped",
                "pid": 0, "bundle": plan.bundle,
            });
            hooks::run_warn("poststop", &plan.hooks.poststop, &state.to_string());
        }
        if let Some(dir) = self.state_dir.take() {
            if let Err(e) = dir.remove() {
                crate::warn!("cleaning up after a failed create: {e:#}");
            }
        }
    }
}

/// Wait (up to a few seconds) for a process that is not our child to exit.
pub fn wait_exit(pidfd: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(5000u16));
}

/// What the parent prepared for the init (fds it inherits across the clone).
struct ForInit {
    console_socket: Option<OwnedFd>,
    preserve_fds: Vec<std::os::fd::RawFd>,
    idmapped: rootfs::IdmappedTrees,
}

fn launch(
    plan: &Plan,
    undo: &mut Undo,
    cgroup: Cgroup,
    join_fds: &JoinFds,
    for_init: ForInit,
    o: &CreateOptions,
) -> Result<(i32, OwnedFd)> {
    let ForInit {
        console_socket,
        preserve_fds,
        idmapped,
    } = for_init;
    let state_dir = undo.state_dir.as_ref().expect("state dir");
    let lock_fd = state_dir.lock_fd().as_raw_fd();
    // Bound through the directory's fd: the path stays short whatever --root and the id are.
    let exec_listener = UnixListener::bind(format!("/proc/self/fd/{lock_fd}/{EXEC_SOCKET}"))
        .context("creating the exec socket")?;
    let (parent_end, child_end) = Channel::pair()?;

    let mut state = State {
        id: plan.id.clone(),
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        pid: 0,
        pid_start_time: 0,
        created: false,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        annotations: plan
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: plan.cgroup.clone(),
        own_pid_namespace: plan.namespaces.is_new(Kind::Pid),
    };
    state_dir.write_config(&plan.spec)?;
    state_dir.write_state(&state)?;

    // Clone, from the rootfs: the init starts there and never has to resolve its path (see
    // `rootfs::prepare`).
    let pid_ns = PidForChildren::enter(join_fds)?;
    let own_cwd = std::fs::File::open(".").context("opening the working directory")?;
    std::env::set_current_dir(&plan.rootfs)
        .with_context(|| format!("chdir into the rootfs {}", plan.rootfs.display()))?;
    let forked = sys::clone3(plan.namespaces.clone_flags().bits() as u64, None);
    if !matches!(forked, Ok(sys::Forked::Child)) {
        nix::unistd::fchdir(own_cwd.as_raw_fd()).context("fchdir back to the working directory")?;
    }
    let (mut pid, mut pidfd) = match forked {
        Ok(sys::Forked::Child) => init::main(
            InitArgs {
                plan,
                close_fds: vec![lock_fd, parent_end.fd().as_raw_fd(), own_cwd.as_raw_fd()],
                join_fds,
                exec_listener,
                console_socket,
                preserve_fds,
                no_pivot: o.no_pivot,
                no_new_keyring: o.no_new_keyring,
                idmapped: &idmapped,
            },
            child_end,
        ),
        Ok(sys::Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            pid_ns.leave()?;
            return Err(e).context("clone3 of the container's init");
        }
    };
    pid_ns.leave()?;
    crate::debug!("create {}: cloned the init, pid {pid}", plan.id);
    drop(idmapped);
    drop(child_end);
    drop(exec_listener);
    drop(console_socket);
    undo.pidfd = Some(pidfd.try_clone()?);

    // Place the child before it goes on: cgroup, OOM score, id maps.
    let added = cgroup.add(pid);
    // Kept also on failure: whatever add created is removed with the container.
    undo.cgroup = Some(cgroup);
    match added {
        Ok(()) => {}
        // As runc for an unprivileged user: with no resources to apply and no write access to the
        // cgroup tree, the container runs in the caller's cgroup.
        Err(e)
            if !nix::unistd::geteuid().is_root()
                && plan.resources.is_none()
                && permission_denied(&e) =>
        {
            crate::debug!("the container gets no cgroup of its own: {e:#}");
        }
        Err(e) => return Err(e),
    }
    if let Some(r) = &plan.resources {
        undo.cgroup.as_ref().expect("cgroup").apply(r)?;
    }
    if let Some(adj) = plan.process.oom_score_adj {
        crate::process::write_oom_score_adj(pid, adj)?;
    }
    if plan
        .namespaces
        .clone_flags()
        .contains(nix::sched::CloneFlags::CLONE_NEWUSER)
    {
        namespaces::write_id_maps(pid, &plan.namespaces)?;
    }
    parent_end.send(&Msg::Go)?;
    crate::debug!("create {}: the init is in its cgroup, released", plan.id);

    // Drive the init's set-up.
    loop {
        match parent_end.recv()? {
            Some(Msg::NeedIdMaps) => {
                namespaces::write_id_maps(pid, &plan.namespaces)?;
                parent_end.send(&Msg::IdMapsDone)?;
            }
            Some(Msg::NeedTimeOffsets) => {
                if let Err(e) = namespaces::write_time_offsets(pid, &plan.namespaces) {
                    let _ = parent_end.send(&Msg::Error(format!("{e:#}")));
                    return Err(e);
                }
                parent_end.send(&Msg::TimeOffsetsDone)?;
            }
            Some(Msg::InitPid(init_pid)) => {
                // The intermediate process forked the init into its new pid namespace and exits.
                let _ = sys::waitid_pidfd(pidfd.as_fd(), libc::WEXITED);
                pid = init_pid;
                pidfd = sys::pidfd_open(pid).context("pidfd_open of the container's init")?;
                undo.pidfd = Some(pidfd.try_clone()?);
                undo.child = false;
            }
            Some(Msg::RunCreateRuntimeHooks) => {
                // The init is in all its namespaces: move the network devices before the hooks run.
                if !plan.net_devices.is_empty() {
                    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                        .context("linux.netDevices: opening the container's network namespace")?;
                    let moved = crate::netdev::move_all(
                        &plan.net_devices,
                        OwnedFd::from(netns),
                        &mut undo.net_devices,
                    );
                    if let Err(e) = moved {
                        let _ = parent_end.send(&Msg::Error(format!("{e:#}")));
                        return Err(e);
                    }
                }
                state.pid = pid;
                let hook_state = serde_json::json!({
                    "ociVersion": config::OCI_VERSION, "id": plan.id, "status": "creating",
                    "pid": pid, "bundle": plan.bundle,
                    "annotations": plan.spec.annotations().clone().unwrap_or_default(),
                })
                .to_string();
                undo.hooks_ran =
                    !plan.hooks.prestart.is_empty() || !plan.hooks.create_runtime.is_empty();
                let ran =
                    hooks::run("prestart", &plan.hooks.prestart, &hook_state).and_then(|_| {
                        hooks::run("createRuntime", &plan.hooks.create_runtime, &hook_state)
                    });
                if let Err(e) = ran {
                    let _ = parent_end.send(&Msg::Error(format!("{e:#}")));
                    return Err(e);
                }
                undo.hooks_ran |= !plan.hooks.create_container.is_empty();
                parent_end.send(&Msg::HooksDone(pid))?;
            }
            Some(Msg::Ready) => {
                crate::debug!("create {}: the init is ready", plan.id);
                break;
            }
            Some(Msg::Error(e)) => bail!("{e}"),
            Some(other) => bail!("init channel: unexpected {other:?}"),
            None => {
                let status = sys::waitid_pidfd(pidfd.as_fd(), libc::WEXITED | libc::WNOHANG)
                    .ok()
                    .flatten();
                bail!(
                    "the container's init exited during set-up{}",
                    status.map(|s| format!(" (status {s})")).unwrap_or_default()
                );
            }
        }
    }

    // Record it.
    state.pid = pid;
    state.pid_start_time = process_start_time(pid)
        .map(|(t, _)| t)
        .context("the container's init died right after set-up")?;
    state.created = true;
    state_dir.write_state(&state)?;
    if let Some(path) = o.pid_file {
        write_pid_file(path, pid)?;
    }
    Ok((pid, pidfd))
}

/// Write a pid file atomically (a reader never sees it half-written).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("--pid-file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("--pid-file {}", path.display()))
}

/// For `delete` and friends: make sure the init is gone (SIGKILL, then wait).
pub fn kill_and_wait(c: &Container) {
    if let Some(fd) = c.pidfd() {
        let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        wait_exit(&fd);
    }
}

/// EACCES/EPERM anywhere in the error's chain.
fn permission_denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::PermissionDenied
                || io.raw_os_error() == Some(libc::EPERM)
        })
    })
}
