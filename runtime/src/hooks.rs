//! `hooks`: run each hook with the container's state JSON on stdin, its own args and env, and its timeout.
//!
//! Who runs them and where (runtime-spec config.md#posix-platform-hooks):
//! prestart and createRuntime by `create` in the runtime's namespaces; createContainer by the init in the
//! container's namespaces before pivot_root; startContainer by the init after `start`, before the user's
//! program; poststart by `start`; poststop by `delete`. A failing prestart/createRuntime/createContainer/
//! startContainer hook fails the container; poststart and poststop failures are only warnings.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;

use crate::sys;

/// Check hooks while validating: absolute paths, positive timeouts.
pub fn validate(phase: &str, hooks: &[Hook]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        if !h.path().is_absolute() {
            bail!(
                "hooks.{phase}[{i}].path {}: must be absolute",
                h.path().display()
            );
        }
        if let Some(t) = h.timeout() {
            if t <= 0 {
                bail!("hooks.{phase}[{i}].timeout {t}: must be greater than zero");
            }
        }
    }
    Ok(())
}

/// Run `hooks` in order, stopping at the first that fails.
pub fn run(phase: &str, hooks: &[Hook], state_json: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json)
            .with_context(|| format!("{phase} hook #{i} ({})", h.path().display()))?;
    }
    Ok(())
}

/// Run `hooks` in order; a failure is logged as a warning and the others still run.
pub fn run_warn(phase: &str, hooks: &[Hook], state_json: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state_json) {
            crate::warn!("{phase} hook #{i} ({}) failed: {e:#}", h.path().display());
        }
    }
}

fn run_one(h: &Hook, state_json: &str) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(arg0) = args.first() {
        cmd.arg0(arg0);
    }
    cmd.args(args.iter().skip(1)).env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Output goes to a memfd: a chatty hook cannot block on a full pipe while we wait for it.
    let out = nix::sys::memfd::memfd_create(
        c"berth-hook-output",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .context("memfd_create")?;
    let mut out = std::fs::File::from(out);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out.try_clone()?));
    let mut child = cmd.spawn().context("starting it")?;
    let pidfd = sys::pidfd_open(child.id() as i32).context("pidfd_open")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: that is not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = h.timeout().map(|t| Duration::from_secs(t as u64));
    if !wait_readable(&pidfd, timeout)? {
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = child.wait();
        bail!("timed out after {}s", timeout.map_or(0, |t| t.as_secs()));
    }
    let status = child.wait().context("waiting for it")?;
    if !status.success() {
        let mut text = String::new();
        out.rewind()?;
        let _ = out.take(4096).read_to_string(&mut text);
        let text = text.trim();
        if text.is_empty() {
            bail!("{status}");
        }
        bail!("{status}, output: {text}");
    }
    Ok(())
}

/// Wait until the pidfd is readable (the process exited); false on timeout.
fn wait_readable(pidfd: &std::os::fd::OwnedFd, timeout: Option<Duration>) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = match deadline {
            Some(d) => {
                let now = std::time::Instant::now();
                if now >= d {
                    return Ok(false);
                }
                PollTimeout::try_from(d - now).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn state_reaches_stdin_and_failures_carry_output() {
        let dir = std::env::temp_dir().join(format!("berth-hook-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("stdin");
        let h = hook(&["sh", "-c", &format!("cat > {}", out.display())], None);
        run("prestart", &[h], "{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}");
        let bad = hook(&["sh", "-c", "echo boom >&2; exit 3"], None);
        let err = format!("{:#}", run("createRuntime", &[bad], "{}").unwrap_err());
        assert!(
            err.contains("createRuntime hook #0") && err.contains("boom") && err.contains("3"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timeouts_kill_the_hook() {
        let slow = hook(&["sh", "-c", "sleep 5"], Some(1));
        let t = std::time::Instant::now();
        let err = format!("{:#}", run("poststart", &[slow], "{}").unwrap_err());
        assert!(err.contains("timed out"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn bad_hooks_are_refused() {
        let rel = HookBuilder::default().path("hook").build().unwrap();
        assert!(validate("prestart", &[rel]).is_err());
        assert!(validate("prestart", &[hook(&[], Some(0))]).is_err());
    }
}
