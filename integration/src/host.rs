//! What the tests do to the host, and how they undo it: processes (by pid), mounts under a scratch
//! directory, cgroups under a name of our own, and the few paths managers write outside their own dirs
//! (managers.md, pitfalls 3-5).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// State letter of /proc/PID/stat (R, S, D, Z, ...), None once the pid is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: the state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// Start time (field 22 of /proc/PID/stat), to tell a pid from a later one with the same number.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Alive means present and not a zombie: daemons started with setsid are reparented to PID 1, which
/// reaps them late, so `kill -0` would still succeed on the corpse.
pub fn alive(pid: i32) -> bool {
    !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// SIGTERM, up to `grace` for it to end, then SIGKILL and up to 5 s more. True if it is gone.
pub fn stop_pid(pid: i32, grace: Duration) -> bool {
    if !alive(pid) {
        return true;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    if wait_dead(pid, grace) {
        return true;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    wait_dead(pid, Duration::from_secs(5))
}

/// Stops a daemon we spawned: SIGTERM, up to `grace` for it to exit (reaped), else SIGKILL and reap.
/// True if SIGTERM was enough.
pub fn terminate_child(child: &mut std::process::Child, grace: Duration) -> bool {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// SIGKILL and wait (up to 5 s) until it is gone or a zombie.
pub fn kill_pid(pid: i32) -> bool {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    wait_dead(pid, Duration::from_secs(5))
}

pub fn wait_dead(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Pids (other than this process) whose command line mentions `needle`: the shims, conmons and daemons
/// that got a path of a scratch directory on their command line.
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        if let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or under `dir` (repeatedly: stacked mounts need several rounds).
pub fn unmount_under(dir: &Path) {
    for _ in 0..10 {
        let ms = mounts_under(dir);
        if ms.is_empty() {
            return;
        }
        for m in ms {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Mount points of the cgroup hierarchies (v1 controllers, name=systemd, and the v2 one).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for l in info.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            if let Some(mp) = pre.split(' ').nth(4) {
                v.push(PathBuf::from(unescape_mountinfo(mp)));
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Whether a cgroup `rel` (e.g. "/berth-integ-1-2") exists in any hierarchy.
pub fn cgroup_exists(rel: &str) -> bool {
    cgroup_hierarchies()
        .iter()
        .any(|h| h.join(rel.trim_start_matches('/')).is_dir())
}

fn cgroup_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// Removes cgroup `rel` in every hierarchy: thaws it, kills what still runs in it (only processes our
/// managers put there), and removes the directories bottom-up. Returns what could not be removed.
pub fn remove_cgroup(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return Vec::new();
    }
    let roots: Vec<PathBuf> = cgroup_hierarchies()
        .iter()
        .map(|h| h.join(rel))
        .filter(|p| p.is_dir())
        .collect();
    if roots.is_empty() {
        return Vec::new();
    }
    // A paused container sits in a frozen cgroup, where SIGKILL waits for a thaw.
    for root in &roots {
        for d in cgroup_dirs(root) {
            if d.join("freezer.state").exists() {
                let _ = fs::write(d.join("freezer.state"), "THAWED");
            }
            if d.join("cgroup.freeze").exists() {
                let _ = fs::write(d.join("cgroup.freeze"), "0");
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for root in &roots {
            for d in cgroup_dirs(root) {
                if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
        }
        let mut left = Vec::new();
        for root in &roots {
            let mut dirs = cgroup_dirs(root);
            dirs.reverse();
            for d in dirs {
                if let Err(e) = fs::remove_dir(&d) {
                    if e.kind() != ErrorKind::NotFound {
                        left.push(d);
                    }
                }
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Paths managers write outside their own directories (pitfall 5), and whether each existed before
/// this test process touched anything. Taken once, before the first manager starts.
const OUTSIDE_PATHS: &[&str] = &[
    "/run/containerd",
    "/run/containerd/s",
    "/run/containerd/fifo",
    "/run/containerd/runc",
    "/var/lib/cni",
    "/var/lib/cni/results",
    "/var/lib/cni/networks",
    "/run/docker",
    "/run/docker/plugins",
    "/var/lib/containers",
    "/var/lib/containers/cache",
    "/run/libpod",
    "/run/containers",
    "/run/containers/storage",
    "/run/containers/networks",
    "/var/lib/docker",
    "/etc/docker",
    "/run/netns",
    "/run/runc",
    "/etc/containers/networks",
];

static PREEXISTING: OnceLock<Vec<(PathBuf, bool)>> = OnceLock::new();

/// Records which outside paths exist now. Call before starting any manager.
pub fn snapshot_outside_paths() {
    PREEXISTING.get_or_init(|| {
        OUTSIDE_PATHS
            .iter()
            .map(|p| (PathBuf::from(p), Path::new(p).exists()))
            .collect()
    });
}

/// Removes outside paths the run created: only empty directories under /run (a live shim's socket keeps
/// its directory), and the whole of a cache tree whose top this run created (e.g. /var/lib/containers with
/// podman's blob-info cache). Call when no manager of this run is left.
pub fn remove_created_outside_paths() -> Vec<String> {
    let Some(pre) = PREEXISTING.get() else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    // Deepest first.
    let mut list: Vec<&(PathBuf, bool)> = pre.iter().collect();
    list.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (p, existed) in list {
        if *existed || !p.exists() {
            continue;
        }
        // podman's blob-info cache is all that lives there when this run created the directory.
        let whole_tree =
            p.starts_with("/var/lib/containers") || p == Path::new("/etc/containers/networks");
        let res = if whole_tree {
            fs::remove_dir_all(p)
        } else {
            fs::remove_dir(p)
        };
        match res {
            Ok(()) => notes.push(format!("removed {}", p.display())),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => notes.push(format!("left {}: {e}", p.display())),
        }
    }
    notes
}

/// After sweeping a killed run (which never got to `remove_created_outside_paths`): removes those outside
/// directories that are empty. An empty directory there holds nothing of anyone's; a live manager's
/// directory is not empty (its socket, its state) and stays.
pub fn remove_empty_outside_dirs() -> Vec<String> {
    // Runtime directories only: never /etc or /var/lib/docker, which packages own even when empty.
    let mut list: Vec<&str> = OUTSIDE_PATHS
        .iter()
        .copied()
        .filter(|p| (p.starts_with("/run/") && *p != "/run/netns") || p.starts_with("/var/lib/cni"))
        .collect();
    list.sort_by_key(|p| std::cmp::Reverse(Path::new(p).components().count()));
    let mut notes = Vec::new();
    for p in list {
        if fs::remove_dir(p).is_ok() {
            notes.push(format!("removed empty {p}"));
        }
    }
    // podman's blob-info cache, when it is all there is in /var/lib/containers (no storage of anyone's).
    let cache = Path::new("/var/lib/containers/cache");
    let only = |d: &Path, name: &str| {
        fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .ok()
            == Some(vec![std::ffi::OsString::from(name)])
    };
    if only(Path::new("/var/lib/containers"), "cache")
        && only(cache, "blob-info-cache-v1.boltdb")
        && fs::remove_dir_all("/var/lib/containers").is_ok()
    {
        notes.push("removed /var/lib/containers (only podman's blob-info cache)".into());
    }
    notes
}

/// rm -rf that first detaches mounts under the tree (a leaked overlay would make it fail half-way).
pub fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    unmount_under(dir);
    let mut last = None;
    for _ in 0..20 {
        match fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        unmount_under(dir);
        thread::sleep(Duration::from_millis(50));
    }
    Err(last.unwrap()).with_context(|| format!("removing {}", dir.display()))
}
