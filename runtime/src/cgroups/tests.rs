//! Tests on the real host cgroups with real processes. Every cgroup name contains the test
//! process' pid; a guard kills the test's children and removes the cgroups even on failure.
//!
//! The cgroup v2 checks run in a private mount namespace where the host's cgroup2 mount
//! (/sys/fs/cgroup/unified) is bind-mounted over /sys/fs/cgroup: `v2_view` re-executes this test
//! binary under `unshare -m --propagation private` to run the #[ignore]d `v2_inner`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::*;

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "berth-test-{}-{tag}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources json")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Kills the children and removes the cgroup when dropped (also when a test panics).
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Guard {
    fn new(cgroups_path: Option<&str>, id: &str) -> Guard {
        let cfg = CgroupConfig::new(cgroups_path.map(Path::new), id, false).expect("config");
        Guard {
            cg: Cgroup::open(&cfg).expect("open"),
            children: Vec::new(),
        }
    }

    fn spawn(&mut self, cmd: &mut Command) -> i32 {
        let c = cmd.spawn().expect("spawn test child");
        let pid = c.id() as i32;
        self.children.push(c);
        pid
    }

    fn sleep(&mut self) -> i32 {
        self.spawn(Command::new("sleep").arg("1000"))
    }

    fn child(&mut self, pid: i32) -> &mut Child {
        self.children
            .iter_mut()
            .find(|c| c.id() as i32 == pid)
            .expect("child")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.cg.remove() {
            eprintln!("cleanup of test cgroup failed: {e:#}");
        }
    }
}

