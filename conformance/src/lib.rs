//! Harness for the OCI runtime-spec conformance suite.
//!
//! Every test builds a bundle on the fly (a busybox rootfs copied cheaply from a
//! template built once per machine, plus a `config.json` derived from a default
//! spec that the test edits), drives `$RUNTIME --root <per-bundle dir> <verb>`
//! with unique container ids, and checks the effect of the configuration from
//! inside the container (busybox commands printing what they see) or from the
//! host (state JSON, cgroup files, hook side effects, pid files).
//!
//! The runtime under test is `$RUNTIME` (a name looked up in `PATH`, or a path);
//! by default the `berth` binary of this workspace's target directory.
//!
//! Cleanup is guaranteed by `Drop` on [`Bundle`]: every container id handed out
//! is force-deleted, its processes (found by cgroup or marker env) are killed,
//! its cgroup directories removed and the bundle directory deleted, also when a
//! test fails with a panic.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod differential;

/// The host's static busybox, copied into every rootfs.
pub const BUSYBOX: &str = "/bin/busybox";

/// Default time limit for one runtime command (create/start/run...).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_n() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Runtime selection
// ---------------------------------------------------------------------------

/// Absolute path of the runtime under test.
pub fn runtime() -> &'static Path {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        isolate_inherited_fds();
        let p = match resolve_runtime() {
            Ok(p) => p,
            Err(e) => panic!("conformance: cannot find the runtime under test: {e:#}"),
        };
        check_built_for(&p);
        p
    })
}

/// Whatever this test process inherited above stdio (a shell's or CI runner's stray fds) is made
/// close-on-exec, so that the runtime runs with exactly the fds a test gives it: the fd tests
/// (`--preserve-fds`, leaks) must not depend on who started `cargo test`.
fn isolate_inherited_fds() {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets a flag on open fds; it touches no
    // memory, and this process's own fds are close-on-exec already.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3u32,
            u32::MAX,
            nix::libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn resolve_runtime() -> Result<PathBuf> {
    if let Ok(r) = std::env::var("RUNTIME") {
        if !r.is_empty() {
            if r.contains('/') {
                let p = PathBuf::from(&r);
                if !p.is_file() {
                    bail!("RUNTIME={r} is not a file");
                }
                return fs::canonicalize(&p).with_context(|| format!("canonicalize {r}"));
            }
            return which(&r).ok_or_else(|| anyhow!("RUNTIME={r}: not found in PATH"));
        }
    }
    let mut candidates = Vec::new();
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("debug/berth"));
    }
    // The test binary lives in <target>/debug/deps/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent().and_then(Path::parent) {
            candidates.push(d.join("berth"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berth"));
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "RUNTIME is not set and no berth binary was found (looked in {candidates:?}); \
                 set RUNTIME=runc|berth|/path/to/runtime or build berth (cargo build -p berth)"
            )
        })
}

/// Base name of the runtime under test (`runc`, `crun`, `berth`...).
pub fn runtime_name() -> String {
    runtime()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether the runtime under test is berth (the `berth_only_` tests run) is decided at compile
/// time by build.rs (`cfg(berth_runtime)`: `RUNTIME` names berth or `CONFORMANCE_STRICT` is set),
/// so that libtest lists the others as ignored. cargo rebuilds the tests when either variable
/// changes; a test binary run by hand with another `RUNTIME` fails here instead of running the
/// wrong set of tests.
fn check_built_for(runtime: &Path) {
    let berth = runtime
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("berth"))
        || std::env::var_os("CONFORMANCE_STRICT").is_some();
    if berth != cfg!(berth_runtime) {
        panic!(
            "conformance: the runtime under test is {} but these tests were built {}: run them \
             through cargo test with this RUNTIME (and CONFORMANCE_STRICT), which rebuilds them",
            runtime.display(),
            if cfg!(berth_runtime) {
                "for berth (berth_only tests run)"
            } else {
                "for another runtime (berth_only tests ignored)"
            }
        );
    }
}

// ---------------------------------------------------------------------------
// Rootfs template
// ---------------------------------------------------------------------------

