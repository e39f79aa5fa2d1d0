//! Driving the runtime through runc's command line: `BIN --root ROOT/NS --log BUNDLE/log.json
//! --log-format json [--systemd-cgroup] VERB ...`, as containerd's runc shim does, so any runc-compatible
//! binary works (berth by default, runc through `BinaryName`).
//!
//! Every runtime command is our child and is reaped by the reaper like everything else: its status is
//! taken from a [`Subscription`] started before the spawn, never from a second `waitpid`. On failure the
//! error carries the last `error` line the runtime wrote to its log during this call (what runc users
//! and managers read), else its stderr.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::reaper::{Exits, Subscription};

/// Longest a runtime command may take (create of a big container, a stuck hook...).
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Runtime {
    /// Absolute path of the runc-compatible binary.
    pub binary: PathBuf,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// BUNDLE/log.json.
    pub log: PathBuf,
}

/// The three standard streams a runtime command hands to the process it creates.
#[derive(Default)]
pub struct ProcStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Finds `name` the way exec would: a path as is, else on PATH. Checked before spawning, so a missing
/// binary is a clear error and never a failed exec in a forked child.
pub fn resolve(name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exe = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !exe(&p) {
            bail!("runtime binary {name} does not exist or is not executable");
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if exe(&p) {
            return Ok(p);
        }
    }
    bail!("runtime binary {name:?} not found on PATH")
}

/// A spawned runtime command, waited for through the reaper.
pub struct Running<'a> {
    pub pid: i32,
    sub: Subscription<'a>,
    done: Option<u32>,
    what: String,
    log: PathBuf,
    log_offset: u64,
    stderr: Option<std::process::ChildStderr>,
    stdout: Option<std::process::ChildStdout>,
}

impl<'a> Running<'a> {
    /// Its exit status if it has exited already (does not block).
    pub fn poll(&mut self) -> Option<u32> {
        if self.done.is_none() {
            self.done = self.sub.take(self.pid).map(|e| e.status);
        }
        self.done
    }

    /// Waits for the exit; returns stdout (if captured). Fails with the runtime's own words.
    pub fn finish(self) -> Result<String> {
        self.finish_sub().0
    }

    /// [`Running::finish`], keeping the subscription: exits recorded while the command ran (the process
    /// it started, whose pid is read afterwards) stay claimable.
    pub fn finish_sub(mut self) -> (Result<String>, Subscription<'a>) {
        let r = self.collect();
        (r, self.sub)
    }

    fn collect(&mut self) -> Result<String> {
        let mut out = String::new();
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let status = match self.done {
            Some(s) => s,
            None => match self.sub.wait(self.pid, COMMAND_LIMIT) {
                Some(e) => e.status,
                None => {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(self.pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    bail!("{} did not finish within {COMMAND_LIMIT:?}", self.what)
                }
            },
        };
        if status == 0 {
            return Ok(out);
        }
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let reason = last_log_error(&self.log, self.log_offset)
            .or_else(|| {
                let t = err.trim();
                (!t.is_empty()).then(|| t.to_string())
            })
            .unwrap_or_else(|| format!("exit status {status}"));
        bail!("{} failed: {reason}", self.what)
    }
}

/// The last `"level":"error"` message written to the JSON log after `offset`.
pub fn last_log_error(log: &Path, offset: u64) -> Option<String> {
    let mut f = File::open(log).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut s = String::new();
    f.read_to_string(&mut s).ok()?;
    s.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error").then(|| v["msg"].as_str().unwrap_or_default().to_string())
    })
}

impl Runtime {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c.args(args);
        c.env_remove(crate::OPTIONS_ENV);
        c
    }

    /// Spawns `VERB args` with the given stdio (`None`: /dev/null for stdin, a pipe we read for
    /// stdout/stderr).
    pub fn spawn<'a>(
        &self,
        exits: &'a Exits,
        args: &[&str],
        stdio: ProcStdio,
        input: Option<&[u8]>,
    ) -> Result<Running<'a>> {
        let what = format!("{} {}", self.binary.display(), args.first().unwrap_or(&""));
        let mut c = self.command(args);
        let capture_out = stdio.stdout.is_none();
        let capture_err = stdio.stderr.is_none();
        c.stdin(match (stdio.stdin, input) {
            (_, Some(_)) => Stdio::piped(),
            (Some(fd), None) => Stdio::from(fd),
            (None, None) => Stdio::null(),
        });
        c.stdout(stdio.stdout.map(Stdio::from).unwrap_or_else(Stdio::piped));
        c.stderr(stdio.stderr.map(Stdio::from).unwrap_or_else(Stdio::piped));
        let log_offset = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let sub = exits.subscribe();
        let mut child = c.spawn().with_context(|| format!("spawning {what}"))?;
        // `c` holds the container's ends of its stdio: close them here, or the streams never end.
        drop(c);
        if let (Some(data), Some(mut w)) = (input, child.stdin.take()) {
            w.write_all(data)
                .with_context(|| format!("writing to {what}"))?;
        }
        Ok(Running {
            pid: child.id() as i32,
            sub,
            done: None,
            what,
            log: self.log.clone(),
            log_offset,
            stdout: if capture_out {
                child.stdout.take()
            } else {
                None
            },
            stderr: if capture_err {
                child.stderr.take()
            } else {
                None
            },
        })
    }

    /// Runs `VERB args` to the end; returns its stdout.
    pub fn run(&self, exits: &Exits, args: &[&str], input: Option<&[u8]>) -> Result<String> {
        self.spawn(exits, args, ProcStdio::default(), input)?
            .finish()
    }

    pub fn start(&self, exits: &Exits, id: &str) -> Result<()> {
        self.run(exits, &["start", id], None).map(drop)
    }

    pub fn kill(&self, exits: &Exits, id: &str, signal: u32, all: bool) -> Result<()> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.run(exits, &args, None).map(drop)
    }

    pub fn delete(&self, exits: &Exits, id: &str, force: bool) -> Result<()> {
        let args: &[&str] = if force {
            &["delete", "--force", id]
        } else {
            &["delete", id]
        };
        self.run(exits, args, None).map(drop)
    }

    pub fn pause(&self, exits: &Exits, id: &str) -> Result<()> {
        self.run(exits, &["pause", id], None).map(drop)
    }

    pub fn resume(&self, exits: &Exits, id: &str) -> Result<()> {
        self.run(exits, &["resume", id], None).map(drop)
    }

    /// `ps --format json ID`: the pids in the container's cgroup.
    pub fn ps(&self, exits: &Exits, id: &str) -> Result<Vec<i32>> {
        let out = self.run(exits, &["ps", "--format", "json", id], None)?;
        // runc prints `null` (Go's nil slice) when the cgroup is empty.
        let v: Option<Vec<i32>> = serde_json::from_str(out.trim())
            .with_context(|| format!("parsing `ps --format json` output {out:?}"))?;
        Ok(v.unwrap_or_default())
    }

    /// `update --resources - ID` with the LinuxResources JSON on stdin.
    pub fn update(&self, exits: &Exits, id: &str, resources_json: &[u8]) -> Result<()> {
        self.run(
            exits,
            &["update", "--resources", "-", id],
            Some(resources_json),
        )
        .map(drop)
    }
}

/// Reads a `--pid-file` the runtime wrote.
pub fn read_pid_file(p: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("{}: not a pid: {s:?}", p.display()))
}
