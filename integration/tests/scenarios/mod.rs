//! Scenario bodies, one module per manager, and what they share.

pub mod cri;
pub mod cri_stop;
pub mod ctr;
pub mod docker;
pub mod lifecycle;
pub mod podman;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use integration::cmd::Cmd;
use integration::pty::Pty;

/// Drives an interactive `sh` on a pty: checks it sees a terminal of the size the pty was opened with
/// (24x80), resizes the pty and waits for the shell to see the new size (the CLI forwards SIGWINCH through
/// the manager to the container's console), then exits with `code` and checks the CLI returns it.
pub fn interactive_shell(cmd: Cmd, code: i32) -> Result<()> {
    let line = cmd.line();
    let mut p = Pty::spawn(cmd.command(), line.clone(), 24, 80)?;
    // Typed text is echoed back: every marker is computed by the shell so the echo cannot match it.
    p.send("test -t 0 && test -t 1 && echo tty-$((20+22))-yes\r")?;
    p.expect("tty-42-yes", Duration::from_secs(30))
        .context("stdin/stdout of the container's shell are not a terminal")?;
    // The CLI passes its terminal size through the manager asynchronously (as it does a resize), so a
    // fast runtime's shell may start before it lands: ask until it shows, both times.
    wait_for_size(&mut p, 24, 80).context("initial terminal size")?;
    p.resize(40, 100)?;
    wait_for_size(&mut p, 40, 100).context("terminal size after a resize")?;
    p.send(&format!("exit {code}\r"))?;
    let got = p.wait(Duration::from_secs(30))?;
    ensure!(
        got == code,
        "`{line}` exited {got}, expected {code} (from `exit {code}` in the shell); pty output:\n{}",
        p.output()
    );
    Ok(())
}

/// Ask the shell for its terminal size until it is `rows`x`cols` (10 s at most).
fn wait_for_size(p: &mut Pty, rows: u16, cols: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        p.send("echo size=$(stty size)=\r")?;
        if p.expect(&format!("size={rows} {cols}="), Duration::from_millis(500))
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the container's terminal never became {rows}x{cols}; pty output:\n{}",
                p.output()
            );
        }
    }
}

/// Reads a cgroup v1 file of `controller` for cgroup path `rel` on the host.
pub fn host_cgroup_file(controller: &str, rel: &str, file: &str) -> Result<String> {
    let p = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
        .join(file);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("reading {}", p.display()))?
        .trim()
        .to_string())
}

/// Whether this host has cgroup v1 memory/pids/cpu hierarchies (the hybrid layout of this machine) or
/// only the unified one.
pub fn cgroup_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
}

/// Shell snippet printing the container's own memory limit, pids limit and CPU quota/period, in that
/// order, one per line, whichever cgroup version the container sees.
pub const PRINT_LIMITS: &str = "if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then \
  cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
  echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); \
else cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; fi";

/// Parses PRINT_LIMITS output into (memory bytes, pids max, "quota period").
pub fn parse_limits(out: &str) -> Result<(String, String, String)> {
    let l: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ensure!(
        l.len() >= 3,
        "expected 3 lines of cgroup limits, got: {out:?}"
    );
    Ok((l[0].to_string(), l[1].to_string(), l[2].to_string()))
}

/// Polls `f` until it gives Some or `limit` passes.
pub fn eventually<T>(
    what: &str,
    limit: Duration,
    f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    integration::cmd::wait_for(what, limit, f)
}
