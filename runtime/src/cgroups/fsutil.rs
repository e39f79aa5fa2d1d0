//! Small file helpers for cgroupfs: every error names the file and the value.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;

/// Write `value` to the cgroup file `dir/file` (no O_CREAT, no O_TRUNC: cgroupfs semantics).
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    write_raw(dir, file, value)
        .with_context(|| format!("cannot write {value:?} to {}", dir.join(file).display()))
}

/// Like [`write`] but returns the raw `io::Error` so callers can look at the errno.
pub(crate) fn write_raw(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(dir.join(file))?;
    f.write_all(value.as_bytes())
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))
}

/// Read a file that may legitimately be absent (controller not enabled, old kernel).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let p = dir.join(file);
    match fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

/// Parse a single number; "max" maps to `u64::MAX`.
pub(crate) fn parse_u64(s: &str, what: &Path) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse()
        .with_context(|| format!("unexpected value {s:?} in {}", what.display()))
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    parse_u64(&read(dir, file)?, &dir.join(file))
}

pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        Some(s) => Ok(Some(parse_u64(&s, &dir.join(file))?)),
        None => Ok(None),
    }
}

/// Parse a "key value" per line file (memory.stat, cpu.stat, memory.events, ...).
pub(crate) fn flat_keyed(content: &str) -> Vec<(&str, u64)> {
    content
        .lines()
        .filter_map(|l| {
            let mut it = l.split_ascii_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k, v))
        })
        .collect()
}

pub(crate) fn keyed_value(content: &str, key: &str) -> Option<u64> {
    flat_keyed(content)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Create `target` and any missing parents below `root` (which must exist).
/// `on_new` is called for every directory level from `root` (exclusive) down to `target`
/// with (parent, dir), whether it was created now or existed already.
pub(crate) fn mkdir_below(
    root: &Path,
    target: &Path,
    mut on_level: impl FnMut(&Path, &Path) -> Result<()>,
) -> Result<()> {
    let rel = target.strip_prefix(root).with_context(|| {
        format!(
            "cgroup path {} is not below its hierarchy {}",
            target.display(),
            root.display()
        )
    })?;
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create cgroup {}", cur.display()));
            }
        }
        on_level(&parent, &cur)?;
    }
    Ok(())
}

/// Every pid in `dir` and its descendants (cgroup.procs), empty if `dir` does not exist.
pub(crate) fn all_pids(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    collect_pids(dir, &mut out)?;
    Ok(out)
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match read_opt(dir, "cgroup.procs")? {
        Some(p) => p,
        None => return Ok(()),
    };
    for l in procs.lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        out.push(
            l.parse()
                .with_context(|| format!("bad pid {l:?} in {}/cgroup.procs", dir.display()))?,
        );
    }
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.with_context(|| format!("cannot list {}", dir.display()))?;
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(ent.path());
        }
    }
    Ok(out)
}

/// Remove a cgroup directory and its sub-cgroups (deepest first). A missing directory is fine.
/// rmdir fails with EBUSY while killed tasks are still exiting, so retry for up to `timeout`.
pub(crate) fn remove_tree(dir: &Path, timeout: Duration) -> Result<()> {
    for sub in subdirs(dir)? {
        remove_tree(&sub, timeout)?;
    }
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(Errno::EBUSY as i32) && start.elapsed() < timeout =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove cgroup {}", dir.display()));
            }
        }
    }
}
