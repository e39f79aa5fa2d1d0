//! `berth exec ID [COMMAND...]`: run another process in a running container, built from `--process FILE`
//! or from the container's own process with runc's overrides (args, -t, --cwd, -e, -u, -g, --cap, ...).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::signal::SigSet;
use oci_spec::runtime::{Capability, Process};

use crate::cli::{ExecArgs, GlobalOpts};
use crate::container::{Container, Status};
use crate::exec::{self, ExecOptions};
use crate::launch::write_pid_file;
use crate::namespaces::Kind;
use crate::process::ProcessPlan;
use crate::seccomp::SeccompProgram;
use crate::{attach, sealed_exe, state, terminal};

pub fn run(g: &GlobalOpts, a: &ExecArgs) -> Result<i32> {
    // Until it execs, the new process runs berth's code next to the container's processes.
    sealed_exe::ensure()?;
    let c = Container::load(&g.root, &a.id)?;
    match c.status() {
        Status::Running => {}
        Status::Paused if a.ignore_paused => {}
        Status::Paused => bail!("cannot exec in a paused container (pause it with resume first, or use --ignore-paused)"),
        Status::Created | Status::Creating => bail!("cannot exec in a container that has not been started"),
        Status::Stopped => bail!("cannot exec in a stopped container"),
    }
    let spec = state::read_config(&c.dir)?;
    let process = build_process(a, spec.process().as_ref())?;
    let mut plan = ProcessPlan::from_spec(&process)?;
    crate::lsm::applicable(&mut plan, None);
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| Kind::from_spec(n.typ()))
        .collect();
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(SeccompProgram::compile)
        .transpose()?;
    let personality = crate::validate::personality(linux.personality().as_ref())?;
    let cgroup = if a.cgroup.is_empty() {
        c.state.cgroup.clone()
    } else {
        c.state.cgroup.sub_cgroup(&a.cgroup)?
    };

    let mut own_console = None;
    let console_socket: Option<OwnedFd> = match (&a.console_socket, plan.terminal, a.detach) {
        (Some(_), false, _) => {
            bail!("--console-socket was given but the process has no terminal (-t)")
        }
        (None, true, true) => {
            bail!("cannot allocate a terminal for a detached exec without --console-socket")
        }
        (Some(p), true, _) => Some(terminal::connect(p)?.into()),
        (None, true, false) => {
            let (ours, theirs) = terminal::own_console_socket()?;
            own_console = Some(ours);
            Some(theirs)
        }
        (None, false, _) => None,
    };
    let mask = if a.detach {
        None
    } else {
        Some(attach::block_signals()?)
    };
    let execed = exec::exec(
        &c,
        ExecOptions {
            process: plan,
            seccomp,
            agent: crate::seccomp_listener::Agent::of(&spec),
            personality,
            cgroup,
            namespaces,
            console_socket,
            preserve_fds: crate::process::passed_fds(a.preserve_fds),
        },
    )?;
    if let Some(path) = &a.pid_file {
        write_pid_file(path, execed.pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    let master = match own_console {
        Some(sock) => Some(terminal::recv_master(sock.as_fd())?),
        None => None,
    };
    attach::attach(&execed.pidfd, master, &mask.unwrap_or_else(SigSet::empty))
}

/// The process to run: `--process FILE` as it is, or the container's process with the command line's
/// overrides (what runc does).
fn build_process(a: &ExecArgs, base: Option<&Process>) -> Result<Process> {
    if let Some(path) = &a.process {
        return read_process(path);
    }
    if a.command.is_empty() {
        bail!("exec: no command given (and no --process file)");
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        p.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let user = p.user_mut();
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u:?}: the uid must be a number"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("--user {u:?}: the gid must be a number"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.cap.is_empty() {
        // runc adds each to the bounding, effective, permitted and ambient sets.
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let added: Vec<Capability> = a
            .cap
            .iter()
            .map(|n| spec_capability(n))
            .collect::<Result<_>>()?;
        let with = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.extend(added.iter().copied());
            Some(s)
        };
        let (b, e, pm, am) = (
            with(caps.bounding()),
            with(caps.effective()),
            with(caps.permitted()),
            with(caps.ambient()),
        );
        caps.set_bounding(b)
            .set_effective(e)
            .set_permitted(pm)
            .set_ambient(am);
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

fn read_process(path: &Path) -> Result<Process> {
    let data =
        std::fs::read(path).with_context(|| format!("--process {}: reading it", path.display()))?;
    serde_json::from_slice(&data)
        .map_err(anyhow::Error::from)
        .and_then(|v: serde_json::Value| crate::config::from_value(&v))
        .with_context(|| format!("--process {}: parsing it", path.display()))
}

/// A capability name ("NET_ADMIN" or "CAP_NET_ADMIN") as oci-spec's type.
fn spec_capability(name: &str) -> Result<Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| anyhow::anyhow!("--cap {name}: unknown capability"))
}