/// Directory holding the rootfs template cache and all bundles of this run.
/// `$CONFORMANCE_TMPDIR` or `<tmp>/berth-conformance`.
pub fn work_base() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let b = std::env::var_os("CONFORMANCE_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("berth-conformance"));
        fs::create_dir_all(&b).expect("create conformance work dir");
        // Containers with user namespaces must be able to traverse it.
        fs::set_permissions(&b, fs::Permissions::from_mode(0o755)).expect("chmod work dir");
        b
    })
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user1:x:1000:1000:user one:/home/user1:/bin/sh
user2:x:1001:1001:user two:/home/user2:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";

const GROUP: &str = "root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:user1,user2
user1:x:1000:
user2:x:1001:
nogroup:x:65534:
";

/// The rootfs template: built once (atomically) and reused; keyed by the
/// identity of the host's busybox so a changed busybox rebuilds it.
pub fn template() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| build_template().expect("build the busybox rootfs template"))
}

fn build_template() -> Result<PathBuf> {
    let meta = fs::metadata(BUSYBOX)
        .with_context(|| format!("stat {BUSYBOX} (apt-get install busybox-static)"))?;
    use std::os::unix::fs::MetadataExt;
    let key = format!("template-{}-{}-v1", meta.len(), meta.mtime());
    let dest = work_base().join(&key);
    if dest.join("bin/busybox").is_file() {
        return Ok(dest);
    }
    let tmp = work_base().join(format!("{key}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user1",
        "home/user2",
        "var",
        "run",
        "mnt",
    ] {
        fs::create_dir_all(tmp.join(d)).with_context(|| format!("mkdir {d}"))?;
    }
    fs::set_permissions(tmp.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BUSYBOX, tmp.join("bin/busybox")).context("copy busybox")?;
    let list = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .context("busybox --list-full")?;
    if !list.status.success() {
        bail!("busybox --list-full failed");
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let p = tmp.join(applet);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        if p.symlink_metadata().is_err() {
            symlink("/bin/busybox", &p).with_context(|| format!("symlink {applet}"))?;
        }
    }
    fs::write(tmp.join("etc/passwd"), PASSWD)?;
    fs::write(tmp.join("etc/group"), GROUP)?;
    fs::write(tmp.join("etc/hostname"), "template\n")?;
    match fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        Err(_) if dest.join("bin/busybox").is_file() => {
            // Another test process won the race.
            let _ = fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(e) => Err(e).context("rename template into place"),
    }
}

/// Copy a tree: directories and symlinks are recreated, the busybox binary is
/// hard-linked (falling back to a copy), other files are copied.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        fs::create_dir(dst).with_context(|| format!("mkdir {}", dst.display()))?;
        fs::set_permissions(dst, meta.permissions())?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
    } else if ft.is_symlink() {
        symlink(fs::read_link(src)?, dst)?;
    } else if src.file_name().is_some_and(|n| n == "busybox") {
        if fs::hard_link(src, dst).is_err() {
            fs::copy(src, dst)?;
        }
    } else {
        fs::copy(src, dst)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Default spec and JSON helpers
// ---------------------------------------------------------------------------

/// A default config like `runc spec`'s (terminal off, rootfs writable).
pub fn default_spec() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Set `value` at a JSON pointer (`/linux/hostname`), creating objects on the way.
pub fn set_ptr(root: &mut Value, ptr: &str, value: Value) {
    let mut cur = root;
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Value::Array(a) = cur {
            let idx: usize = part
                .parse()
                .unwrap_or_else(|_| panic!("bad index {part} in {ptr}"));
            if last {
                a[idx] = value;
                return;
            }
            cur = &mut a[idx];
            continue;
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().expect("object");
        if last {
            obj.insert((*part).to_string(), value);
            return;
        }
        cur = obj.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
}

/// Remove the value at a JSON pointer (no-op if absent).
pub fn remove_ptr(root: &mut Value, ptr: &str) {
    let (parent, key) = match ptr.rfind('/') {
        Some(i) => (&ptr[..i], &ptr[i + 1..]),
        None => return,
    };
    if let Some(p) = root.pointer_mut(parent) {
        match p {
            Value::Object(o) => {
                o.remove(key);
            }
            Value::Array(a) => {
                if let Ok(i) = key.parse::<usize>() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Append to the array at a JSON pointer (created if absent).
pub fn push_ptr(root: &mut Value, ptr: &str, value: Value) {
    if root.pointer(ptr).map(|v| !v.is_array()).unwrap_or(true) {
        set_ptr(root, ptr, json!([]));
    }
    root.pointer_mut(ptr)
        .and_then(Value::as_array_mut)
        .expect("array")
        .push(value);
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// Outcome of one runtime (or other) command.
#[derive(Debug, Clone)]
pub struct Out {
    /// Description of the command, for messages.
    pub cmd: String,
    /// Exit code; `128 + signal` when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panic with the full output unless the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(
            self.success(),
            "`{}` failed with {}\nstdout: {}\nstderr: {}",
            self.cmd,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panic unless the command failed (non-zero).
    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert!(
            !self.success(),
            "`{}` was expected to fail but exited 0\nstdout: {}\nstderr: {}",
            self.cmd,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panic unless the command failed and its stderr or stdout mentions one of `words`
    /// (case-insensitive): the runtime must name the problem.
    #[track_caller]
    pub fn fails_naming(&self, words: &[&str]) -> &Self {
        self.fails();
        let all = format!("{}\n{}", log_messages(&self.stderr), self.stdout).to_lowercase();
        assert!(
            words.iter().any(|w| all.contains(&w.to_lowercase())),
            "`{}` failed as expected but its message names none of {words:?}\nstdout: {}\nstderr: {}",
            self.cmd,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout lines, trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    /// Value of a `key=value` line printed by the container.
    #[track_caller]
    pub fn kv(&self, key: &str) -> String {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim_end().to_string())
            .unwrap_or_else(|| {
                panic!(
                    "no `{key}=` line in output of `{}`:\n{}\nstderr: {}",
                    self.cmd, self.stdout, self.stderr
                )
            })
    }
}

/// Run a command with stdin from /dev/null and stdout/stderr into files (so a
/// container inheriting them cannot keep us waiting on a pipe), with a time limit.
pub fn run_cmd(mut cmd: Command, scratch: &Path, timeout: Duration) -> Out {
    let desc = format!("{cmd:?}");
    let n = next_n();
    let out_p = scratch.join(format!(".out-{n}"));
    let err_p = scratch.join(format!(".err-{n}"));
    let out_f = fs::File::create(&out_p).expect("create stdout file");
    let err_f = fs::File::create(&err_p).expect("create stderr file");
    cmd.stdin(Stdio::null()).stdout(out_f).stderr(err_f);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let code = wait_child(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`{desc}` did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
            fs::read_to_string(&out_p).unwrap_or_default(),
            fs::read_to_string(&err_p).unwrap_or_default()
        )
    });
    let stdout = String::from_utf8_lossy(&fs::read(&out_p).unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&fs::read(&err_p).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&out_p);
    let _ = fs::remove_file(&err_p);
    Out {
        cmd: desc,
        code,
        stdout,
        stderr,
    }
}

/// stderr with logrus-style lines (`time=".." level=error msg="quoted \"text\""`, runc's and berth's
/// error lines) also given with their message unquoted, so that a test can look for the words.
pub fn log_messages(stderr: &str) -> String {
    let mut out = String::from(stderr);
    for line in stderr.lines() {
        if let Some(q) = line.split_once(" msg=").map(|(_, q)| q) {
            if let Ok(msg) = serde_json::from_str::<String>(q.trim()) {
                out.push('\n');
                out.push_str(&msg);
            }
        }
    }
    out
}

/// Wait for a child up to `timeout`; `None` on timeout.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
            }
            Ok(None) => {}
            Err(e) => panic!("wait: {e}"),
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `["sh", "-c", script]`
pub fn sh(script: &str) -> Value {
    json!(["sh", "-c", script])
}

// ---------------------------------------------------------------------------
// Bundles and containers
// ---------------------------------------------------------------------------

/// A bundle directory with its own `--root` state directory. All container ids
/// it hands out are cleaned up on drop.
pub struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    /// The config written before each create/run; edit it freely.
    pub config: Value,
    /// When set, written verbatim as config.json instead of `config`.
    pub raw_config: Option<String>,
    /// Give containers the default cgroupsPath `/berth-conformance-<id>` when
    /// the config has none (true by default).
    pub default_cgroups_path: bool,
    /// Run the runtime through this command (e.g. `nsenter -t PID -n`, to run
    /// it in a network namespace of the test's). Empty: run it directly.
    pub runtime_prefix: Vec<String>,
    tag: String,
    ids: Vec<String>,
    pids: Vec<i32>,
    extra_cgroups: Vec<String>,
}

impl Bundle {
    /// New bundle; `tag` (letters, digits, `-`) goes into its directory and ids.
    pub fn new(tag: &str) -> Bundle {
        let _ = runtime();
        let tpl = template();
        let dir = work_base().join(format!("{tag}-{}-{}", std::process::id(), next_n()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create bundle dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod bundle");
        copy_tree(tpl, &dir.join("rootfs")).expect("copy rootfs template");
        let root = dir.join("state");
        fs::create_dir(&root).expect("create state root");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).expect("chmod state root");
        Bundle {
            dir,
            root,
            config: default_spec(),
            raw_config: None,
            default_cgroups_path: true,
            runtime_prefix: Vec::new(),
            tag: tag.to_string(),
            ids: Vec::new(),
            pids: Vec::new(),
            extra_cgroups: Vec::new(),
        }
    }

    /// Bundle directory (absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The rootfs directory on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The `--root` state directory passed to the runtime.
    pub fn state_root(&self) -> &Path {
        &self.root
    }

    /// A fresh unique container id, registered for cleanup.
    pub fn new_id(&mut self) -> String {
        let id = format!("{}-{}-{}", self.tag, std::process::id(), next_n());
        self.ids.push(id.clone());
        id
    }

    /// Register a cgroup path (relative to the hierarchy roots) to remove on drop.
    pub fn cleanup_cgroup(&mut self, path: &str) {
        self.extra_cgroups.push(path.to_string());
    }

    /// The cgroupsPath the harness gives container `id` by default.
    pub fn cgroup_path_for(id: &str) -> String {
        format!("/berth-conformance-{id}")
    }

    /// Set process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        set_ptr(&mut self.config, "/process/args", json!(args));
        self
    }

    /// Set process.args to `sh -c script`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        set_ptr(&mut self.config, "/process/args", sh(script));
        self
    }

    /// Set a value in the config by JSON pointer.
    pub fn set(&mut self, ptr: &str, v: Value) -> &mut Self {
        set_ptr(&mut self.config, ptr, v);
        self
    }

    /// Append to an array in the config by JSON pointer.
    pub fn push(&mut self, ptr: &str, v: Value) -> &mut Self {
        push_ptr(&mut self.config, ptr, v);
        self
    }

    /// Remove a value from the config by JSON pointer.
    pub fn remove(&mut self, ptr: &str) -> &mut Self {
        remove_ptr(&mut self.config, ptr);
        self
    }

    /// Remove a namespace type from linux.namespaces.
    pub fn remove_namespace(&mut self, ty: &str) -> &mut Self {
        if let Some(a) = self
            .config
            .pointer_mut("/linux/namespaces")
            .and_then(Value::as_array_mut)
        {
            a.retain(|n| n["type"] != ty);
        }
        self
    }

    /// Remove the mounts whose destination is `dest`.
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        if let Some(a) = self
            .config
            .pointer_mut("/mounts")
            .and_then(Value::as_array_mut)
        {
            a.retain(|m| m["destination"] != dest);
        }
        self
    }

    /// Append a mount.
    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.push("/mounts", m)
    }

    /// Add (or replace) a namespace, optionally joined by path.
    pub fn namespace(&mut self, ty: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(ty);
        let mut ns = json!({"type": ty});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.push("/linux/namespaces", ns)
    }

    /// Add a hook: `kind` is prestart, createRuntime, createContainer,
    /// startContainer, poststart or poststop. `script` runs under the host's
    /// `/bin/sh -c`.
    pub fn hook(&mut self, kind: &str, script: &str, timeout: Option<u64>) -> &mut Self {
        let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
        if let Some(t) = timeout {
            h["timeout"] = json!(t);
        }
        self.push(&format!("/hooks/{kind}"), h)
    }

    /// Capabilities: set all of bounding/effective/permitted (and inheritable/ambient
    /// left empty) to `caps`.
    pub fn caps(&mut self, caps: &[&str]) -> &mut Self {
        self.set(
            "/process/capabilities",
            json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []}),
        )
    }

    fn write_config_for(&self, id: &str) {
        let path = self.dir.join("config.json");
        if let Some(raw) = &self.raw_config {
            fs::write(&path, raw).expect("write raw config.json");
            return;
        }
        let mut cfg = self.config.clone();
        if self.default_cgroups_path
            && cfg.pointer("/linux/cgroupsPath").is_none()
            && cfg.get("linux").is_some()
        {
            set_ptr(
                &mut cfg,
                "/linux/cgroupsPath",
                json!(Self::cgroup_path_for(id)),
            );
        }
        // A marker to find leftover container processes by their environment.
        if let Some(env) = cfg
            .pointer_mut("/process/env")
            .and_then(Value::as_array_mut)
        {
            env.push(json!(format!("CONFORMANCE_ID={id}")));
        }
        fs::write(&path, serde_json::to_vec_pretty(&cfg).expect("serialize"))
            .expect("write config.json");
    }

    /// Write config.json as it would be for container `id` (for tests that edit
    /// the file afterwards).
    pub fn write_config(&self, id: &str) {
        self.write_config_for(id)
    }

    /// A runtime command with `--root <state root>` and the given args.
    pub fn rt_cmd(&self, args: &[&str]) -> Command {
        let mut c = match self.runtime_prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(runtime());
                c
            }
            None => Command::new(runtime()),
        };
        c.arg("--root").arg(&self.root).args(args);
        c.current_dir(&self.dir);
        c
    }

    /// Run a runtime verb from a shell that first runs `prefix` in the bundle directory (to open extra
    /// fds, or set variables, for the runtime to inherit): `sh -c '<prefix>; exec RUNTIME --root R ARGS'`.
    pub fn rt_after(&self, prefix: &str, args: &[&str]) -> Out {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(format!("{prefix}; exec \"$@\""))
            .arg("sh")
            .arg(runtime())
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.dir);
        run_cmd(c, &self.dir, CMD_TIMEOUT)
    }

    /// Run a runtime verb with the default timeout.
    pub fn rt(&self, args: &[&str]) -> Out {
        run_cmd(self.rt_cmd(args), &self.dir, CMD_TIMEOUT)
    }

    /// Run a runtime verb with a timeout.
    pub fn rt_timeout(&self, args: &[&str], t: Duration) -> Out {
        run_cmd(self.rt_cmd(args), &self.dir, t)
    }

    /// `run` attached (foreground) with a fresh id: returns the container's output
    /// and exit code.
    pub fn run(&mut self) -> Out {
        let id = self.new_id();
        self.run_id(&id, &[])
    }

    /// `run [extra] --bundle <dir> <id>` attached.
    pub fn run_id(&mut self, id: &str, extra: &[&str]) -> Out {
        self.write_config_for(id);
        let dir = self.dir.to_string_lossy().into_owned();
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", &dir, id]);
        self.rt(&args)
    }

    /// `run` attached and require exit 0; returns the output.
    #[track_caller]
    pub fn run_ok(&mut self) -> Out {
        let o = self.run();
        o.ok();
        o
    }

    /// `create [extra] --bundle <dir> <id>`.
    pub fn create_with(&mut self, id: &str, extra: &[&str]) -> Out {
        self.write_config_for(id);
        let dir = self.dir.to_string_lossy().into_owned();
        let mut args = vec!["create"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", &dir, id]);
        let o = self.rt(&args);
        if o.success() {
            if let Ok(st) = self.try_state(id) {
                if let Some(p) = st["pid"].as_i64() {
                    self.pids.push(p as i32);
                }
            }
        }
        o
    }

    /// `create --bundle <dir> <id>`.
    pub fn create(&mut self, id: &str) -> Out {
        self.create_with(id, &[])
    }

    /// Fresh id + create, requiring success; returns the id.
    #[track_caller]
    pub fn create_ok(&mut self) -> String {
        let id = self.new_id();
        self.create(&id).ok();
        id
    }

    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    pub fn state(&self, id: &str) -> Out {
        self.rt(&["state", id])
    }

    pub fn kill(&self, id: &str, sig: &str) -> Out {
        self.rt(&["kill", id, sig])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Out {
        self.rt(&["delete", "--force", id])
    }

    /// Parsed state JSON, or an error with the runtime's output.
    pub fn try_state(&self, id: &str) -> Result<Value> {
        let o = self.state(id);
        if !o.success() {
            bail!("state {id} failed ({}): {}", o.code, o.stderr);
        }
        serde_json::from_str(&o.stdout)
            .with_context(|| format!("state output is not JSON: {}", o.stdout))
    }

    /// Parsed state JSON; panics if `state` fails.
    #[track_caller]
    pub fn state_json(&self, id: &str) -> Value {
        self.try_state(id).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Poll `state` until status == `status`; returns the state JSON.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(st) = self.try_state(id) {
                if st["status"] == status {
                    return st;
                }
                last = st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "container {id} did not reach status {status} within {timeout:?}; last state: {last}"
        )
    }

    /// Read a file the container wrote into its rootfs (path relative to rootfs `/`).
    pub fn read_rootfs(&self, rel: &str) -> String {
        let p = self.rootfs().join(rel.trim_start_matches('/'));
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Wait until a file appears in the rootfs (written by the container).
    pub fn wait_rootfs_file(&self, rel: &str, timeout: Duration) -> bool {
        let p = self.rootfs().join(rel.trim_start_matches('/'));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if p.exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Assert that nothing of container `id` is left: no entry under `--root`,
    /// no cgroup directory at its cgroupsPath (when the harness chose it), no
    /// process in that cgroup or carrying its marker env, and `state` fails.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        let entries: Vec<String> = fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            !entries.iter().any(|e| e.contains(id)),
            "state for {id} left under --root {}: {entries:?}",
            self.root.display()
        );
        let st = self.state(id);
        assert!(
            !st.success(),
            "`state {id}` still succeeds after a failed/finished lifecycle: {}",
            st.stdout
        );
        let cg = self
            .config
            .pointer("/linux/cgroupsPath")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| Self::cgroup_path_for(id));
        let left = cgroup_dirs_existing(&cg);
        assert!(
            left.is_empty(),
            "cgroup directories left for {id}: {left:?}"
        );
        let procs = processes_of(id, &cg);
        assert!(procs.is_empty(), "processes left for {id}: {procs:?}");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.ids.clone() {
            let st = self.try_state(&id).ok();
            if let Some(p) = st.as_ref().and_then(|s| s["pid"].as_i64()) {
                if p > 0 {
                    self.pids.push(p as i32);
                }
            }
            if st.is_some() {
                let mut c = self.rt_cmd(&["delete", "--force", &id]);
                c.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                if let Ok(mut ch) = c.spawn() {
                    if wait_child(&mut ch, Duration::from_secs(20)).is_none() {
                        let _ = ch.kill();
                        let _ = ch.wait();
                    }
                }
            }
            let cg = self
                .config
                .pointer("/linux/cgroupsPath")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| Self::cgroup_path_for(&id));
            // Kill only processes that are provably ours: in the container's
            // cgroup or carrying its marker env.
            for pid in processes_of(&id, &cg) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
            remove_cgroup_dirs(&cg);
        }
        for cg in self.extra_cgroups.clone() {
            remove_cgroup_dirs(&cg);
        }
        if std::env::var_os("CONFORMANCE_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// Processes, namespaces, cgroups on the host
// ---------------------------------------------------------------------------

/// Pids of processes in cgroup `cg` (any hierarchy) or whose environment holds
/// `CONFORMANCE_ID=<id>`.
pub fn processes_of(id: &str, cg: &str) -> Vec<i32> {
    let marker = format!("CONFORMANCE_ID={id}");
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let in_cg = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|s| {
                s.lines().any(|l| {
                    l.rsplit(':')
                        .next()
                        .is_some_and(|p| p == cg || p.starts_with(&format!("{cg}/")))
                })
            })
            .unwrap_or(false);
        let has_marker = fs::read(format!("/proc/{pid}/environ"))
            .map(|b| b.split(|c| *c == 0).any(|v| v == marker.as_bytes()))
            .unwrap_or(false);
        if in_cg || has_marker {
            out.push(pid);
        }
    }
    out
}

