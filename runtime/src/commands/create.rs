//! `berth create ID`: build the container and leave its init waiting for `start`.

use anyhow::Result;

use crate::cli::{CreateArgs, GlobalOpts};
use crate::launch::{self, Console, CreateOptions};

pub fn run(g: &GlobalOpts, a: &CreateArgs) -> Result<()> {
    let console = match &a.console_socket {
        Some(p) => Console::Socket(p.clone()),
        None => Console::None,
    };
    launch::create(options(g, a, console))?;
    Ok(())
}

pub fn options<'a>(g: &'a GlobalOpts, a: &'a CreateArgs, console: Console) -> CreateOptions<'a> {
    CreateOptions {
        root: &g.root,
        id: &a.id,
        bundle: &a.bundle,
        console,
        pid_file: a.pid_file.as_deref(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: g.systemd_cgroup,
    }
}
