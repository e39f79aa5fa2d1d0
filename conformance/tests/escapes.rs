//! Container escapes, one test per class (issue 10). Each attack is set up for real and decided
//! from evidence: a secret file on the host that must never be readable from inside, the filesystem
//! type of `/proc/sys` seen from inside, a host file that a redirected write would overwrite, the
//! container's working directory as getcwd(2) reports it. A runtime may always refuse instead: a
//! clean refusal (non-zero exit, no panic, nothing left) passes.
//!
//! - CVE-2024-21626 class: a working directory or an fd outside the container's root
//!   (`process.cwd` = `/proc/self/fd/N`, `exec --cwd`, fds leaked through `--preserve-fds`).
//! - CVE-2019-19921 class: a mount destination that is a symlink into `/proc` in the image.
//! - CVE-2025-52881 class: a mount destination swapped for a symlink into `/proc/sys` by a racing
//!   writer of a shared volume, so that the runtime's own procfs writes (sysctl) are redirected.
//! - LSM profiles: applied where the host has the LSM; where it has none, never dropped silently.

use conformance::*;
use serde_json::{json, Value};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// Enough `..` to climb from any host directory to the host's `/` (extra ones stay at `/`).
const UP: &str = "../../../../../../../../../../../../../..";

/// A secret file on the host, outside every container root.
struct HostSecret {
    path: PathBuf,
    content: String,
}

impl HostSecret {
    fn new(b: &Bundle, tag: &str) -> HostSecret {
        let content = format!("HOST-SECRET-{tag}-{}", std::process::id());
        let path = b.path().join(format!("host-secret-{tag}"));
        std::fs::write(&path, format!("{content}\n")).unwrap();
        HostSecret { path, content }
    }

    /// A shell script for inside the container: tries to read the secret through every open fd
    /// (`/proc/self/fd/N/../..<path>`) and through the working directory, and prints getcwd(2)
    /// (busybox `pwd -P`; it fails when the directory is unreachable from the root).
    fn probe(&self) -> String {
        let p = self.path.display();
        format!(
            "busybox pwd -P 2>&1 | sed 's/^/getcwd=/'; \
             for f in /proc/self/fd/*; do cat \"$f/{UP}{p}\" 2>/dev/null; done; \
             cat \"./{UP}{p}\" 2>/dev/null; echo probe-done"
        )
    }

    /// Panic if the container's output shows the secret or a working directory outside its root.
    #[track_caller]
    fn assert_not_reached(&self, what: &str, o: &Out) {
        assert!(
            !o.stderr.contains("panicked at"),
            "{what}: the runtime panicked: {o:?}"
        );
        assert!(
            !o.stdout.contains(&self.content),
            "{what}: ESCAPE: the host file {} was read from inside: {o:?}",
            self.path.display()
        );
        if let Some(cwd) = o.stdout.lines().find_map(|l| l.strip_prefix("getcwd=")) {
            assert!(
                cwd.starts_with('/') && !cwd.contains("unreachable"),
                "{what}: the working directory is outside the container's root: {cwd:?} ({o:?})"
            );
        }
    }
}

fn open_dir(p: &Path) -> OwnedFd {
    OwnedFd::from(std::fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display())))
}

/// A running container (`sleep 600`), started with `run -d`.
fn running(tag: &str) -> (Bundle, String) {
    let mut b = bundle(tag);
    b.args(&["sleep", "600"]);
    let id = b.new_id();
    b.run_id(&id, &["-d"]).ok();
    b.wait_status(&id, "running", T);
    (b, id)
}

/// After a refused `run`/`create`: no panic, nothing left.
#[track_caller]
fn clean_refusal(b: &Bundle, id: &str, what: &str, o: &Out) {
    assert!(
        !o.stderr.contains("panicked at"),
        "{what}: the runtime panicked: {o:?}"
    );
    b.assert_nothing_left(id);
}

// ---------------------------------------------------------------------------
// CVE-2024-21626 class: working directory / fds outside the root
// ---------------------------------------------------------------------------