fn proc_state(pid: i32) -> char {
    let s = read(&PathBuf::from(format!("/proc/{pid}/stat")));
    // pid (comm) S ...
    s.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A block device "major:minor" for blkio throttling.
fn block_device() -> Option<String> {
    let mut devs: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    devs.sort_by_key(|d| d.file_name());
    let pick = devs
        .iter()
        .find(|d| {
            let n = d.file_name().to_string_lossy().into_owned();
            !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram")
        })
        .or(devs.first())?;
    Some(read(&pick.path().join("dev")))
}

fn own_cgroup(ctrl: &str) -> PathBuf {
    for l in read(Path::new("/proc/self/cgroup")).lines() {
        let mut p = l.splitn(3, ':');
        let (_, c, path) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
        if c.split(',').any(|x| x == ctrl) || (ctrl.is_empty() && c.is_empty()) {
            return PathBuf::from(path);
        }
    }
    panic!("no own cgroup for {ctrl}");
}

fn host_mode() -> Mode {
    HostLayout::read().unwrap().mode
}

// --------------------------------------------------------------------------- path resolution

#[test]
fn config_resolves_paths_like_runc() {
    let layout = HostLayout::read().unwrap();
    let id = unique("paths");
    // default: the id, relative to our own cgroup in every v1 hierarchy
    let cfg = CgroupConfig::new(None, &id, false).unwrap();
    assert_eq!(cfg.mode, layout.mode);
    assert!(cfg.requested_path.is_none());
    for (ctrl, h) in &cfg.v1 {
        let own = own_cgroup(ctrl);
        let expect = h.mount.join(own.strip_prefix("/").unwrap()).join(&id);
        assert_eq!(h.path, expect, "{ctrl}");
        assert!(!h.path.exists(), "new() must not create anything");
    }
    if let Some(u) = &cfg.unified {
        let own = own_cgroup("");
        let base = if cfg.mode == Mode::Unified {
            own.parent().unwrap_or(Path::new("/")).to_path_buf()
        } else {
            own
        };
        assert_eq!(
            u.path,
            u.mount.join(base.strip_prefix("/").unwrap()).join(&id)
        );
    }
    // absolute: below each hierarchy's root; ".." cannot climb out
    let cfg = CgroupConfig::new(Some(Path::new("/a/../../b/c")), &id, false).unwrap();
    for h in cfg.v1.values() {
        assert_eq!(h.path, h.mount.join("b/c"));
    }
    if let Some(u) = &cfg.unified {
        assert_eq!(u.path, u.mount.join("b/c"));
    }
    // relative: below our own cgroup
    let cfg = CgroupConfig::new(Some(Path::new("x/../../y")), &id, false).unwrap();
    for (ctrl, h) in &cfg.v1 {
        let own = own_cgroup(ctrl);
        assert_eq!(
            h.path,
            h.mount.join(own.strip_prefix("/").unwrap()).join("y")
        );
    }
    // the root itself is refused
    for bad in ["/", "..", "/.."] {
        let e = CgroupConfig::new(Some(Path::new(bad)), &id, false).unwrap_err();
        assert!(e.to_string().contains("cgroup root"), "{bad}: {e}");
    }
    // serialisable for state.json
    let json = serde_json::to_string(&cfg).unwrap();
    let back: CgroupConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn config_unified_uses_parent_of_own_cgroup() {
    let mi = "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let layout = HostLayout::parse(mi, "0::/user.slice/session-1.scope\n").unwrap();
    let cfg = CgroupConfig::from_layout(&layout, None, "ctr", false).unwrap();
    assert_eq!(cfg.mode, Mode::Unified);
    assert!(cfg.v1.is_empty());
    assert_eq!(
        cfg.unified.unwrap().path,
        Path::new("/sys/fs/cgroup/user.slice/ctr")
    );
    let cfg = CgroupConfig::from_layout(&layout, Some(Path::new("/k/ctr")), "ctr", false).unwrap();
    assert_eq!(cfg.unified.unwrap().path, Path::new("/sys/fs/cgroup/k/ctr"));
}

#[test]
fn systemd_driver_requires_systemd() {
    if Path::new(SYSTEMD_RUNNING).is_dir() {
        eprintln!("systemd is running here; this test checks the not-running error only");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("a.slice/a-b.slice/a-b-c.slice")
        );
        return;
    }
    let e = CgroupConfig::new(None, "x", true).unwrap_err().to_string();
    assert!(
        e.contains("systemd cgroup driver requested but systemd is not running"),
        "{e}"
    );
    assert_eq!(expand_slice("-.slice").unwrap(), Path::new(""));
    assert!(expand_slice("nope").is_err());
}

// --------------------------------------------------------------------------- checks

fn check_err(cg: &Cgroup, json: &str) -> String {
    format!("{:#}", cg.check(&resources(json)).unwrap_err())
}

#[test]
fn check_reports_missing_controllers_and_bad_values() {
    let id = unique("check");
    let g = Guard::new(Some(&format!("/{id}")), &id);
    let cg = &g.cg;
    let mode = cg.config().mode;
    let has = |c: &str| cg.config().v1.contains_key(c);

    if mode != Mode::Unified {
        if !has("rdma") {
            let e = check_err(
                cg,
                r#"{"rdma":{"mlx5_0":{"hcaHandles":3,"hcaObjects":100}}}"#,
            );
            assert!(
                e.contains("linux.resources.rdma: needs the rdma controller, which is not mounted on this host"),
                "{e}"
            );
        }
        if !has("net_cls") {
            let e = check_err(cg, r#"{"network":{"classID":1048577}}"#);
            assert!(e.contains("linux.resources.network.classID: needs the net_cls controller, which is not mounted"), "{e}");
        }
        if !has("net_prio") {
            let e = check_err(
                cg,
                r#"{"network":{"priorities":[{"name":"eth0","priority":5}]}}"#,
            );
            assert!(
                e.contains("linux.resources.network.priorities: needs the net_prio controller"),
                "{e}"
            );
        }
        let e = check_err(cg, r#"{"unified":{"memory.high":"1000000"}}"#);
        assert!(
            e.contains("linux.resources.unified: needs a cgroup v2 host"),
            "{e}"
        );
        if has("blkio") && v1::blkio_weight_files(&cg.config().v1["blkio"].mount).is_none() {
            // As runc 1.1: a weight alone is skipped (with a warning), per-device weights fail.
            let r: LinuxResources = serde_json::from_str(r#"{"blockIO":{"weight":500}}"#).unwrap();
            cg.check(&r).unwrap();
            let e = check_err(
                cg,
                r#"{"blockIO":{"weightDevice":[{"major":254,"minor":0,"weight":500}]}}"#,
            );
            assert!(
                e.contains(
                    "linux.resources.blockIO.weightDevice: this kernel has no blkio weight_device"
                ),
                "{e}"
            );
        }
    }
    let e = check_err(cg, r#"{"memory":{"limit":1048576,"swap":524288}}"#);
    assert!(e.contains("linux.resources.memory.swap"), "{e}");
    let e = check_err(cg, r#"{"memory":{"swappiness":200}}"#);
    assert!(e.contains("linux.resources.memory.swappiness"), "{e}");
    let e = check_err(cg, r#"{"memory":{"limit":-5}}"#);
    assert!(e.contains("linux.resources.memory.limit"), "{e}");
    let e = check_err(cg, r#"{"cpu":{"period":10}}"#);
    assert!(e.contains("linux.resources.cpu.period"), "{e}");
    let e = check_err(cg, r#"{"cpu":{"quota":5}}"#);
    assert!(e.contains("linux.resources.cpu.quota"), "{e}");
    let e = check_err(cg, r#"{"blockIO":{"weight":5}}"#);
    assert!(e.contains("linux.resources.blockIO.weight"), "{e}");
    let e = check_err(cg, r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#);
    assert!(
        e.contains("linux.resources.hugepageLimits[0].pageSize"),
        "{e}"
    );
    let e = check_err(
        cg,
        r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwq"}]}"#,
    );
    assert!(e.contains("linux.resources.devices[0].access"), "{e}");
    let e = check_err(cg, r#"{"devices":[{"allow":true,"type":"c"}]}"#);
    assert!(
        e.contains("linux.resources.devices[0].access: cannot be empty"),
        "{e}"
    );

    // apply validates too, and a failed check creates nothing
    assert!(cg
        .apply(&resources(r#"{"memory":{"swappiness":200}}"#))
        .is_err());
    for (_, p) in cg.paths() {
        assert!(!p.exists(), "{} created by check/apply", p.display());
    }
    // a fine config passes
    cg.check(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":10}}"#,
    ))
    .unwrap();
}

// --------------------------------------------------------------------------- lifecycle (v1/hybrid)

#[test]
fn v1_lifecycle_apply_freeze_stats_kill_remove() {
    if host_mode() == Mode::Unified {
        eprintln!("not a v1/hybrid host: covered by v2_view");
        return;
    }
    let id = unique("life");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    let pid = g.sleep();
    let cfg = g.cg.config().clone();
    let dev = block_device();
    let hybrid_hugetlb = cfg.mode == Mode::Hybrid && !cfg.v1.contains_key("hugetlb");
    let mut json = String::from(
        r#"{
        "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"}],
        "memory":{"limit":67108864,"swap":134217728,"reservation":33554432},
        "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
        "pids":{"limit":64},
        "hugepageLimits":[{"pageSize":"2MB","limit":4194304}]"#,
    );
    if let Some(d) = &dev {
        let (ma, mi) = d.split_once(':').unwrap();
        json.push_str(&format!(
            r#","blockIO":{{"throttleReadBpsDevice":[{{"major":{ma},"minor":{mi},"rate":1048576}}]}}"#
        ));
    }
    json.push('}');
    let r = resources(&json);
    g.cg.check(&r).expect("check");

    let t = Instant::now();
    g.cg.add(pid).expect("add");
    g.cg.apply(&r).expect("apply");
    eprintln!("add+apply: {:?}", t.elapsed());

    // every hierarchy has the process
    for (ctrl, p) in g.cg.paths() {
        let procs = read(&p.join("cgroup.procs"));
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{ctrl}: pid {pid} not in {}",
            p.display()
        );
    }
    let own = read(&PathBuf::from(format!("/proc/{pid}/cgroup")));
    assert!(own.contains(&format!(":memory:/{id}")), "{own}");

    let d = |c: &str| cfg.v1[c].path.clone();
    assert_eq!(read(&d("memory").join("memory.limit_in_bytes")), "67108864");
    assert_eq!(
        read(&d("memory").join("memory.memsw.limit_in_bytes")),
        "134217728"
    );
    assert_eq!(
        read(&d("memory").join("memory.soft_limit_in_bytes")),
        "33554432"
    );
    assert_eq!(read(&d("cpu").join("cpu.shares")), "512");
    assert_eq!(read(&d("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&d("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&d("cpuset").join("cpuset.cpus")), "0");
    assert_eq!(read(&d("cpuset").join("cpuset.mems")), "0");
    assert_eq!(read(&d("pids").join("pids.max")), "64");
    if let Some(dv) = &dev {
        assert_eq!(
            read(&d("blkio").join("blkio.throttle.read_bps_device")),
            format!("{dv} 1048576")
        );
    }
    if hybrid_hugetlb {
        let u = cfg.unified.as_ref().unwrap().path.clone();
        assert_eq!(read(&u.join("hugetlb.2MB.max")), "4194304");
    } else {
        assert_eq!(
            read(&d("hugetlb").join("hugetlb.2MB.limit_in_bytes")),
            "4194304"
        );
    }
    // deny-all first, then the user's allow and runc 1.1's defaults
    let mut list: Vec<String> = read(&d("devices").join("devices.list"))
        .lines()
        .map(str::to_string)
        .collect();
    list.sort();
    let mut want: Vec<String> = [
        "b *:* m",
        "c *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
        "c 10:229 rwm",
        "c 136:* rwm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.sort();
    assert_eq!(list, want);

    assert_eq!(g.cg.pids().unwrap(), vec![pid]);

    // freeze / thaw
    g.cg.freeze().expect("freeze");
    assert!(g.cg.is_frozen().unwrap());
    assert_eq!(read(&d("freezer").join("freezer.state")), "FROZEN");
    let st = proc_state(pid);
    assert!(st == 'D' || st == 'T', "frozen task state {st}");
    g.cg.thaw().expect("thaw");
    assert!(!g.cg.is_frozen().unwrap());
    assert_eq!(read(&d("freezer").join("freezer.state")), "THAWED");
    wait_until("thawed task sleeping", Duration::from_secs(2), || {
        proc_state(pid) == 'S'
    });

    // stats
    let s = g.cg.stats().expect("stats");
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 64);
    assert_eq!(s.memory.memory.limit, 67108864);
    assert_eq!(s.memory.memswap.limit, 134217728);
    // (sleep's pages stay charged to its old memory cgroup on v1, so usage can be 0)
    assert!(
        s.memory.stats.contains_key("total_rss"),
        "{:?}",
        s.memory.stats.keys()
    );
    assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb.keys());
    // a sleeping process may not have run since it joined: compare with the file instead of > 0
    let usage: u64 = read(&d("cpuacct").join("cpuacct.usage")).parse().unwrap();
    assert!(s.cpu.usage.usage_total <= usage);
    assert!(!s.cpu.usage.per_core_usage_total.is_empty());
    assert_eq!(g.cg.oom_kill_count().unwrap(), 0);

    // update-style re-apply with new values
    g.cg.apply(&resources(
        r#"{"memory":{"limit":33554432,"swap":67108864},"pids":{"limit":-1}}"#,
    ))
    .expect("re-apply");
    assert_eq!(read(&d("memory").join("memory.limit_in_bytes")), "33554432");
    assert_eq!(read(&d("pids").join("pids.max")), "max");

    // kill --all with SIGTERM
    g.cg.kill_all(libc::SIGTERM).expect("kill_all");
    let status = g.child(pid).wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(g.cg.pids().unwrap().is_empty());

    let t = Instant::now();
    g.cg.remove().expect("remove");
    eprintln!("remove (empty cgroup): {:?}", t.elapsed());
    for (ctrl, p) in g.cg.paths() {
        assert!(!p.exists(), "{ctrl}: {} left behind", p.display());
    }
    g.cg.remove().expect("remove is idempotent");
}

#[test]
fn kill_all_sigkill_reaches_forked_children_and_paused_containers() {
    let id = unique("killall");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    // a shell that waits for its go line, then forks two sleepers (children born in the cgroup)
    let pid = g.spawn(
        Command::new("sh")
            .args(["-c", "read x; sleep 1000 & sleep 1000 & echo started; wait"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    g.cg.add(pid).unwrap();
    g.cg.apply(&resources("{}")).unwrap();
    let c = g.child(pid);
    writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "started");
    let pids = g.cg.pids().unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    g.cg.freeze().unwrap(); // paused container
    g.cg.kill_all(libc::SIGKILL).unwrap();
    let status = g.child(pid).wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_until("all processes gone", Duration::from_secs(5), || {
        g.cg.pids().unwrap().is_empty()
    });
    assert!(
        !g.cg.is_frozen().unwrap(),
        "SIGKILL must thaw a paused container"
    );
    g.cg.remove().unwrap();
}

#[test]
fn remove_kills_leftovers_and_tolerates_missing() {
    let id = unique("remove");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    g.cg.remove().expect("never created: fine");
    let pid = g.sleep();
    g.cg.add(pid).unwrap();
    let t = Instant::now();
    g.cg.remove().expect("remove with a live process");
    eprintln!("remove (one live process): {:?}", t.elapsed());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(g.child(pid).wait().unwrap().signal(), Some(libc::SIGKILL));
    for (ctrl, p) in g.cg.paths() {
        assert!(!p.exists(), "{ctrl}: {} left behind", p.display());
    }
}

#[test]
fn default_path_nests_below_own_cgroups() {
    let id = unique("default");
    let mut g = Guard::new(None, &id);
    let pid = g.sleep();
    g.cg.add(pid).unwrap();
    let cg_of_child = read(&PathBuf::from(format!("/proc/{pid}/cgroup")));
    for (ctrl, _) in g.cg.paths() {
        let own = own_cgroup(&ctrl);
        let want = own.join(&id);
        let line = cg_of_child
            .lines()
            .find(|l| {
                let c = l.split(':').nth(1).unwrap();
                if ctrl.is_empty() {
                    c.is_empty()
                } else {
                    c.split(',').any(|x| x == ctrl)
                }
            })
            .unwrap();
        assert!(
            line.ends_with(&format!(":{}", want.display())),
            "{ctrl}: {line} (want {})",
            want.display()
        );
    }
    g.cg.remove().unwrap();
}

/// Spawn a shell in the cgroup that, once released, reports whether it can open two devices.
fn device_probe(g: &mut Guard, r: &LinuxResources) -> String {
    let pid = g.spawn(
        Command::new("sh")
            .args([
                "-c",
                "read x; (: </dev/null) 2>/dev/null && echo null-ok || echo null-denied; \
                 (: </dev/kmsg) 2>/dev/null && echo kmsg-ok || echo kmsg-denied",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    g.cg.add(pid).unwrap();
    g.cg.apply(r).unwrap();
    let c = g.child(pid);
    writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
    let out = c.wait_with_output_ref();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

trait WaitOut {
    fn wait_with_output_ref(&mut self) -> String;
}
impl WaitOut for Child {
    fn wait_with_output_ref(&mut self) -> String {
        let mut s = String::new();
        std::io::Read::read_to_string(self.stdout.as_mut().unwrap(), &mut s).unwrap();
        self.wait().unwrap();
        s
    }
}

#[test]
fn device_rules_are_enforced() {
    let id = unique("devices");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    let out = device_probe(
        &mut g,
        &resources(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#),
    );
    assert_eq!(out, "null-ok kmsg-denied");
    g.cg.remove().unwrap();
    // no rules at all still means "default deny + runc's defaults", as in runc
    let id = unique("devices-none");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    assert_eq!(
        device_probe(&mut g, &resources("{}")),
        "null-ok kmsg-denied"
    );
    g.cg.remove().unwrap();
    // an explicit allow-all (privileged containers) opens everything
    let id = unique("devices-all");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    let out = device_probe(
        &mut g,
        &resources(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#),
    );
    assert_eq!(out, "null-ok kmsg-ok");
    g.cg.remove().unwrap();
}

// --------------------------------------------------------------------------- cgroup v2 view

const V2_INNER_ENV: &str = "BERTH_CGROUPS_V2_INNER";

#[test]
fn v2_view() {
    if host_mode() != Mode::Hybrid {
        eprintln!(
            "the v2 view is built from a hybrid host's cgroup2 mount; host is {}",
            host_mode()
        );
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(&exe)
        .args([
            "--exact",
            "cgroups::tests::v2_inner",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(V2_INNER_ENV, std::process::id().to_string())
        .output()
        .expect("run unshare");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "v2 inner test failed");
    assert!(text.contains("V2-INNER-OK"), "inner test did not run");
    // nothing leaked: no test cgroup left in the host's cgroup2 mount, mounts unchanged
    // (other tests of this process run concurrently: only look at the inner test's names)
    let prefix = format!("berth-test-{}-v2", std::process::id());
    for e in std::fs::read_dir("/sys/fs/cgroup/unified")
        .unwrap()
        .flatten()
    {
        assert!(
            !e.file_name().to_string_lossy().starts_with(&prefix),
            "leftover {:?}",
            e.path()
        );
    }
    assert_eq!(
        host_mode(),
        Mode::Hybrid,
        "the bind mount leaked to the host"
    );
}

#[test]
#[ignore = "runs inside a private mount namespace, started by v2_view"]
fn v2_inner() {
    let parent = std::env::var(V2_INNER_ENV).expect("run through cgroups::tests::v2_view");
    nix::mount::mount(
        Some("/sys/fs/cgroup/unified"),
        "/sys/fs/cgroup",
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("bind the cgroup2 mount over /sys/fs/cgroup (private mount namespace)");
    assert_eq!(host_mode(), Mode::Unified);

    let id = format!("berth-test-{parent}-v2");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    let cfg = g.cg.config().clone();
    assert_eq!(cfg.mode, Mode::Unified);
    assert!(cfg.v1.is_empty());
    let dir = cfg.unified.as_ref().unwrap().path.clone();
    assert_eq!(dir, Path::new("/sys/fs/cgroup").join(&id));
    let avail = v2::available_controllers(Path::new("/sys/fs/cgroup"), &dir).unwrap();
    eprintln!("v2 controllers available here: {avail:?}");

    // errors for what this host's cgroup2 lacks, and v2-only rules
    for (json, want) in [
        (
            r#"{"memory":{"limit":1048576}}"#,
            "linux.resources.memory: needs the memory controller",
        ),
        (
            r#"{"pids":{"limit":5}}"#,
            "linux.resources.pids: needs the pids controller",
        ),
        (
            r#"{"cpu":{"shares":100}}"#,
            "linux.resources.cpu: needs the cpu controller",
        ),
        (r#"{"cpu":{"cpus":"0"}}"#, "needs the cpuset controller"),
        (
            r#"{"blockIO":{"weight":100}}"#,
            "linux.resources.blockIO: needs the io controller",
        ),
        (r#"{"network":{"classID":1}}"#, "do not exist in cgroup v2"),
        (
            r#"{"rdma":{"mlx4_0":{"hcaHandles":1}}}"#,
            "linux.resources.rdma: needs the rdma controller",
        ),
        (
            r#"{"cpu":{"realtimeRuntime":1000}}"#,
            "not supported on cgroup v2",
        ),
        (
            r#"{"memory":{"swappiness":10}}"#,
            "swappiness: not supported on cgroup v2",
        ),
        (
            r#"{"unified":{"memory.high":"1"}}"#,
            "needs the memory controller",
        ),
        (r#"{"unified":{"../x.y":"1"}}"#, "no slashes"),
        (r#"{"unified":{"hugetlb":"1"}}"#, "CONTROLLER.PARAMETER"),
    ] {
        if json.contains("memory\":{\"limit") && avail.iter().any(|c| c == "memory") {
            continue;
        }
        let e = check_err(&g.cg, json);
        assert!(e.contains(want), "{json}: {e}");
    }

    let pid = g.sleep();
    g.cg.add(pid).unwrap();
    assert!(read(&dir.join("cgroup.procs"))
        .lines()
        .any(|l| l == pid.to_string()));
    let r = resources(
        r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "unified":{"hugetlb.1GB.max":"0"},
            "devices":[{"allow":false,"access":"rwm"}]}"#,
    );
    g.cg.apply(&r).expect("apply on v2");
    assert_eq!(read(&dir.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(read(&dir.join("hugetlb.1GB.max")), "0");
    assert_eq!(g.cg.pids().unwrap(), vec![pid]);

    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    eprintln!("v2 frozen task state: {}", proc_state(pid));
    g.cg.thaw().unwrap();
    assert!(!g.cg.is_frozen().unwrap());
    assert!(read(&dir.join("cgroup.events")).contains("frozen 0"));

    let s = g.cg.stats().unwrap();
    assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb.keys());
    assert!(s.cpu.usage.usage_total > 0);
    assert!(g.cg.oom_kill_count().is_err(), "memory is not enabled here");

    // SIGKILL goes through cgroup.kill
    g.cg.kill_all(libc::SIGKILL).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(g.child(pid).wait().unwrap().signal(), Some(libc::SIGKILL));
    g.cg.remove().unwrap();
    assert!(!dir.exists());

    // the eBPF device filter
    let id2 = format!("berth-test-{parent}-v2dev");
    let mut g2 = Guard::new(Some(&format!("/{id2}")), &id2);
    let out = device_probe(&mut g2, &resources("{}"));
    assert_eq!(
        out, "null-ok kmsg-denied",
        "no rules = default deny + runc defaults"
    );
    let id3 = format!("berth-test-{parent}-v2dev-all");
    let mut g3 = Guard::new(Some(&format!("/{id3}")), &id3);
    let out = device_probe(
        &mut g3,
        &resources(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#),
    );
    assert_eq!(out, "null-ok kmsg-ok", "allow-all rule");
    g3.cg.remove().unwrap();
    drop(g3);
    // re-apply replaces the filter (no stacking): allow everything again
    g2.cg
        .apply(&resources(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#))
        .unwrap();
    let d2 = g2.cg.config().unified.as_ref().unwrap().path.clone();
    let f = std::fs::File::open(&d2).unwrap();
    let progs =
        libcgroups::v2::devices::bpf::prog::query(std::os::fd::AsRawFd::as_raw_fd(&f)).unwrap();
    for p in &progs {
        let _ = nix::unistd::close(p.fd);
    }
    assert_eq!(progs.len(), 1, "exactly one device filter after re-apply");
    g2.cg.remove().unwrap();
    drop(g2);
    drop(g);
    println!("V2-INNER-OK");
}

#[test]
fn update_writes_only_updatable_resources_and_rolls_back_refusals() {
    if host_mode() == Mode::Unified {
        eprintln!("SKIPPED: v1/hybrid test");
        return;
    }
    let id = unique("update");
    let mut g = Guard::new(Some(&format!("/{id}")), &id);
    let pid = g.sleep();
    g.cg.add(pid).unwrap();
    let r = resources(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"}],
            "memory":{"limit":134217728,"swap":268435456},
            "cpu":{"shares":1024,"quota":100000,"period":100000},"pids":{"limit":100}}"#,
    );
    g.cg.apply(&r).unwrap();
    let cfg = g.cg.config().clone();
    let d = |c: &str| cfg.v1[c].path.clone();
    let files = [
        d("cpu").join("cpu.shares"),
        d("cpu").join("cpu.cfs_quota_us"),
        d("cpu").join("cpu.cfs_period_us"),
        d("cpuset").join("cpuset.cpus"),
        d("memory").join("memory.limit_in_bytes"),
        d("memory").join("memory.memsw.limit_in_bytes"),
        d("pids").join("pids.max"),
        d("devices").join("devices.list"),
    ];
    let snap = || files.iter().map(|f| read(f)).collect::<Vec<_>>();
    let before = snap();

    // shares and quota are written, then the kernel refuses the cpuset: everything is put back
    let bad = resources(r#"{"cpu":{"shares":512,"quota":20000,"period":100000,"cpus":"0-4095"}}"#);
    let err = format!("{:#}", g.cg.update(&bad).unwrap_err());
    assert!(err.contains("cpuset.cpus"), "{err}");
    assert_eq!(snap(), before);
    // refused by the checks before anything is written
    let err = format!(
        "{:#}",
        g.cg.update(&resources(r#"{"cpu":{"shares":1}}"#))
            .unwrap_err()
    );
    assert!(err.contains("cpu.shares"), "{err}");
    assert_eq!(snap(), before);

    // a good update: memory lowered below the old swap first, devices and hugepages untouched
    let ok = resources(
        r#"{"memory":{"limit":67108864,"swap":100663296},"pids":{"limit":7},
            "devices":[{"allow":true,"access":"rwm"}],"hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
    );
    g.cg.update(&ok).unwrap();
    let after = snap();
    assert_eq!(after[4], "67108864");
    assert_eq!(after[5], "100663296");
    assert_eq!(after[6], "7");
    assert_eq!(
        after[7], before[7],
        "update must not touch the device rules"
    );
    assert_eq!(&after[..4], &before[..4]);
}

#[test]
fn a_cgroup_frozen_by_its_parent_is_not_paused() {
    if host_mode() == Mode::Unified {
        eprintln!("SKIPPED: v1 freezer test");
        return;
    }
    let parent = unique("frozen-parent");
    let id = unique("frozen-child");
    let mut g = Guard::new(Some(&format!("/{parent}/{id}")), &id);
    let pid = g.sleep();
    g.cg.add(pid).unwrap();
    let fz = g.cg.config().v1["freezer"].path.clone();
    let pfz = fz.parent().unwrap().to_path_buf();
    struct Thaw(PathBuf);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        }
    }
    let _thaw = Thaw(pfz.clone());
    std::fs::write(pfz.join("freezer.state"), "FROZEN").unwrap();
    wait_until("parent frozen", Duration::from_secs(5), || {
        read(&fz.join("freezer.state")) == "FROZEN"
    });
    assert!(!g.cg.is_frozen().unwrap(), "frozen only by its parent");
    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    assert!(g.cg.config().is_frozen().unwrap());
    g.cg.thaw().unwrap();
    std::fs::write(pfz.join("freezer.state"), "THAWED").unwrap();
    assert!(!g.cg.is_frozen().unwrap());
    // the Guard removes the child; the parent directories go here
    drop(g);
    for h in cfg_parents(&parent) {
        let _ = std::fs::remove_dir(h);
    }
}

/// The directories of an absolute cgroup path in every v1 hierarchy and the unified one.
fn cfg_parents(path: &str) -> Vec<PathBuf> {
    let cfg = CgroupConfig::new(Some(Path::new(&format!("/{path}"))), "x", false).unwrap();
    cfg.v1
        .values()
        .map(|h| h.path.clone())
        .chain(cfg.unified.iter().map(|h| h.path.clone()))
        .collect()
}