/// Is `/sys/fs/cgroup` a pure cgroup v2 mount?
pub fn cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// All hierarchy roots: `/sys/fs/cgroup` on v2; each `/sys/fs/cgroup/<h>` on v1/hybrid.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    if cgroup_v2() {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default()
}

/// Cgroup directories that exist for `path` in any hierarchy.
pub fn cgroup_dirs_existing(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Vec::new();
    }
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Remove the cgroup directories for `path` (deepest first) in all hierarchies.
pub fn remove_cgroup_dirs(path: &str) {
    for d in cgroup_dirs_existing(path) {
        remove_cgroup_tree(&d);
    }
}

fn remove_cgroup_tree(d: &Path) {
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.path().is_dir() {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(d);
}

/// Directory of `pid`'s cgroup for `controller` (v1: the hierarchy carrying it;
/// v2: the unified one).
pub fn cgroup_dir_of(pid: i32, controller: &str) -> Result<PathBuf> {
    let s = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("read /proc/{pid}/cgroup"))?;
    let v2 = cgroup_v2();
    for line in s.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        if v2 {
            if ctrls.is_empty() {
                return Ok(PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/')));
            }
        } else if ctrls.split(',').any(|c| c == controller) {
            // Find the mount of this hierarchy.
            for h in cgroup_hierarchies() {
                let name = h
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.split(',').any(|c| c == controller) {
                    return Ok(h.join(path.trim_start_matches('/')));
                }
            }
        }
    }
    bail!("no {controller} cgroup for pid {pid} in {s}")
}