/// `process.cwd` = `/proc/self/fd/N`: whatever the runtime holds open at N while it sets up the
/// process (runc < 1.1.12 held the host's /sys/fs/cgroup at 7 or 8) must not become the
/// container's working directory. Refusing is a pass.
#[test]
fn cwd_proc_self_fd_n_never_leaves_the_root() {
    for n in 3..=15 {
        let mut b = bundle("cwd-fd");
        let secret = HostSecret::new(&b, "cwd");
        b.set("/process/cwd", json!(format!("/proc/self/fd/{n}")));
        b.sh(&secret.probe());
        let id = b.new_id();
        let o = b.run_id(&id, &[]);
        let what = format!("process.cwd /proc/self/fd/{n}");
        if o.success() || o.stdout.contains("probe-done") {
            secret.assert_not_reached(&what, &o);
        } else {
            clean_refusal(&b, &id, &what, &o);
        }
    }
}

/// The caller holds fd 9 open on a host directory (not close-on-exec, as a careless caller or a
/// container manager would): `process.cwd` = `/proc/self/fd/9` must not put the container there.
#[test]
fn cwd_on_a_directory_fd_of_the_caller_does_not_reach_it() {
    let mut b = bundle("cwd-fd9");
    let hostdir = b.path().join("hostdir");
    std::fs::create_dir(&hostdir).unwrap();
    let secret = HostSecret {
        path: hostdir.join("in-host-dir"),
        content: format!("HOST-DIR-SECRET-{}", std::process::id()),
    };
    std::fs::write(&secret.path, format!("{}\n", secret.content)).unwrap();
    b.set("/process/cwd", json!("/proc/self/fd/9"));
    b.sh(&format!(
        "cat in-host-dir 2>/dev/null; ls -a; {}",
        secret.probe()
    ));
    let id = b.new_id();
    b.write_config(&id);
    let dir = b.path().to_string_lossy().into_owned();
    let fd = open_dir(&hostdir);
    let mut c = b.rt_cmd(&["run", "--bundle", &dir, &id]);
    let _keep = pass_fds(&mut c, &[(&fd, 9)]);
    let o = run_cmd(c, b.path(), CMD_TIMEOUT);
    let what = "process.cwd /proc/self/fd/9 with the caller's fd 9 on a host directory";
    if o.success() || o.stdout.contains("probe-done") {
        secret.assert_not_reached(what, &o);
    } else {
        clean_refusal(&b, &id, what, &o);
    }
}

/// `exec --cwd /proc/self/fd/N` (CVE-2024-21626 attack 1 through exec).
#[test]
fn exec_cwd_proc_self_fd_n_never_leaves_the_root() {
    let (b, id) = running("exec-cwd-fd");
    let secret = HostSecret::new(&b, "execcwd");
    for n in 3..=15 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = b.rt(&["exec", "--cwd", &cwd, &id, "sh", "-c", &secret.probe()]);
        secret.assert_not_reached(&format!("exec --cwd {cwd}"), &o);
    }
    b.rt(&["exec", &id, "true"]).ok();
}

/// `exec --cwd /proc/self/fd/9` with the caller's fd 9 open on a host directory.
#[test]
fn exec_cwd_on_a_directory_fd_of_the_caller_does_not_reach_it() {
    let (b, id) = running("exec-cwd-fd9");
    let hostdir = b.path().join("hostdir");
    std::fs::create_dir(&hostdir).unwrap();
    let secret = HostSecret {
        path: hostdir.join("in-host-dir"),
        content: format!("HOST-DIR-SECRET-{}", std::process::id()),
    };
    std::fs::write(&secret.path, format!("{}\n", secret.content)).unwrap();
    let fd = open_dir(&hostdir);
    let script = format!("cat in-host-dir 2>/dev/null; ls -a; {}", secret.probe());
    let mut c = b.rt_cmd(&["exec", "--cwd", "/proc/self/fd/9", &id, "sh", "-c", &script]);
    let _keep = pass_fds(&mut c, &[(&fd, 9)]);
    let o = run_cmd(c, b.path(), CMD_TIMEOUT);
    secret.assert_not_reached("exec --cwd /proc/self/fd/9 with the caller's fd 9", &o);
}

