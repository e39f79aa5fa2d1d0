//! Running manager CLIs (ctr, podman, docker, ...) with a deadline, capturing what they print.

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What a finished command left: its exit code (128+N when killed by signal N), stdout and stderr.
#[derive(Debug, Clone)]
pub struct Output {
    pub line: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Fails (with both streams in the message) unless the command exited 0.
    pub fn ok(self) -> Result<Output> {
        if self.code != 0 {
            bail!("{self}");
        }
        Ok(self)
    }

    /// Fails unless the command exited with `code`.
    pub fn code(self, code: i32) -> Result<Output> {
        if self.code != code {
            bail!("expected exit code {code}: {self}");
        }
        Ok(self)
    }

    /// stdout without surrounding white space.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.line,
            self.code,
            tail(&self.stdout, 4000),
            tail(&self.stderr, 4000)
        )
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A command line under construction, run with a deadline.
pub struct Cmd {
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    pub fn new(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.args.push(a.as_ref().to_string_lossy().into_owned());
        }
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Cmd {
        self.envs.push((k.into(), v.into()));
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    /// The command line as a shell user would read it (for messages).
    pub fn line(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$;&|".contains(c)) {
                s.push('\'');
                s.push_str(&a.replace('\'', "'\\''"));
                s.push('\'');
            } else {
                s.push_str(a);
            }
        }
        s
    }

    /// The std Command this describes (for callers that attach their own stdio, e.g. a pty).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c
    }

    pub fn timeout_value(&self) -> Duration {
        self.timeout
    }

    /// Runs to the end (or kills it at the deadline, which is an error) and returns what it left.
    pub fn run(self) -> Result<Output> {
        let line = self.line();
        let mut c = self.command();
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().with_context(|| format!("spawning `{line}`"))?;
        if let Some(data) = self.stdin {
            let mut w = child.stdin.take().context("stdin pipe")?;
            thread::spawn(move || {
                let _ = w.write_all(&data);
            });
        }
        let mut out = child.stdout.take().context("stdout pipe")?;
        let mut err = child.stderr.take().context("stderr pipe")?;
        let out_t = thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let err_t = thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(st) = child
                .try_wait()
                .with_context(|| format!("waiting for `{line}`"))?
            {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`{line}` did not finish within {:?}", self.timeout);
            }
            thread::sleep(Duration::from_millis(5));
        };
        // A daemonised grandchild may keep the pipes open: read what came, without waiting for ever.
        let stdout = join_with_deadline(out_t, Duration::from_secs(5));
        let stderr = join_with_deadline(err_t, Duration::from_secs(5));
        Ok(Output {
            line,
            code: exit_code(status),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Runs and requires exit code 0.
    pub fn ok(self) -> Result<Output> {
        self.run()?.ok()
    }
}

fn join_with_deadline(t: thread::JoinHandle<Vec<u8>>, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    if t.is_finished() {
        t.join().unwrap_or_default()
    } else {
        b"<output still open after exit>".to_vec()
    }
}

/// The shell convention: the exit code, or 128+signal.
pub fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => -1,
    }
}

/// Polls `f` until it returns Some, failing with `what` after `limit`.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            match last_err {
                Some(e) => {
                    return Err(e.context(format!("timed out after {limit:?} waiting for {what}")))
                }
                None => bail!("timed out after {limit:?} waiting for {what}"),
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Finds `name` on PATH (or takes it as a path when it has a slash); the result is absolute.
pub fn which(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir()?.join(p)
        };
        if !p.is_file() {
            bail!("{} does not exist", p.display());
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if let Ok(md) = p.metadata() {
            use std::os::unix::fs::PermissionsExt;
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir()?.join(p)
                });
            }
        }
    }
    bail!("{name} not found on PATH")
}
