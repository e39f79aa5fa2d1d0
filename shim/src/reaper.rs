//! The shim is the subreaper of its containers: every child and every orphan reparented to it ends up
//! here. [`reap`] is the one place exits are collected (from the main loop, on SIGCHLD); each exit goes
//! to the task service, which either knows the pid (an init or exec process: its state machine moves to
//! stopped) or hands it to [`Exits`].
//!
//! [`Exits`] keeps exits of pids nobody knows yet, for as long as somebody may still claim them: a
//! [`Subscription`] taken *before* a runtime command starts sees every exit recorded after that point.
//! That covers the runtime command itself (`runc create` is our child: its status comes from here, never
//! from a second `waitpid`) and the container process whose pid only becomes known when the runtime's
//! `--pid-file` is read after `create`/`exec` returned: if it already exited, its exit is waiting here.
//! An exit recorded before the subscription began cannot be mistaken for it (pid reuse).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// One process exit: pid, status as the shell reports it (code, or 128 + signal), when.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub pid: i32,
    pub status: u32,
    pub at: SystemTime,
    seq: u64,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    list: Vec<Exit>,
    /// Start points of live subscriptions (a multiset).
    subs: Vec<u64>,
}

#[derive(Default)]
pub struct Exits {
    m: Mutex<Inner>,
    cv: Condvar,
}

impl Exits {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts seeing exits from now on.
    pub fn subscribe(&self) -> Subscription<'_> {
        let mut g = self.lock();
        let start = g.seq;
        g.subs.push(start);
        Subscription { exits: self, start }
    }

    /// A new sequence number for an exit that the service consumed itself (keeps the order total).
    pub fn stamp(&self, pid: i32, status: u32) -> Exit {
        let mut g = self.lock();
        g.seq += 1;
        Exit {
            pid,
            status,
            at: SystemTime::now(),
            seq: g.seq,
        }
    }

    /// Keeps `e` (an exit of a pid nobody knew) while a subscription could claim it.
    pub fn record(&self, e: Exit) {
        let mut g = self.lock();
        if !g.subs.is_empty() {
            g.list.push(e);
        }
        drop(g);
        self.cv.notify_all();
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.lock().list.len()
    }
}

/// Sees the exits recorded after it was taken; dropping it lets them go.
pub struct Subscription<'a> {
    exits: &'a Exits,
    start: u64,
}

impl Subscription<'_> {
    /// Takes the exit of `pid` if it happened since the subscription began.
    pub fn take(&self, pid: i32) -> Option<Exit> {
        let mut g = self.exits.lock();
        take_locked(&mut g, pid, self.start)
    }

    /// Waits for the exit of `pid` (up to `limit`).
    pub fn wait(&self, pid: i32, limit: Duration) -> Option<Exit> {
        let deadline = Instant::now() + limit;
        let mut g = self.exits.lock();
        loop {
            if let Some(e) = take_locked(&mut g, pid, self.start) {
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = self
                .exits
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn take_locked(g: &mut Inner, pid: i32, start: u64) -> Option<Exit> {
    let i = g.list.iter().position(|e| e.pid == pid && e.seq > start)?;
    Some(g.list.swap_remove(i))
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut g = self.exits.lock();
        if let Some(i) = g.subs.iter().position(|s| *s == self.start) {
            g.subs.swap_remove(i);
        }
        match g.subs.iter().min().copied() {
            None => g.list.clear(),
            Some(oldest) => g.list.retain(|e| e.seq > oldest),
        }
    }
}

/// The shell's view of a wait status: exit code, or 128 + signal number.
pub fn status_code(ws: &WaitStatus) -> Option<(i32, u32)> {
    match *ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

/// Reaps every child that has exited, without blocking; calls `each(pid, status)` for each.
pub fn reap(mut each: impl FnMut(i32, u32)) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(ws) => {
                if let Some((pid, status)) = status_code(&ws) {
                    each(pid, status);
                }
            }
        }
    }
}

/// Tests that reap with `waitpid(-1)` take this, so none of them takes another's child.
#[cfg(test)]
pub static REAPING_TESTS: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_before_subscription_is_not_seen() {
        let x = Exits::default();
        let early = x.stamp(42, 1);
        x.record(early); // nobody subscribed: dropped
        let sub = x.subscribe();
        assert!(sub.take(42).is_none());
        let e = x.stamp(42, 3);
        x.record(e);
        assert_eq!(sub.take(42).map(|e| e.status), Some(3));
        assert!(sub.take(42).is_none(), "taken once");
    }

    #[test]
    fn stale_exit_of_a_reused_pid_is_not_claimed() {
        let x = Exits::default();
        let old = x.subscribe();
        let stale = x.stamp(7, 9);
        x.record(stale);
        let new = x.subscribe();
        assert!(
            new.take(7).is_none(),
            "recorded before the new subscription"
        );
        assert_eq!(old.take(7).map(|e| e.status), Some(9));
        drop(old);
        drop(new);
        assert_eq!(x.kept(), 0);
    }

    #[test]
    fn wait_blocks_until_recorded() {
        let x = std::sync::Arc::new(Exits::default());
        let sub_owner = std::sync::Arc::clone(&x);
        let sub = sub_owner.subscribe();
        let x2 = std::sync::Arc::clone(&x);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let e = x2.stamp(5, 0);
            x2.record(e);
        });
        assert_eq!(sub.wait(5, Duration::from_secs(5)).map(|e| e.pid), Some(5));
        assert!(sub.wait(6, Duration::from_millis(20)).is_none());
        t.join().unwrap();
    }

    #[test]
    fn reaps_a_real_child() {
        let _one = REAPING_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: fork in a test; the child only calls _exit.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            // SAFETY: _exit is async-signal-safe and ends the forked child at once.
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(7) },
            nix::unistd::ForkResult::Parent { child } => child.as_raw(),
        };
        let mut got = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.is_none() && Instant::now() < deadline {
            reap(|p, s| {
                if p == pid {
                    got = Some(s)
                }
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, Some(7));
    }
}