/// `--preserve-fds N` from a caller holding only stdio: fds 3.. that the caller does not have must
/// not be filled with the runtime's own. runc 1.1.5 hands over its O_PATH fd on the host's
/// /sys/fs/cgroup as fd 3, from which `..` climbs to the host's `/`: the container reads any
/// host file (checked: it prints the secret).
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 is vulnerable (CVE-2024-21626 class): --preserve-fds passes its own fd on the \
         host's /sys/fs/cgroup"
)]
fn berth_only_preserve_fds_never_hands_a_runtime_fd_to_the_container() {
    for n in ["1", "2", "4", "10"] {
        let mut b = bundle("preserve-leak");
        let secret = HostSecret::new(&b, "preserve");
        b.sh(&secret.probe());
        let id = b.new_id();
        let o = b.run_id(&id, &["--preserve-fds", n]);
        let what = format!("run --preserve-fds {n}");
        if o.success() || o.stdout.contains("probe-done") {
            secret.assert_not_reached(&what, &o);
        } else {
            clean_refusal(&b, &id, &what, &o);
        }
    }
    let (b, id) = running("preserve-leak-exec");
    let secret = HostSecret::new(&b, "preserveexec");
    for n in ["1", "2", "4", "10"] {
        let o = b.rt(&[
            "exec",
            "--preserve-fds",
            n,
            &id,
            "sh",
            "-c",
            &secret.probe(),
        ]);
        secret.assert_not_reached(&format!("exec --preserve-fds {n}"), &o);
    }
}

// ---------------------------------------------------------------------------
// CVE-2019-19921 class: a mount destination that is a symlink into /proc
// ---------------------------------------------------------------------------

/// The image has `/evil -> <link>`; the config mounts `mount` (destination `/evil`). Whatever the
/// runtime does, nothing may be mounted over procfs: inside, `check` must still be procfs, no mount
/// under `/proc` may be of another type, and the bind source's marker must not show there.
fn symlinked_destination(tag: &str, link: &str, tmpfs: bool, check: &str) {
    let mut b = bundle(tag);
    std::os::unix::fs::symlink(link, b.rootfs().join("evil")).unwrap();
    let src = b.path().join("evil-source");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("evil-marker"), "from-the-bind-source\n").unwrap();
    if tmpfs {
        b.mount(
            json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs",
                       "options": ["mode=755"]}),
        );
    } else {
        b.mount(
            json!({"destination": "/evil", "type": "bind", "source": src,
                       "options": ["rbind", "rw"]}),
        );
    }
    // No masks: any non-procfs mount at or under /proc is then the attack's.
    b.set("/linux/maskedPaths", json!([]));
    b.set("/linux/readonlyPaths", json!([]));
    b.sh(&format!(
        "echo type=$(stat -f -c %T {check}); \
         awk '$5 == \"/proc\" || $5 ~ \"^/proc/\" {{ for (i = 7; i <= NF; i++) if ($i == \"-\") {{ print \"mount=\" $5 \" \" $(i+1); break }} }}' /proc/self/mountinfo; \
         ls -A {check} /proc /proc/1/attr 2>/dev/null | grep -c evil-marker | sed 's/^/markers=/'"
    ));
    let id = b.new_id();
    let o = b.run_id(&id, &[]);
    let what = format!(
        "/evil -> {link} with a {} at /evil",
        if tmpfs { "tmpfs" } else { "bind" }
    );
    assert!(
        !o.stderr.contains("panicked at"),
        "{what}: the runtime panicked: {o:?}"
    );
    if !o.success() {
        b.assert_nothing_left(&id);
        return;
    }
    assert_eq!(
        o.kv("type"),
        "proc",
        "{what}: {check} is no longer procfs: {o:?}"
    );
    for l in o.lines() {
        if let Some(m) = l.strip_prefix("mount=") {
            assert!(
                m.ends_with(" proc"),
                "{what}: ESCAPE: a non-procfs mount over procfs: {m} ({o:?})"
            );
        }
    }
    assert_eq!(
        o.kv("markers"),
        "0",
        "{what}: the bind landed in /proc: {o:?}"
    );
}