/// Read a cgroup file of `pid` for `controller`, trimmed.
pub fn cgroup_read(pid: i32, controller: &str, file: &str) -> String {
    let d = cgroup_dir_of(pid, controller).unwrap_or_else(|e| panic!("{e:#}"));
    let p = d.join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The namespace link (`net:[4026...]`) of a process.
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
}

/// A helper process in new namespaces (`unshare <flags> sleep 1000`), killed on drop.
pub struct Unshared {
    child: Child,
}

impl Unshared {
    /// Start `unshare <flags...> sleep 1000` and wait until its namespaces differ from ours.
    pub fn start(flags: &[&str], ns: &[&str]) -> Unshared {
        let mut c = Command::new("unshare");
        c.args(flags);
        if flags.contains(&"--fork") {
            // so that killing unshare also kills its forked child
            c.arg("--kill-child");
        }
        c.args([BUSYBOX, "sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c.spawn().expect("spawn unshare");
        let u = Unshared { child };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ready = ns.iter().all(|n| {
                fs::read_link(format!("/proc/{}/ns/{n}", u.pid())).ok()
                    != fs::read_link(format!("/proc/self/ns/{n}")).ok()
            });
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "unshare {flags:?} did not enter new namespaces"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        u
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/proc/<pid>/ns/<ns>`
    pub fn ns_path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.pid())
    }
}

impl Drop for Unshared {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parse `/proc/<pid>/status`-style text into a map.
pub fn status_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Capability names by bit number (linux/capability.h).
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Capability bit numbers by name (as in linux/capability.h).
pub fn cap_bit(name: &str) -> u32 {
    ALL_CAPS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("unknown cap {name}")) as u32
}

/// The capability mask (as printed in /proc/self/status) of a set of names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0u64, |m, n| m | (1u64 << cap_bit(n)))
}

// ---------------------------------------------------------------------------
// Console socket
// ---------------------------------------------------------------------------

/// A `--console-socket` receiver: accepts one connection, receives the pty
/// master over SCM_RIGHTS and reads everything the container writes to it.
pub struct ConsoleSocket {
    path: PathBuf,
    handle: Option<JoinHandle<Result<Vec<u8>>>>,
}

impl ConsoleSocket {
    /// Listen on `<bundle>/console-<n>.sock`.
    pub fn listen(bundle: &Bundle, timeout: Duration) -> ConsoleSocket {
        let path = bundle.path().join(format!("console-{}.sock", next_n()));
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let handle = std::thread::spawn(move || receive_console(listener, timeout));
        ConsoleSocket {
            path,
            handle: Some(handle),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything read from the pty master (until the container closed it).
    pub fn output(mut self) -> Result<Vec<u8>> {
        self.handle
            .take()
            .expect("handle")
            .join()
            .map_err(|_| anyhow!("console thread panicked"))?
    }
}

fn receive_console(listener: UnixListener, timeout: Duration) -> Result<Vec<u8>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("no connection on the console socket");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("accept console socket"),
        }
    };
    stream.set_nonblocking(false)?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .context("recvmsg on console socket")?;
    let mut master: Option<OwnedFd> = None;
    for c in msg.cmsgs().context("cmsgs")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in our table via SCM_RIGHTS;
                // nothing else owns it, so OwnedFd may take ownership and close it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if master.is_none() {
                    master = Some(owned);
                }
            }
        }
    }
    let master = master.ok_or_else(|| anyhow!("no fd received over the console socket"))?;
    let mut file = fs::File::from(master);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if Instant::now() > deadline {
            break;
        }
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)).unwrap_or(0);
        if n == 0 {
            continue;
        }
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => out.extend_from_slice(&chunk[..k]),
            // EIO once every slave fd is closed: the container is gone.
            Err(_) => break,
        }
    }
    Ok(out)
}

/// Start a fresh bundle with `tag`; shorthand.
pub fn bundle(tag: &str) -> Bundle {
    Bundle::new(tag)
}

/// Major/minor of a device number (glibc encoding).
pub fn dev_major_minor(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

/// Make `cmd`'s child hold `fds[i].0` at fd number `fds[i].1` (not close-on-exec), besides stdio.
/// The sources are first duplicated above 200 so that no dup2 clobbers another source.
pub fn pass_fds(cmd: &mut Command, fds: &[(&OwnedFd, RawFd)]) -> Vec<OwnedFd> {
    let mut keep = Vec::new();
    let mut pairs = Vec::new();
    for (src, target) in fds {
        let high = nix::fcntl::fcntl(src.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(200))
            .expect("F_DUPFD_CLOEXEC");
        // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) };
        pairs.push((high, *target));
        keep.push(owned);
    }
    // SAFETY: the closure only calls dup2(2), which is async-signal-safe, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            for (high, target) in &pairs {
                if nix::libc::dup2(*high, *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    keep
}

/// A running container (`sleep 600` unless `edit` changes its args), started with `run -d`:
/// the bundle, the id and the init's pid.
pub fn running_detached(tag: &str, edit: impl FnOnce(&mut Bundle)) -> (Bundle, String, i64) {
    let mut b = bundle(tag);
    b.args(&["sleep", "600"]);
    edit(&mut b);
    let id = b.new_id();
    b.run_id(&id, &["-d"]).ok();
    let pid = b.wait_status(&id, "running", Duration::from_secs(10))["pid"]
        .as_i64()
        .expect("pid");
    (b, id, pid)
}
