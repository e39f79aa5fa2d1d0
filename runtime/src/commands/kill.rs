//! `berth kill ID [SIGNAL] [--all]`.

use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use crate::cgroups::Cgroup;
use crate::container::{Container, Status};
use crate::state::StateDir;

/// A signal by name (KILL, SIGKILL, sigkill) or number, as runc accepts them.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        bail!(
            "invalid signal {s:?}: signal numbers go from 1 to {}",
            libc::SIGRTMAX()
        );
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|r| r.parse().ok())
                .unwrap_or(-1)
        };
        let n = libc::SIGRTMIN() + off;
        if off >= 0 && n <= libc::SIGRTMAX() {
            return Ok(n);
        }
    }
    match Signal::from_str(&name) {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("unknown signal {s:?}"),
    }
}

pub fn run(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let _dir = StateDir::open(root, id)?;
    let c = Container::load(root, id)?;
    let status = c.status();
    if status == Status::Creating {
        bail!("container {id:?} is still being created");
    }
    if all {
        // As runc: --all signals whatever is left in the container's cgroup, also once the init has
        // exited (containerd's runc shim kills a pod container's remaining children that way, and
        // waits for them), and succeeds when nothing is left.
        let cg = Cgroup::open(&c.state.cgroup)?;
        return cg.kill_all(sig);
    }
    if status == Status::Stopped {
        // runc's words: containerd's shim recognises "container not running" as an exit already seen.
        bail!("container not running");
    }
    c.signal(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in ["FOO", "0", "65", "-1", "SIGRTMIN+99", ""] {
            assert!(parse_signal(bad).is_err(), "{bad} accepted");
        }
    }
}