#[test]
fn bind_on_a_symlink_to_proc_sys_does_not_cover_proc_sys() {
    symlinked_destination("evil-procsys", "/proc/sys", false, "/proc/sys");
}

#[test]
fn bind_on_a_symlink_to_proc_does_not_cover_proc() {
    symlinked_destination("evil-proc-bind", "/proc", false, "/proc");
}

#[test]
fn tmpfs_on_a_symlink_to_proc_does_not_cover_proc() {
    symlinked_destination("evil-proc-tmpfs", "/proc", true, "/proc");
}

#[test]
fn bind_on_a_symlink_to_proc_self_attr_does_not_cover_attr() {
    symlinked_destination("evil-attr", "/proc/self/attr", false, "/proc/1/attr");
}

/// The same with a relative link (`evil -> proc/sys`), resolved from `/`.
#[test]
fn bind_on_a_relative_symlink_to_proc_sys_does_not_cover_proc_sys() {
    symlinked_destination("evil-relsys", "proc/sys", false, "/proc/sys");
}

// ---------------------------------------------------------------------------
// CVE-2025-52881 class: procfs writes redirected by a racing mount
// ---------------------------------------------------------------------------

/// A shared volume (a host directory, as a volume shared with another, hostile, container) is
/// bind-mounted at `/shared`; a second mount binds a file of it onto `/shared/link/kernel/shmmax`.
/// While the runtime sets up the mounts, a host thread keeps swapping `shared/link` between a real
/// directory (holding `kernel/shmmax`) and a symlink `link -> ../proc/sys` (RENAME_EXCHANGE, so
/// one of the two is always there). A runtime that checks the destination and then mounts by path
/// can be made to bind the attacker's file onto the container's `/proc/sys/kernel/shmmax`, and its
/// own write of the `kernel.shmmax` sysctl then lands in that file instead of procfs.
///
/// Evidence, per try: the attacker's file still holds what it held; if the container ran, its
/// `/proc/sys/kernel/shmmax` is procfs with the configured value and no mount lies under
/// `/proc/sys/`. Each try is a full `run`, at most 20 tries or 60 s.
/// What one try of the race did.
enum RaceOutcome {
    /// The container ran, its bind on the decoy (the real directory).
    Decoy,
    /// The runtime refused (it saw the symlink), cleanly.
    Refused,
    /// The attack worked: why.
    Escaped(String),
}

/// One full `run` while `racers` host threads keep swapping `shared/link` and `shared/swap`.
fn race_try(attempt: u64, racers: usize) -> RaceOutcome {
    let mut b = bundle("race-sysctl");
    let shared = b.path().join("shared");
    std::fs::create_dir_all(shared.join("link/kernel")).unwrap();
    std::fs::write(shared.join("link/kernel/shmmax"), "decoy\n").unwrap();
    std::os::unix::fs::symlink("../proc/sys", shared.join("swap")).unwrap();
    let target = shared.join("attacker-file");
    std::fs::write(&target, "UNTOUCHED\n").unwrap();
    let value = (123_456_789 + attempt).to_string();
    b.mount(
        json!({"destination": "/shared", "type": "bind", "source": shared,
                   "options": ["rbind", "rw"]}),
    );
    b.mount(
        json!({"destination": "/shared/link/kernel/shmmax", "type": "bind",
                   "source": target, "options": ["bind", "rw"]}),
    );
    b.set("/linux/sysctl", json!({"kernel.shmmax": value}));
    b.sh("echo shmmax=$(cat /proc/sys/kernel/shmmax); \
          echo type=$(stat -f -c %T /proc/sys/kernel/shmmax); \
          awk '$5 ~ \"^/proc/sys/\" {print \"mount=\" $5}' /proc/self/mountinfo");
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..racers)
        .map(|_| {
            let stop = stop.clone();
            let (a, s) = (shared.join("link"), shared.join("swap"));
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = nix::fcntl::renameat2(
                        None,
                        &a,
                        None,
                        &s,
                        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                    );
                    swaps += 1;
                }
                swaps
            })
        })
        .collect();
    let id = b.new_id();
    let o = b.run_id(&id, &[]);
    stop.store(true, Ordering::Relaxed);
    let swaps: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("racer thread"))
        .sum();
    let what = format!("try {attempt} ({swaps} swaps)");
    assert!(
        !o.stderr.contains("panicked at"),
        "{what}: the runtime panicked: {o:?}"
    );
    let after = std::fs::read_to_string(&target).unwrap();
    if after != "UNTOUCHED\n" {
        return RaceOutcome::Escaped(format!(
            "{what}: the runtime's kernel.shmmax write landed in the attacker's file \
             (now {after:?}): {o:?}"
        ));
    }
    if !o.success() {
        b.assert_nothing_left(&id);
        return RaceOutcome::Refused;
    }
    let under: Vec<String> = o
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("mount="))
        .collect();
    if !under.is_empty() || o.kv("type") != "proc" || o.kv("shmmax") != value {
        return RaceOutcome::Escaped(format!(
            "{what}: a mount landed under /proc/sys: {under:?}: {o:?}"
        ));
    }
    RaceOutcome::Decoy
}

