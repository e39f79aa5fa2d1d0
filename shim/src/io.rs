//! A process's standard streams, by containerd's conventions:
//! - a FIFO path (what ctr and the CRI plugin pass): the process writes straight into the FIFO. The
//!   shim opens the FIFO's read side first and keeps it open without ever reading it, so the open of
//!   the write side never blocks and the process never gets EPIPE while containerd is away (restart);
//!   containerd sees EOF when the process's last writer closes. No copy, no thread.
//! - `file:///path`: stdout and stderr appended to the file, again with no copy.
//! - `binary:///path?k=v`: a logging binary gets the process's stdout and stderr as fds 3 and 4 and
//!   signals it is ready by closing fd 5 (containerd's runc shim convention); query pairs become its
//!   arguments, CONTAINER_ID and CONTAINER_NAMESPACE its environment.
//! - stdin FIFO: copied into a pipe by a thread (splice) until the writer closes it or CloseIO, so the
//!   process sees EOF exactly then.
//! - a terminal: the runtime sends the pty master over a console socket; two threads copy between it
//!   and the FIFOs; ResizePty sets the master's window size.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{splice, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::runtime::{ProcStdio, Running};
use crate::sys;

/// Copy threads wait most of their life: a small stack is plenty.
const COPY_STACK: usize = 64 << 10;

/// What containerd asked for, kept for State, plus what keeps the streams alive.
#[derive(Default)]
pub struct ProcIo {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    /// FIFO read sides held open (never read).
    held: Vec<OwnedFd>,
    /// With a terminal: stdin FIFO and stdout FIFO writer, until the console arrives.
    tty_in: Option<OwnedFd>,
    tty_out: Option<OwnedFd>,
    console: Option<Arc<OwnedFd>>,
    /// Wakes the stdin copier (CloseIO, or the process's streams going away).
    stdin_wake: Option<Closer>,
}

/// Ends a copier when dropped (or on [`Closer::close`]).
struct Closer(Arc<EventFd>);

