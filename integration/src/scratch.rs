//! A scratch area per manager: one directory for all of its state, one cgroup name of our own, and a
//! teardown that removes both and ends whatever still runs from them. A scratch area whose owning test
//! process died (killed, timed out) is swept by the next run.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::host;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Where scratch areas live: $INTEG_TMPDIR or /tmp/berth-integ. Short on purpose: unix socket paths
/// (shim sockets are DIR/s/<64 hex>) must stay under 108 bytes.
pub fn base_dir() -> PathBuf {
    std::env::var_os("INTEG_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/berth-integ"))
}

pub struct Scratch {
    dir: PathBuf,
    id: String,
    label: String,
    done: bool,
}

impl Scratch {
    /// Makes BASE/<pid>-<seq> with an `owner` file (pid and start time of this process, and a label).
    pub fn new(label: &str) -> Result<Scratch> {
        host::snapshot_outside_paths();
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("{pid}-{seq}");
        let base = base_dir();
        let dir = base.join(&id);
        if dir.exists() {
            host::remove_tree(&dir)?;
        }
        // Another area's teardown may remove an empty base between the two calls: retry.
        let mut tries = 0;
        loop {
            fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
            match fs::create_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        }
        let me = pid as i32;
        let st = host::start_time(me).unwrap_or(0);
        fs::write(dir.join("owner"), format!("{pid} {st}\n{label}\n"))
            .with_context(|| format!("writing {}/owner", dir.display()))?;
        Ok(Scratch {
            dir,
            id,
            label: label.to_string(),
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.join(p)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// A name unique to this scratch area, usable for cgroups, CNI networks, containerd namespaces.
    pub fn name(&self) -> String {
        format!("berth-integ-{}", self.id)
    }

    /// The cgroup under which this area's containers go: "/berth-integ-<pid>-<seq>".
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name())
    }

    /// Ends whatever still runs from here and removes everything this area caused. Idempotent.
    /// The manager's own graceful stop should come first; this is the net under it.
    pub fn teardown(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        teardown_area(&self.dir, &self.name())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for n in self.teardown() {
            eprintln!("[integ teardown {}] {n}", self.label);
        }
    }
}

fn teardown_area(dir: &Path, name: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let needle = format!("{}/", dir.display());
    // 1. The containers, through their cgroups (thawed first).
    for d in host::remove_cgroup(&format!("/{name}")) {
        notes.push(format!("cgroup left: {}", d.display()));
    }
    // 2. Processes that carry this area on their command line: shims, conmon, daemons.
    for pid in host::pids_mentioning(&needle) {
        notes.push(format!("killed leftover pid {pid}"));
        host::stop_pid(pid, Duration::from_millis(500));
    }
    // Cgroups again: a shim killed above may have left a cgroup behind.
    for d in host::remove_cgroup(&format!("/{name}")) {
        notes.push(format!("cgroup left: {}", d.display()));
    }
    // 3. Files written outside the area under this area's name.
    remove_named_outside_files(name, &mut notes);
    remove_runtime_states(name, &mut notes);
    // 4. Mounts and the tree itself, and the base directory once it is empty.
    if let Err(e) = host::remove_tree(dir) {
        notes.push(format!("{e:#}"));
    }
    if let Some(base) = dir.parent() {
        let _ = fs::remove_dir(base);
    }
    notes
}

/// CNI caches results as /var/lib/cni/results/<network>-<container>-<ifname>; our networks are named
/// after the scratch area.
fn remove_named_outside_files(name: &str, notes: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir("/var/lib/cni/results") else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{name}-"))
        {
            if let Err(err) = fs::remove_file(e.path()) {
                notes.push(format!("left {}: {err}", e.path().display()));
            }
        }
    }
}

/// Removes the base directory if nothing is left in it (end of a run).
pub fn remove_base_if_empty() {
    let _ = fs::remove_dir(base_dir());
}

/// podman leaves the runtime at its default root (/run/runc for runc): a container killed under a dead
/// run keeps its state directory there. Ours are those whose state names our cgroup.
fn remove_runtime_states(name: &str, notes: &mut Vec<String>) {
    let mut roots = vec![PathBuf::from("/run/runc")];
    if let Some(rt) = std::env::var_os("INTEG_RUNTIME") {
        if let Some(f) = Path::new(&rt).file_name() {
            roots.push(Path::new("/run").join(f));
        }
    }
    if let Some(r) = std::env::var_os("INTEG_RUNTIME_ROOT") {
        roots.push(PathBuf::from(r));
    }
    let needle = format!("/{name}/");
    for root in roots {
        let Ok(rd) = fs::read_dir(&root) else {
            continue;
        };
        for e in rd.flatten() {
            let state = fs::read_to_string(e.path().join("state.json")).unwrap_or_default();
            if state.contains(&needle) {
                match fs::remove_dir_all(e.path()) {
                    Ok(()) => notes.push(format!("removed runtime state {}", e.path().display())),
                    Err(err) => notes.push(format!("left {}: {err}", e.path().display())),
                }
            }
        }
    }
}

/// Tears down scratch areas whose owner process is gone (a run that was killed). Returns notes.
pub fn sweep_stale() -> Vec<String> {
    let mut notes = Vec::new();
    let Ok(rd) = fs::read_dir(base_dir()) else {
        return notes;
    };
    for e in rd.flatten() {
        let dir = e.path();
        let id = e.file_name().to_string_lossy().into_owned();
        let owner = fs::read_to_string(dir.join("owner")).unwrap_or_default();
        let mut it = owner.split_whitespace();
        let pid: i32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let st: u64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let live = pid > 0 && host::alive(pid) && host::start_time(pid) == Some(st);
        if live {
            continue;
        }
        if owner.is_empty() && !id.contains('-') {
            continue;
        }
        notes.push(format!("swept stale {}", dir.display()));
        notes.extend(teardown_area(&dir, &format!("berth-integ-{id}")));
    }
    notes
}