/// A shared volume (a host directory, as a volume shared with another, hostile, container) is
/// bind-mounted at `/shared`; a second mount binds a file of it onto `/shared/link/kernel/shmmax`.
/// While the runtime sets up the mounts, host threads keep swapping `shared/link` between a real
/// directory (holding `kernel/shmmax`) and a symlink `link -> ../proc/sys` (RENAME_EXCHANGE, so
/// one of the two is always there). A runtime that checks the destination and then mounts by path
/// can be made to bind the attacker's file onto the container's `/proc/sys/kernel/shmmax`, and its
/// own write of the `kernel.shmmax` sysctl then lands in that file instead of procfs.
///
/// Evidence, per try: the attacker's file still holds what it held; if the container ran, its
/// `/proc/sys/kernel/shmmax` is procfs with the configured value and no mount lies under
/// `/proc/sys/`. Each try is a full `run`; at most TRIES tries or 60 s.
///
/// runc 1.1.5 is vulnerable: it checks the destination (securejoin, then "inside /proc?") and
/// resolves it again for the mount; seen here: `mount=/proc/sys/kernel/shmmax` and the sysctl value
/// in the attacker's file, after 1 to 32 tries with two or three racing threads.
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 is vulnerable (CVE-2025-52881 class): the bind lands on /proc/sys"
)]
fn berth_only_racing_symlink_swap_never_redirects_a_mount_or_the_sysctl_write() {
    race(TRIES, 3);
}

const TRIES: u64 = 60;

fn race(tries: u64, racers: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut decoy, mut refused, mut done) = (0, 0, 0);
    for attempt in 0..tries {
        if Instant::now() > deadline {
            break;
        }
        done += 1;
        match race_try(attempt, racers) {
            RaceOutcome::Decoy => decoy += 1,
            RaceOutcome::Refused => refused += 1,
            RaceOutcome::Escaped(why) => panic!("ESCAPE after {done} tries: {why}"),
        }
    }
    eprintln!("race: {done} tries: {decoy} ran with the bind on the decoy, {refused} refused");
}

