//! `berth run ID`: create + start, then (unless --detach) stay attached: forward signals to the
//! container, proxy its terminal when there is one and no --console-socket, return its exit code, and
//! delete it when it exits (unless --keep).

use std::os::fd::AsFd;

use anyhow::{bail, Context, Result};
use nix::sys::signal::SigSet;

use crate::cli::{GlobalOpts, RunArgs};
use crate::commands::{create, delete, start};
use crate::launch::{self, Console};
use crate::{attach, sys, terminal};

pub fn run(g: &GlobalOpts, a: &RunArgs) -> Result<i32> {
    let c = &a.create;
    let mut own_console = None;
    let console = match (&c.console_socket, a.detach) {
        (Some(p), _) => Console::Socket(p.clone()),
        (None, true) => Console::None,
        (None, false) => {
            let (ours, theirs) = terminal::own_console_socket()?;
            own_console = Some(ours);
            Console::Pair(theirs)
        }
    };
    if !a.detach {
        // A container init forked inside its own pid namespace is reparented to us, so we can reap it.
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let created = match launch::create(create::options(g, c, console)) {
        Ok(created) => created,
        Err(e) if a.detach && e.to_string().contains("--console-socket is required") => {
            bail!("{e:#} (run --detach with a terminal needs --console-socket)")
        }
        Err(e) => return Err(e),
    };
    let master = match own_console {
        Some(sock) if created.terminal => Some(terminal::recv_master(sock.as_fd())?),
        _ => None,
    };
    // Signals that arrive from now on are forwarded, not acted on.
    let mask = if a.detach {
        None
    } else {
        Some(attach::block_signals()?)
    };
    if let Err(e) = start::start(&g.root, &c.id, &created.state_dir) {
        drop(created.state_dir);
        let _ = delete::run(&g.root, &c.id, true);
        return Err(e);
    }
    let pidfd = created.pidfd;
    drop(created.state_dir);
    if a.detach {
        return Ok(0);
    }
    let code = attach::attach(&pidfd, master, &mask.unwrap_or_else(SigSet::empty));
    if !a.keep {
        delete::run(&g.root, &c.id, true)?;
    }
    code
}
