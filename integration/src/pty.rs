//! A real pseudo-terminal for `ctr run -t`, `podman run -it`, `docker run -it`: the CLI runs as a session
//! leader with the pty's slave as its controlling terminal, the test types into and reads from the
//! master, and can resize it (the kernel then sends SIGWINCH to the CLI, which forwards the size).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::pty::{openpty, Winsize};

use crate::cmd::exit_code;

pub struct Pty {
    master: File,
    child: Child,
    line: String,
    buf: Arc<Mutex<Vec<u8>>>,
    /// Offset in `buf` up to which `expect` has consumed output.
    seen: usize,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn set_winsize(fd: i32, ws: &Winsize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which lives for the call; fd is
    // the pty master this struct owns.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws as *const Winsize) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("ioctl(TIOCSWINSZ) on the pty master");
    }
    Ok(())
}

impl Pty {
    /// Starts `cmd` on a new pty of `rows` x `cols`.
    pub fn spawn(mut cmd: Command, line: String, rows: u16, cols: u16) -> Result<Pty> {
        let pair = openpty(Some(&winsize(rows, cols)), None).context("openpty")?;
        let slave: OwnedFd = pair.slave;
        cmd.stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        cmd.env("TERM", "xterm");
        // SAFETY: the closure runs in the forked child before exec and only calls async-signal-safe
        // functions (setsid, ioctl) on fd 0, which is the pty slave set up above.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning `{line}` on a pty"))?;
        drop(cmd); // closes our copies of the slave: EOF/EIO on the master once the child is done
        let master = File::from(pair.master);
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone()?;
        let b2 = Arc::clone(&buf);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => b2.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
        });
        Ok(Pty {
            master,
            child,
            line,
            buf,
            seen: 0,
        })
    }

    /// Types `s` (include "\r" or "\n" to end a line).
    pub fn send(&mut self, s: &str) -> Result<()> {
        self.master
            .write_all(s.as_bytes())
            .with_context(|| format!("writing to the pty of `{}`", self.line))
    }

    /// Everything read so far (lossy UTF-8).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Waits until `needle` appears in output not yet consumed; returns the output up to and including
    /// it, and consumes it.
    pub fn expect(&mut self, needle: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let b = self.buf.lock().unwrap();
                let text = String::from_utf8_lossy(&b[self.seen..]).into_owned();
                if let Some(i) = text.find(needle) {
                    let upto = &text[..i + needle.len()];
                    self.seen += upto.len();
                    return Ok(upto.to_string());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "`{}`: {needle:?} did not appear on the pty within {limit:?}; output so far:\n{}",
                    self.line,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Changes the window size; the kernel signals the foreground process group (the CLI) with SIGWINCH.
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        set_winsize(self.master.as_raw_fd(), &winsize(rows, cols))
    }

    /// Waits for the CLI to end; returns its exit code (128+signal if killed).
    pub fn wait(&mut self, limit: Duration) -> Result<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait()? {
                // Let the reader drain what is left.
                thread::sleep(Duration::from_millis(50));
                return Ok(exit_code(st));
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "`{}` did not end within {limit:?}; pty output:\n{}",
                    self.line,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