// ---------------------------------------------------------------------------
// LSM profiles
// ---------------------------------------------------------------------------

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// On a host without the LSM there is nothing to confine with: the field is not applied, and the
/// runtime says so on stderr, naming the field — never silently. berth deliberately differs from
/// runc 1.1.5 here, which fails the container (`apparmor failed to apply profile: write
/// /proc/self/attr/exec: invalid argument`, `selinux label is specified in config, but selinux is
/// disabled or not supported`, a tmpfs `context=` the kernel refuses): the spec does not ask for a
/// refusal, youki runs such containers too, and the OCI validation suite expects them to run.
fn runs_with_a_warning(name: &str, ptr: &str, value: Value, field: &str) {
    let mut b = bundle(name);
    b.set(ptr, value);
    b.args(&["echo", "ran"]);
    let id = b.new_id();
    let o = b.run_id(&id, &[]);
    o.ok();
    assert!(o.stdout.contains("ran"), "{o:?}");
    let err = conformance::log_messages(&o.stderr);
    assert!(
        err.contains(field) && err.contains("warning") && err.contains("not applied"),
        "the runtime dropped {field} without a word: {o:?}"
    );
    b.assert_nothing_left(&id);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 fails the container: EINVAL writing /proc/self/attr/exec"
)]
#[cfg_attr(
    all(berth_runtime, host_apparmor),
    ignore = "AppArmor is enabled on this host (see the ignored test)"
)]
fn berth_only_apparmor_profile_without_apparmor_runs_with_a_warning() {
    assert!(
        !apparmor_enabled(),
        "AppArmor is enabled on this host but was not where the test binary was built: rebuild it"
    );
    runs_with_a_warning(
        "aa-off",
        "/process/apparmorProfile",
        json!("berth-conformance-profile"),
        "process.apparmorProfile",
    );
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 refuses a selinuxLabel where SELinux is disabled"
)]
#[cfg_attr(
    all(berth_runtime, host_selinux),
    ignore = "SELinux is enabled on this host"
)]
fn berth_only_selinux_label_without_selinux_runs_with_a_warning() {
    assert!(
        !selinux_enabled(),
        "SELinux is enabled on this host but was not where the test binary was built: rebuild it"
    );
    runs_with_a_warning(
        "selinux-off",
        "/process/selinuxLabel",
        json!("system_u:system_r:container_t:s0:c1,c2"),
        "process.selinuxLabel",
    );
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1.5 passes context= to tmpfs, which the kernel refuses without SELinux"
)]
#[cfg_attr(
    all(berth_runtime, host_selinux),
    ignore = "SELinux is enabled on this host"
)]
fn berth_only_mount_label_without_selinux_runs_with_a_warning() {
    assert!(
        !selinux_enabled(),
        "SELinux is enabled on this host but was not where the test binary was built: rebuild it"
    );
    runs_with_a_warning(
        "mountlabel-off",
        "/linux/mountLabel",
        json!("system_u:object_r:container_file_t:s0:c1,c2"),
        "linux.mountLabel",
    );
}

/// With AppArmor: the process runs confined by the profile it asked for, in init and exec, and the
/// runtime's label write is not redirected (the profile shows in /proc/self/attr/current).
#[test]
#[ignore = "needs AppArmor enabled on the host (/sys/module/apparmor/parameters/enabled = Y)"]
fn apparmor_profile_confines_init_and_exec() {
    assert!(
        apparmor_enabled(),
        "AppArmor is not enabled on this host (/sys/module/apparmor/parameters/enabled)"
    );
    let name = format!("berth-conformance-{}", std::process::id());
    let dir = work_base().join(format!("apparmor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prof = dir.join("profile");
    std::fs::write(
        &prof,
        format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  capability,\n  \
             network,\n  mount,\n  umount,\n  signal,\n  ptrace,\n  deny /etc/hostname r,\n}}\n"
        ),
    )
    .unwrap();
    let load = Command::new("apparmor_parser")
        .arg("-r")
        .arg(&prof)
        .output()
        .expect("apparmor_parser");
    assert!(
        load.status.success(),
        "apparmor_parser -r: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    struct Unload(PathBuf, PathBuf);
    impl Drop for Unload {
        fn drop(&mut self) {
            let _ = Command::new("apparmor_parser")
                .arg("-R")
                .arg(&self.0)
                .output();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _unload = Unload(prof.clone(), dir.clone());
    let mut b = bundle("aa-on");
    b.set("/process/apparmorProfile", json!(name));
    b.sh("cat /proc/self/attr/current; cat /etc/hostname >/dev/null 2>&1 && echo read || echo denied; exec sleep 600");
    let id = b.new_id();
    b.run_id(&id, &["-d"]).ok();
    let pid = b.wait_status(&id, "running", T)["pid"].as_i64().unwrap();
    let cur = std::fs::read_to_string(format!("/proc/{pid}/attr/current")).unwrap();
    assert_eq!(cur.trim(), format!("{name} (enforce)"), "init's label");
    let o = b.rt(&["exec", &id, "cat", "/proc/self/attr/current"]);
    o.ok();
    assert_eq!(o.stdout.trim(), format!("{name} (enforce)"), "exec's label");
    let o = b.rt(&["exec", &id, "cat", "/etc/hostname"]);
    o.fails();
}