impl Closer {
    fn close(&self) {
        let _ = self.0.write(1);
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_flags(p: &Path, flags: OFlag) -> Result<OwnedFd> {
    let acc = flags & OFlag::O_ACCMODE;
    let f = OpenOptions::new()
        .read(acc == OFlag::O_RDONLY || acc == OFlag::O_RDWR)
        .write(acc == OFlag::O_WRONLY || acc == OFlag::O_RDWR)
        .custom_flags((flags & !OFlag::O_ACCMODE).bits())
        .open(p)
        .with_context(|| format!("opening {}", p.display()))?;
    Ok(f.into())
}

fn devnull(write: bool) -> Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .context("opening /dev/null")?;
    Ok(f.into())
}

/// (held read side, write side) of a FIFO containerd reads.
///
/// The write side is opened only once containerd's reader is there (a reader blocked in its own open
/// counts): a process that wrote and exited before the reader arrived would leave containerd's blocking
/// open waiting for a writer that never comes. Then a read side is held open and never read, so the
/// process gets no EPIPE while containerd is away (a restart); it is not a writer, so containerd still
/// sees EOF when the process's last writer closes.
fn fifo_writer(path: &str) -> Result<(OwnedFd, OwnedFd)> {
    let p = Path::new(path);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(1);
    let w = loop {
        match open_flags(p, OFlag::O_WRONLY | OFlag::O_NONBLOCK) {
            Ok(w) => break w,
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .and_then(|e| e.raw_os_error())
                    == Some(libc::ENXIO) =>
            {
                if Instant::now() >= deadline {
                    bail!("nobody opened {path} for reading within 60 s");
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    };
    nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .with_context(|| format!("clearing O_NONBLOCK on {path}"))?;
    let r = open_flags(p, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    Ok((r, w))
}

/// "binary:///path?a=b&c" → (path, [a, b, c]).
fn parse_binary_uri(uri: &str) -> Result<(PathBuf, Vec<String>)> {
    let rest = uri
        .strip_prefix("binary://")
        .context("not a binary:// URI")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        bail!("{uri}: no binary path");
    }
    let mut args = Vec::new();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(percent_decode(k));
        if !v.is_empty() {
            args.push(percent_decode(v));
        }
    }
    Ok((PathBuf::from(percent_decode(path)), args))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts a `binary://` logger; returns the process's (stdout, stderr) write ends.
fn binary_logger(uri: &str, id: &str, ns: &str) -> Result<(OwnedFd, OwnedFd)> {
    let (path, args) = parse_binary_uri(uri)?;
    let path = crate::runtime::resolve(&path.to_string_lossy())
        .with_context(|| format!("logging binary of {uri}"))?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != crate::OPTIONS_ENV)
        .collect();
    env.push(("CONTAINER_ID".into(), id.into()));
    env.push(("CONTAINER_NAMESPACE".into(), ns.into()));
    let mut argv = vec![path.as_os_str()];
    argv.extend(args.iter().map(|a| std::ffi::OsStr::new(a.as_str())));
    sys::spawn(&sys::SpawnSpec {
        path: &path,
        argv,
        env,
        fds: vec![
            (out_r.as_raw_fd(), 3),
            (err_r.as_raw_fd(), 4),
            (ready_w.as_raw_fd(), 5),
        ],
        setsid: false,
    })
    .with_context(|| format!("starting the logging binary of {uri}"))?;
    drop(ready_w);
    // Ready when the logger closes (or writes to) fd 5.
    let mut fds = [PollFd::new(ready_r.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(10_000u16)) {
        Ok(0) => bail!("the logging binary of {uri} did not signal ready within 10 s"),
        Ok(_) => {}
        Err(e) => return Err(e).context("waiting for the logging binary"),
    }
    Ok((out_w, err_w))
}

fn open_log_file(uri: &str) -> Result<OwnedFd> {
    let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))?;
    Ok(f.into())
}

impl ProcIo {
    /// The streams containerd asked for, not opened yet (an exec until it starts).
    pub fn requested(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> ProcIo {
        ProcIo {
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            terminal,
            ..Default::default()
        }
    }

    /// Opens the streams containerd asked for. Returns the stdio the runtime hands to the process
    /// (/dev/null for a terminal process: its streams are the pty).
    pub fn prepare(
        stdin: &str,
        stdout: &str,
        stderr: &str,
        terminal: bool,
        id: &str,
        ns: &str,
    ) -> Result<(ProcIo, ProcStdio)> {
        let mut io = ProcIo {
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            terminal,
            ..Default::default()
        };
        if terminal {
            if !stdin.is_empty() {
                io.tty_in = Some(open_flags(
                    Path::new(stdin),
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK,
                )?);
            }
            if !stdout.is_empty() {
                let (r, w) = fifo_writer(stdout)?;
                io.held.push(r);
                io.tty_out = Some(w);
            }
            let stdio = ProcStdio {
                stdin: Some(devnull(false)?),
                stdout: Some(devnull(true)?),
                stderr: Some(devnull(true)?),
            };
            return Ok((io, stdio));
        }

        let mut stdio = ProcStdio::default();
        if stdout.starts_with("binary://") {
            let (o, e) = binary_logger(stdout, id, ns)?;
            stdio.stdout = Some(o);
            stdio.stderr = Some(e);
        } else if stdout.starts_with("file://") {
            let f = open_log_file(stdout)?;
            stdio.stderr = Some(f.try_clone().context("dup")?);
            stdio.stdout = Some(f);
        } else {
            stdio.stdout = Some(if stdout.is_empty() {
                devnull(true)?
            } else {
                let (r, w) = fifo_writer(stdout)?;
                io.held.push(r);
                w
            });
            stdio.stderr = Some(if stderr.is_empty() {
                devnull(true)?
            } else if stderr == stdout {
                stdio.stdout.as_ref().unwrap().try_clone().context("dup")?
            } else {
                let (r, w) = fifo_writer(stderr)?;
                io.held.push(r);
                w
            });
        }
        stdio.stdin = Some(if stdin.is_empty() {
            devnull(false)?
        } else {
            let fifo = open_flags(Path::new(stdin), OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
            let wake = Arc::new(
                EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                    .context("eventfd")?,
            );
            io.stdin_wake = Some(Closer(Arc::clone(&wake)));
            std::thread::Builder::new()
                .name("stdin".into())
                .stack_size(COPY_STACK)
                .spawn(move || {
                    pump(fifo.as_fd(), w.as_fd(), Some(wake.as_fd()));
                })
                .context("starting the stdin copier")?;
            r
        });
        Ok((io, stdio))
    }

    /// Takes the pty master from the runtime and starts copying between it and the FIFOs.
    pub fn attach_console(&mut self, master: OwnedFd) -> Result<()> {
        let master = Arc::new(master);
        if let Some(out) = self.tty_out.take() {
            let m = Arc::clone(&master);
            std::thread::Builder::new()
                .name("tty-out".into())
                .stack_size(COPY_STACK)
                .spawn(move || pump(m.as_fd(), out.as_fd(), None))
                .context("starting the terminal copier")?;
        }
        if let Some(input) = self.tty_in.take() {
            let m = Arc::clone(&master);
            let wake = Arc::new(
                EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                    .context("eventfd")?,
            );
            self.stdin_wake = Some(Closer(Arc::clone(&wake)));
            std::thread::Builder::new()
                .name("tty-in".into())
                .stack_size(COPY_STACK)
                .spawn(move || pump(input.as_fd(), m.as_fd(), Some(wake.as_fd())))
                .context("starting the terminal copier")?;
        }
        self.console = Some(master);
        Ok(())
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(m) = &self.console else {
            bail!("the process has no terminal");
        };
        sys::set_winsize(m.as_fd(), height as u16, width as u16)
    }

    /// CloseIO: the process's stdin reaches EOF (after what was already written).
    pub fn close_stdin(&self) {
        if let Some(w) = &self.stdin_wake {
            w.close();
        }
    }
}

/// Copies `from` → `to` until EOF (or an error, or `wake`), with splice when the kernel can, else
/// read/write. `from` may be non-blocking: it is polled first.
fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>, wake: Option<BorrowedFd<'_>>) {
    let mut use_splice = true;
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = vec![PollFd::new(from, PollFlags::POLLIN)];
        if let Some(w) = wake {
            fds.push(PollFd::new(w, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        if fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty())
        {
            return;
        }
        let ready = fds[0].revents().unwrap_or(PollFlags::empty());
        if ready.is_empty() {
            continue;
        }
        if use_splice {
            match splice(from, None, to, None, 1 << 16, SpliceFFlags::SPLICE_F_MOVE) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EINVAL) => use_splice = false,
                Err(_) => return,
            }
        }
        match nix::unistd::read(from.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if write_all(to, &buf[..n]).is_err() {
                    return;
                }
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A unix socket the runtime connects to with `--console-socket` to send the pty master.
pub struct ConsoleSocket {
    dir: PathBuf,
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket> {
        // Short, private path: socket paths are limited to 108 bytes, bundles can be longer.
        let dir = nix::unistd::mkdtemp("/tmp/berth-shim-pty-XXXXXX").context("mkdtemp")?;
        let path = dir.join("pty.sock");
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("binding console socket {}", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket {
            dir,
            path,
            listener,
        })
    }

    /// Receives the master while `running` (the runtime command) is alive.
    pub fn receive(&self, running: &mut Running<'_>) -> Result<OwnedFd> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    return berth::terminal::recv_master(stream.as_fd());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("accepting on the console socket"),
            }
            if let Some(st) = running.poll() {
                // It may have connected just before exiting.
                if let Ok((stream, _)) = self.listener.accept() {
                    stream.set_nonblocking(false)?;
                    return berth::terminal::recv_master(stream.as_fd());
                }
                bail!("the runtime exited ({st}) without sending a terminal");
            }
            if Instant::now() >= deadline {
                bail!("no terminal from the runtime within 60 s");
            }
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(20u8));
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_uri() {
        let (p, a) = parse_binary_uri("binary:///usr/bin/logger?id=a%20b&flag").unwrap();
        assert_eq!(p, PathBuf::from("/usr/bin/logger"));
        assert_eq!(a, vec!["id", "a b", "flag"]);
        assert!(parse_binary_uri("binary://").is_err());
    }

    #[test]
    fn fifo_write_side_waits_for_the_reader_and_ends_with_eof() {
        let dir = nix::unistd::mkdtemp("/tmp/berth-shim-test-XXXXXX").unwrap();
        let p = dir.join("out");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // containerd's reader: a blocking open, late.
        let p2 = p.clone();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read(&p2).unwrap()
        });
        let (held, w) = fifo_writer(p.to_str().unwrap()).unwrap();
        nix::unistd::write(&w, b"early").unwrap();
        drop(w);
        // The held read side is not a writer: the reader gets the data and EOF.
        assert_eq!(reader.join().unwrap(), b"early");
        drop(held);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
