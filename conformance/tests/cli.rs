//! runc's command line beyond the runtime-spec lifecycle: ps, list, pause/resume, events, update,
//! features, spec --rootless — output formats, effects on the host (cgroup files, frozen
//! processes) and the errors for bad input (exit code 1, a message naming the problem, nothing
//! changed). Everything here passes with runc 1.1.5 except the `berth_only_` tests.

use conformance::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A runtime command left running in the background (events), killed on drop.
struct Bg {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    fn spawn(b: &Bundle, args: &[&str]) -> Bg {
        let n = format!("{}-{}", args[0], std::process::id());
        let out = b.path().join(format!("bg-{n}.out"));
        let err = b.path().join(format!("bg-{n}.err"));
        let mut c = b.rt_cmd(args);
        c.stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        Bg {
            child: c.spawn().expect("spawn the runtime"),
            out,
            err,
        }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The JSON lines printed so far.
    fn events(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("events printed a line that is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Wait until `pred` holds for the events printed so far.
    fn wait_events(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + T;
        loop {
            let ev = self.events();
            if pred(&ev) {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "events: no {what} within {T:?}; printed:\n{}\nstderr: {}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A started container running `script`; returns (id, init pid).
fn running(b: &mut Bundle, script: &str) -> (String, i32) {
    b.sh(script);
    let id = b.create_ok();
    b.start(&id).ok();
    let st = b.wait_status(&id, "running", T);
    (id, st["pid"].as_i64().unwrap() as i32)
}

/// Wait until the init `pid` has exec'd `sleep` (its shell, and any child like `touch`, gone).
fn settled(pid: i32) {
    let deadline = Instant::now() + T;
    while fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            Instant::now() < deadline,
            "the init {pid} did not exec sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Read a cgroup file of `pid`: the v1 name on v1/hybrid hosts, the v2 name on pure v2.
fn cg(pid: i32, ctrl: &str, v1: &str, v2: &str) -> String {
    if cgroup_v2() {
        cgroup_read(pid, ctrl, v2)
    } else {
        cgroup_read(pid, ctrl, v1)
    }
}

/// Fails unless the host has these controllers. A pure v2 host may lack some: the tests of
/// resources are marked ignored by the build then (`host_cgroup_<controller>` cfgs), so reaching
/// this without one means the test binary was built on another host.
fn assert_controllers(ctrls: &[&str]) {
    let have = |ctrl: &str| {
        if cgroup_v2() {
            fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
                .is_ok_and(|c| c.split_whitespace().any(|x| x == ctrl))
        } else {
            cgroup_hierarchies().iter().any(|h| {
                h.file_name()
                    .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == ctrl))
            })
        }
    };
    let missing: Vec<&&str> = ctrls.iter().filter(|c| !have(c)).collect();
    assert!(
        missing.is_empty(),
        "the host has no {missing:?} cgroup controller, but the test binary was built where it \
         had them: rebuild it"
    );
}

/// The cgroup files `update` may change, as (name, value) for `pid`.
fn resource_files(pid: i32) -> Vec<(String, String)> {
    let files: &[(&str, &str, &str)] = &[
        ("memory", "memory.limit_in_bytes", "memory.max"),
        ("memory", "memory.soft_limit_in_bytes", "memory.low"),
        ("pids", "pids.max", "pids.max"),
        ("cpu", "cpu.shares", "cpu.weight"),
        ("cpu", "cpu.cfs_quota_us", "cpu.max"),
        ("cpu", "cpu.cfs_period_us", "cpu.max"),
        ("cpuset", "cpuset.cpus", "cpuset.cpus"),
    ];
    let mut out: Vec<(String, String)> = files
        .iter()
        .map(|(c, v1, v2)| (format!("{c}/{v1}"), cg(pid, c, v1, v2)))
        .collect();
    if !cgroup_v2() {
        let d = cgroup_dir_of(pid, "memory").unwrap();
        if let Ok(v) = fs::read_to_string(d.join("memory.memsw.limit_in_bytes")) {
            out.push(("memory.memsw.limit_in_bytes".into(), v.trim().into()));
        }
    }
    out
}

/// The runtime's stdout must be one JSON document.
#[track_caller]
fn json_out(o: &Out) -> Value {
    o.ok();
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("`{}` did not print JSON ({e}):\n{}", o.cmd, o.stdout))
}

/// The pids of `ps -f json`.
#[track_caller]
fn ps_pids(b: &Bundle, id: &str) -> BTreeSet<i64> {
    let v = json_out(&b.rt(&["ps", "--format", "json", id]));
    if v.is_null() {
        return BTreeSet::new();
    }
    v.as_array()
        .unwrap_or_else(|| panic!("ps -f json: not an array: {v}"))
        .iter()
        .map(|p| p.as_i64().expect("pid"))
        .collect()
}

/// Runtime errors: exit code 1 and a message naming the problem.
#[track_caller]
fn fails_1(o: &Out, words: &[&str]) {
    o.fails_naming(words);
    assert_eq!(o.code, 1, "`{}` should exit 1\nstderr: {}", o.cmd, o.stderr);
}

// ---------------------------------------------------------------- ps

#[test]
fn ps_json_lists_every_process_of_the_container() {
    let mut b = bundle("psjson");
    let (id, pid) = running(&mut b, "sleep 100 & sleep 101 & exec sleep 102");
    settled(pid);
    let pids = ps_pids(&b, &id);
    assert!(pids.contains(&(pid as i64)), "init {pid} not in {pids:?}");
    let cgpath = Bundle::cgroup_path_for(&id);
    let expected: BTreeSet<i64> = processes_of(&id, &cgpath)
        .into_iter()
        .map(i64::from)
        .collect();
    assert_eq!(pids, expected, "ps -f json vs the container's cgroup");
    assert_eq!(pids.len(), 3, "{pids:?}");
}

#[test]
fn ps_table_is_ps_output_filtered_to_the_container() {
    let mut b = bundle("pstable");
    let (id, pid) = running(&mut b, "sleep 100 & exec sleep 101");
    settled(pid);
    let want = ps_pids(&b, &id);

    // default: ps -ef
    let o = b.rt(&["ps", &id]);
    o.ok();
    let lines = o.lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{}",
        o.stdout
    );
    let got: BTreeSet<i64> = lines[1..]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, want, "ps table lines:\n{}", o.stdout);
    assert!(o.stdout.contains("sleep 101"), "{}", o.stdout);

    // ps options after the id; the PID column is found wherever it is
    let o = b.rt(&["ps", &id, "-o", "comm,pid"]);
    o.ok();
    let lines = o.lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["COMMAND", "PID"],
        "{}",
        o.stdout
    );
    let rows: BTreeSet<(String, i64)> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect();
    assert!(
        rows.contains(&("sleep".to_string(), pid as i64)),
        "{rows:?}"
    );
    assert_eq!(rows.len(), want.len());

    // without a PID column there is nothing to filter on
    fails_1(&b.rt(&["ps", &id, "-o", "comm"]), &["pid"]);
}

#[test]
fn ps_of_unknown_and_stopped_containers() {
    let mut b = bundle("psbad");
    fails_1(
        &b.rt(&["ps", "no-such-container"]),
        &["not exist", "no such"],
    );
    fails_1(
        &b.rt(&["ps", "-f", "json", "no-such-container"]),
        &["not exist", "no such"],
    );
    b.args(&["true"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    // a stopped container has no processes: an empty list (runc prints null), the header only
    assert!(ps_pids(&b, &id).is_empty());
    let o = b.rt(&["ps", &id]);
    o.ok();
    assert_eq!(o.lines().len(), 1, "{}", o.stdout);
    b.delete(&id).ok();
}

// ---------------------------------------------------------------- list

#[test]
fn list_table_json_and_quiet() {
    let mut b = bundle("list");
    // an empty root
    let o = b.rt(&["list"]);
    o.ok();
    assert_eq!(
        o.lines()[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    assert_eq!(o.lines().len(), 1, "{}", o.stdout);
    let v = json_out(&b.rt(&["list", "--format", "json"]));
    assert!(v.is_null() || v == json!([]), "{v}");
    assert_eq!(b.rt(&["list", "-q"]).stdout, "");

    b.args(&["sleep", "100"]);
    let created = b.create_ok();
    let (running_id, _) = running(&mut b, "exec sleep 100");
    b.args(&["true"]);
    let stopped = b.create_ok();
    b.start(&stopped).ok();
    b.wait_status(&stopped, "stopped", T);
    // a directory without state (a create in progress) is skipped
    fs::create_dir(b.state_root().join("half-created")).unwrap();

    let mut ids = vec![created.clone(), running_id.clone(), stopped.clone()];
    ids.sort();
    let o = b.rt(&["list", "-q"]);
    o.ok();
    assert_eq!(o.lines(), ids, "list -q prints the ids, sorted");

    let states: Vec<Value> = ids.iter().map(|id| b.state_json(id)).collect();
    let v = json_out(&b.rt(&["list", "-f", "json"]));
    let arr = v.as_array().expect("list -f json is an array");
    assert_eq!(arr.len(), 3, "{v}");
    for (item, st) in arr.iter().zip(&states) {
        for k in ["id", "pid", "status", "bundle", "created"] {
            assert_eq!(item[k], st[k], "list json {k} vs state: {item} / {st}");
        }
        assert_eq!(item["rootfs"], json!(b.rootfs().to_str().unwrap()));
        assert_eq!(item["owner"], "root", "{item}");
    }

    let o = b.rt(&["list"]);
    o.ok();
    let lines = o.lines();
    assert_eq!(lines.len(), 4, "{}", o.stdout);
    let header = &lines[0];
    let cols: Vec<usize> = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .iter()
        .map(|h| header.find(h).unwrap())
        .collect();
    for (line, st) in lines[1..].iter().zip(&states) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let want = [
            st["id"].as_str().unwrap().to_string(),
            st["pid"].to_string(),
            st["status"].as_str().unwrap().to_string(),
            st["bundle"].as_str().unwrap().to_string(),
            st["created"].as_str().unwrap().to_string(),
            "root".to_string(),
        ];
        assert_eq!(fields, want, "table row {line:?}");
        // aligned: every field starts at its header's column
        for (c, f) in cols.iter().zip(&want) {
            assert_eq!(
                line.get(*c..*c + f.len()),
                Some(f.as_str()),
                "column of {f} in {line:?} (header {header:?})"
            );
        }
    }
    // at least 3 spaces between columns, columns at least 12 wide (Go tabwriter as runc uses it)
    assert!(cols.windows(2).all(|w| w[1] - w[0] >= 12), "{header:?}");
    for line in &lines {
        for c in &cols[1..] {
            assert_eq!(&line[c - 3..*c], "   ", "{line:?}");
        }
    }
}

// ---------------------------------------------------------------- pause / resume

/// The counter the container writes every 20 ms.
fn tick(b: &Bundle) -> u64 {
    let deadline = Instant::now() + T;
    loop {
        if let Ok(v) = fs::read_to_string(b.rootfs().join("tick"))
            .unwrap_or_default()
            .trim()
            .parse()
        {
            return v;
        }
        assert!(Instant::now() < deadline, "no tick from the container");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn freezer_state(pid: i32) -> String {
    if cgroup_v2() {
        cgroup_read(pid, "", "cgroup.freeze")
    } else {
        cgroup_read(pid, "freezer", "freezer.state")
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let mut b = bundle("pause");
    let (id, pid) = running(
        &mut b,
        "i=0; while :; do i=$((i+1)); echo $i > /tick.new; mv /tick.new /tick; sleep 0.02; done",
    );
    tick(&b);
    b.rt(&["pause", &id]).ok();
    let st = b.state_json(&id);
    assert_eq!(st["status"], "paused", "{st}");
    assert_eq!(st["pid"], json!(pid));
    assert_eq!(freezer_state(pid), if cgroup_v2() { "1" } else { "FROZEN" });
    let listed = json_out(&b.rt(&["list", "-f", "json"]));
    assert_eq!(listed[0]["status"], "paused", "{listed}");
    let t0 = tick(&b);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tick(&b), t0, "the container kept running while paused");

    b.rt(&["resume", &id]).ok();
    assert_eq!(b.state_json(&id)["status"], "running");
    assert_eq!(freezer_state(pid), if cgroup_v2() { "0" } else { "THAWED" });
    let deadline = Instant::now() + T;
    while tick(&b) <= t0 {
        assert!(Instant::now() < deadline, "no progress after resume");
        std::thread::sleep(Duration::from_millis(20));
    }

    // paused containers can be killed and force-deleted
    b.rt(&["pause", &id]).ok();
    b.delete_force(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn pause_and_resume_refuse_the_wrong_state() {
    let mut b = bundle("pausebad");
    let (id, pid) = running(&mut b, "exec sleep 100");
    fails_1(&b.rt(&["resume", &id]), &["not paused"]);
    assert_eq!(b.state_json(&id)["status"], "running");

    b.rt(&["pause", &id]).ok();
    fails_1(&b.rt(&["pause", &id]), &["paused", "not running"]);
    assert_eq!(b.state_json(&id)["status"], "paused");
    assert_eq!(freezer_state(pid), if cgroup_v2() { "1" } else { "FROZEN" });
    b.rt(&["resume", &id]).ok();

    fails_1(&b.rt(&["pause", "no-such-container"]), &["not exist"]);
    fails_1(&b.rt(&["resume", "no-such-container"]), &["not exist"]);

    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    fails_1(&b.rt(&["pause", &id]), &["not running"]);
    fails_1(&b.rt(&["resume", &id]), &["not paused"]);
    assert_eq!(b.state_json(&id)["status"], "stopped");
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
fn a_created_container_can_be_paused_before_start() {
    let mut b = bundle("pausecreated");
    b.sh("touch /started; exec sleep 100");
    let id = b.create_ok();
    b.rt(&["pause", &id]).ok();
    assert_eq!(b.state_json(&id)["status"], "paused");
    b.start(&id).fails();
    b.rt(&["resume", &id]).ok();
    assert_eq!(b.state_json(&id)["status"], "created");
    assert!(!b.rootfs().join("started").exists());
    b.start(&id).ok();
    assert!(b.wait_rootfs_file("started", T));
    b.wait_status(&id, "running", T);
    b.delete_force(&id).ok();
}

// ---------------------------------------------------------------- events

fn with_limits(b: &mut Bundle) {
    b.set(
        "/linux/resources/memory",
        json!({"limit": 64 << 20, "swap": 64 << 20}),
    );
    b.set("/linux/resources/pids", json!({"limit": 50}));
}

#[test]
#[cfg_attr(
    not(all(host_cgroup_memory, host_cgroup_pids)),
    ignore = "the host has no memory or pids cgroup controller"
)]
fn events_stats_prints_one_stats_event() {
    assert_controllers(&["memory", "pids"]);
    let mut b = bundle("evstats");
    with_limits(&mut b);
    let (id, pid) = running(
        &mut b,
        "sleep 100 & i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 101",
    );
    settled(pid);
    let o = b.rt(&["events", "--stats", &id]);
    o.ok();
    assert_eq!(o.lines().len(), 1, "one event: {}", o.stdout);
    let ev: Value = serde_json::from_str(&o.stdout).expect("JSON event");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], json!(id));
    let d = &ev["data"];
    for k in [
        "cpu",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    ] {
        assert!(d.get(k).is_some(), "no {k} in {d}");
    }
    assert_eq!(d["pids"]["current"], json!(2), "{}", d["pids"]);
    assert_eq!(d["pids"]["limit"], json!(50), "{}", d["pids"]);
    assert_eq!(d["memory"]["usage"]["limit"], json!(64 << 20));
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(d["memory"]["usage"].get("failcnt").is_some());
    assert!(d["memory"]["raw"].is_object(), "{}", d["memory"]);
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(d["cpu"]["usage"].get("kernel").is_some() && d["cpu"]["usage"].get("user").is_some());
    assert!(d["cpu"]["throttling"].is_object());
    if !cgroup_v2() {
        // v1 memory+swap, the cpuset controller's lists
        assert_eq!(d["memory"]["swap"]["limit"], json!(64 << 20));
        assert!(
            !d["cpuset"]["cpus"].as_array().unwrap().is_empty(),
            "{}",
            d["cpuset"]
        );
    }
    // a created container has stats too
    b.args(&["sleep", "100"]);
    let created = b.create_ok();
    let o = b.rt(&["events", "--stats", &created]);
    o.ok();
    let ev: Value = serde_json::from_str(&o.stdout).expect("JSON event");
    // the waiting init (tasks: runc's has several threads)
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{ev}");
}

#[test]
#[cfg_attr(
    not(all(host_cgroup_memory, host_cgroup_pids)),
    ignore = "the host has no memory or pids cgroup controller"
)]
fn events_streams_stats_every_interval_until_the_container_is_gone() {
    assert_controllers(&["memory", "pids"]);
    let mut b = bundle("evstream");
    let (id, _) = running(&mut b, "exec sleep 100");
    let mut ev = Bg::spawn(&b, &["events", "--interval", "200ms", &id]);
    let got = ev.wait_events("3 stats events", |e| e.len() >= 3);
    for e in &got {
        assert_eq!(e["type"], "stats", "{e}");
        assert_eq!(e["id"], json!(id));
        assert_eq!(e["data"]["pids"]["current"], json!(1));
    }
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    b.delete(&id).ok();
    // runc ends when the cgroup is removed, berth when the init exits: both exit 0 by now
    let code = wait_child(&mut ev.child, T);
    assert_eq!(code, Some(0), "events: {}", ev.stderr());
}

#[test]
#[cfg_attr(
    not(all(host_cgroup_memory, host_cgroup_pids)),
    ignore = "the host has no memory or pids cgroup controller"
)]
fn events_reports_oom_kills() {
    assert_controllers(&["memory", "pids"]);
    let mut b = bundle("evoom");
    b.set(
        "/linux/resources/memory",
        json!({"limit": 16 << 20, "swap": 16 << 20}),
    );
    // dd's 64 MiB buffer is faulted in at once and dd is OOM-killed; the init survives
    let (id, _) = running(
        &mut b,
        "while [ ! -e /go ]; do sleep 0.02; done; \
         dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; touch /after; exec sleep 100",
    );
    let mut ev = Bg::spawn(&b, &["events", "--interval", "1s", &id]);
    std::thread::sleep(Duration::from_millis(700));
    fs::write(b.rootfs().join("go"), "").unwrap();
    assert!(
        b.wait_rootfs_file("after", Duration::from_secs(30)),
        "the memory hog did not end"
    );
    let got = ev.wait_events("oom event", |e| e.iter().any(|x| x["type"] == "oom"));
    let oom = got.iter().find(|x| x["type"] == "oom").unwrap();
    assert_eq!(oom, &json!({"type": "oom", "id": id}));
    assert_eq!(b.state_json(&id)["status"], "running");
    b.delete_force(&id).ok();
    assert_eq!(wait_child(&mut ev.child, T), Some(0), "{}", ev.stderr());
}

#[test]
fn events_refuses_bad_input() {
    let mut b = bundle("evbad");
    fails_1(
        &b.rt(&["events", "--stats", "no-such-container"]),
        &["not exist"],
    );
    let (id, _) = running(&mut b, "exec sleep 100");
    fails_1(&b.rt(&["events", "--interval", "0s", &id]), &["interval"]);
    b.kill(&id, "KILL").ok();
    b.wait_status(&id, "stopped", T);
    fails_1(&b.rt(&["events", "--stats", &id]), &["not running"]);
    fails_1(&b.rt(&["events", &id]), &["not running"]);
    b.delete(&id).ok();
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc keeps printing until the container's cgroup is removed by delete"
)]
fn berth_only_events_ends_when_the_container_stops() {
    let mut b = bundle("evstop");
    let (id, _) = running(
        &mut b,
        "while [ ! -e /go ]; do sleep 0.02; done; sleep 0.3; exit 3",
    );
    let mut ev = Bg::spawn(&b, &["events", "--interval", "100ms", &id]);
    std::thread::sleep(Duration::from_millis(300));
    fs::write(b.rootfs().join("go"), "").unwrap();
    let code = wait_child(&mut ev.child, T);
    assert_eq!(code, Some(0), "events: {}", ev.stderr());
    assert!(!ev.events().is_empty());
    assert_eq!(b.state_json(&id)["status"], "stopped");
}

// ---------------------------------------------------------------- update

/// A started container with memory, pids and cpu limits.
fn limited(tag: &str) -> (Bundle, String, i32) {
    let mut b = bundle(tag);
    b.set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 128 << 20, "swap": 256 << 20},
            "pids": {"limit": 100},
            "cpu": {"shares": 1024, "quota": 100000, "period": 100000}
        }),
    );
    let (id, pid) = running(&mut b, "exec sleep 100");
    (b, id, pid)
}

fn memory_limit(pid: i32) -> String {
    cg(pid, "memory", "memory.limit_in_bytes", "memory.max")
}

/// memory+swap as the spec counts it.
fn memsw_limit(pid: i32) -> i64 {
    if cgroup_v2() {
        let swap: i64 = cgroup_read(pid, "memory", "memory.swap.max")
            .parse()
            .unwrap();
        swap + memory_limit(pid).parse::<i64>().unwrap()
    } else {
        cgroup_read(pid, "memory", "memory.memsw.limit_in_bytes")
            .parse()
            .unwrap()
    }
}

#[test]
#[cfg_attr(
    not(all(
        host_cgroup_memory,
        host_cgroup_pids,
        host_cgroup_cpu,
        host_cgroup_cpuset
    )),
    ignore = "the host has no memory, pids, cpu or cpuset cgroup controller"
)]
fn update_flags_change_the_cgroup() {
    assert_controllers(&["memory", "pids", "cpu", "cpuset"]);
    let (b, id, pid) = limited("updflags");
    b.rt(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "96m",
        "--pids-limit",
        "20",
        "--cpu-share",
        "512",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "200000",
        &id,
    ])
    .ok();
    assert_eq!(memory_limit(pid), (64 << 20).to_string());
    assert_eq!(memsw_limit(pid), 96 << 20);
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "20");
    if cgroup_v2() {
        assert_eq!(cgroup_read(pid, "cpu", "cpu.max"), "50000 200000");
        assert_eq!(cgroup_read(pid, "cpu", "cpu.weight"), "20");
    } else {
        assert_eq!(cgroup_read(pid, "cpu", "cpu.shares"), "512");
        assert_eq!(cgroup_read(pid, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup_read(pid, "cpu", "cpu.cfs_period_us"), "200000");
    }

    // later updates build on the earlier ones: only what is given changes
    b.rt(&["update", "--pids-limit", "30", &id]).ok();
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "30");
    assert_eq!(memory_limit(pid), (64 << 20).to_string());
    // memory+swap is checked against the memory limit set before
    b.rt(&["update", "--memory-swap", "128m", &id]).ok();
    assert_eq!(memsw_limit(pid), 128 << 20);
    assert_eq!(memory_limit(pid), (64 << 20).to_string());
    // -1: unlimited (memory and, unless given, swap too)
    b.rt(&["update", "--memory", "-1", "--pids-limit", "-1", &id])
        .ok();
    let unlimited = |v: String| v == "max" || v.parse::<u64>().unwrap() >= 1 << 62;
    assert!(unlimited(memory_limit(pid)), "{}", memory_limit(pid));
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "max");
    // still running, still the same process
    assert_eq!(b.state_json(&id)["pid"], json!(pid));
    assert_eq!(b.state_json(&id)["status"], "running");
}

#[test]
#[cfg_attr(
    not(all(
        host_cgroup_memory,
        host_cgroup_pids,
        host_cgroup_cpu,
        host_cgroup_cpuset
    )),
    ignore = "the host has no memory, pids, cpu or cpuset cgroup controller"
)]
fn update_from_a_resources_file_or_stdin() {
    assert_controllers(&["memory", "pids", "cpu", "cpuset"]);
    let (b, id, pid) = limited("updfile");
    let file = b.path().join("res.json");
    fs::write(
        &file,
        json!({"memory": {"limit": 96 << 20, "swap": 192 << 20}, "pids": {"limit": 42},
               "cpu": {"cpus": "0"}})
        .to_string(),
    )
    .unwrap();
    // with a file, the other flags are ignored
    b.rt(&[
        "update",
        "--resources",
        file.to_str().unwrap(),
        "--pids-limit",
        "7",
        &id,
    ])
    .ok();
    assert_eq!(memory_limit(pid), (96 << 20).to_string());
    assert_eq!(memsw_limit(pid), 192 << 20);
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "42");
    assert_eq!(cgroup_read(pid, "cpuset", "cpuset.cpus"), "0");

    let mut c = b.rt_cmd(&["update", "-r", "-", &id]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 43}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "update -r -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "43");
    assert_eq!(memory_limit(pid), (96 << 20).to_string());
}

#[test]
#[cfg_attr(
    not(all(
        host_cgroup_memory,
        host_cgroup_pids,
        host_cgroup_cpu,
        host_cgroup_cpuset
    )),
    ignore = "the host has no memory, pids, cpu or cpuset cgroup controller"
)]
fn update_of_created_and_paused_containers() {
    assert_controllers(&["memory", "pids", "cpu", "cpuset"]);
    let mut b = bundle("updstates");
    b.set("/linux/resources/pids", json!({"limit": 100}));
    b.args(&["sleep", "100"]);
    let id = b.create_ok();
    let pid = b.state_json(&id)["pid"].as_i64().unwrap() as i32;
    b.rt(&["update", "--pids-limit", "7", &id]).ok();
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "7");
    b.start(&id).ok();
    b.wait_status(&id, "running", T);
    b.rt(&["pause", &id]).ok();
    b.rt(&["update", "--pids-limit", "8", &id]).ok();
    assert_eq!(cgroup_read(pid, "pids", "pids.max"), "8");
    assert_eq!(b.state_json(&id)["status"], "paused");
    b.rt(&["resume", &id]).ok();
}

#[test]
#[cfg_attr(
    not(all(
        host_cgroup_memory,
        host_cgroup_pids,
        host_cgroup_cpu,
        host_cgroup_cpuset
    )),
    ignore = "the host has no memory, pids, cpu or cpuset cgroup controller"
)]
fn update_with_bad_values_changes_nothing() {
    assert_controllers(&["memory", "pids", "cpu", "cpuset"]);
    let (b, id, pid) = limited("updbad");
    let before = resource_files(pid);
    let bad_file = b.path().join("bad.json");
    fs::write(&bad_file, r#"{"memory": {"limit": "lots"}}"#).unwrap();
    let missing = b.path().join("missing.json");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["--memory", "foo"], &["memory"]),
        (vec!["--memory", "-5"], &["memory"]),
        (
            vec!["--memory-reservation", "1x"],
            &["memory-reservation", "invalid"],
        ),
        (vec!["--pids-limit", "many"], &["pids-limit", "invalid"]),
        (vec!["--cpu-quota", "x"], &["cpu-quota", "invalid"]),
        // refused by the kernel or by the checks before it
        (vec!["--cpu-period", "5"], &["period", "invalid"]),
        // memory+swap below the memory limit
        (vec!["--memory-swap", "32m"], &["swap", "invalid"]),
        (vec!["-r", bad_file.to_str().unwrap()], &["limit", "memory"]),
        (vec!["-r", missing.to_str().unwrap()], &["missing.json"]),
    ];
    for (flags, words) in cases {
        let mut args = vec!["update"];
        args.extend(flags.iter().copied());
        args.push(&id);
        fails_1(&b.rt(&args), words);
        assert_eq!(
            resource_files(pid),
            before,
            "`update {flags:?}` changed the cgroup"
        );
    }
    assert_eq!(b.state_json(&id)["status"], "running");
    // the stored limits are still the old ones: a valid update of something else keeps them
    b.rt(&["update", "--pids-limit", "99", &id]).ok();
    let mut after = resource_files(pid);
    let mut expected = before.clone();
    for (k, v) in expected.iter_mut() {
        if k.ends_with("pids.max") {
            *v = "99".into();
        }
    }
    after.sort();
    expected.sort();
    assert_eq!(after, expected);
}

#[test]
#[cfg_attr(
    not(all(
        host_cgroup_memory,
        host_cgroup_pids,
        host_cgroup_cpu,
        host_cgroup_cpuset
    )),
    ignore = "the host has no memory, pids, cpu or cpuset cgroup controller"
)]
fn update_of_unknown_or_stopped_containers_fails() {
    assert_controllers(&["memory", "pids", "cpu", "cpuset"]);
    let mut b = bundle("updstopped");
    fails_1(
        &b.rt(&["update", "--pids-limit", "5", "no-such-container"]),
        &["not exist"],
    );
    b.args(&["true"]);
    let id = b.create_ok();
    b.start(&id).ok();
    b.wait_status(&id, "stopped", T);
    fails_1(
        &b.rt(&["update", "--pids-limit", "5", &id]),
        &["not running"],
    );
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc writes cpu.shares before the cpuset the kernel refuses and leaves it changed"
)]
#[cfg_attr(
    all(
        berth_runtime,
        not(all(
            host_cgroup_memory,
            host_cgroup_pids,
            host_cgroup_cpu,
            host_cgroup_cpuset
        ))
    ),
    ignore = "the host has no memory, pids, cpu or cpuset cgroup controller"
)]
fn berth_only_a_value_the_kernel_refuses_leaves_the_cgroup_as_it_was() {
    assert_controllers(&["memory", "pids", "cpu", "cpuset"]);
    let (b, id, pid) = limited("updrollback");
    let before = resource_files(pid);
    // shares and quota are written, then the kernel refuses the cpuset: all must be put back
    fails_1(
        &b.rt(&[
            "update",
            "--cpu-share",
            "512",
            "--cpu-quota",
            "20000",
            "--memory",
            "32m",
            "--memory-swap",
            "64m",
            "--cpuset-cpus",
            "0-4095",
            &id,
        ]),
        &["cpuset"],
    );
    assert_eq!(resource_files(pid), before);
    // out of the kernel's range (runc clamps it to 2 and fails after writing it)
    fails_1(&b.rt(&["update", "--cpu-share", "1", &id]), &["shares"]);
    assert_eq!(resource_files(pid), before);
}

// ---------------------------------------------------------------- features, spec

#[test]
fn features_is_json_describing_the_runtime() {
    let b = bundle("features");
    let v = json_out(&b.rt(&["features"]));
    assert!(
        v["ociVersionMin"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    assert!(
        v["ociVersionMax"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    let strings = |p: &str| -> Vec<String> {
        v.pointer(p)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("no {p} in {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        strings("/hooks"),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let opts = strings("/mountOptions");
    for o in [
        "ro",
        "rbind",
        "rro",
        "nosuid",
        "private",
        "rslave",
        "tmpcopyup",
        "strictatime",
    ] {
        assert!(opts.contains(&o.to_string()), "{o} not in {opts:?}");
    }
    let ns = strings("/linux/namespaces");
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.contains(&n.to_string()), "{n} not in {ns:?}");
    }
    let caps = strings("/linux/capabilities");
    assert!(
        caps.contains(&"CAP_SYS_ADMIN".to_string()) && caps.len() >= 38,
        "{caps:?}"
    );
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    let actions = strings("/linux/seccomp/actions");
    assert!(
        actions.contains(&"SCMP_ACT_ERRNO".to_string()),
        "{actions:?}"
    );
    assert!(strings("/linux/seccomp/archs").contains(&"SCMP_ARCH_X86_64".to_string()));
    assert_eq!(v["linux"]["cgroup"]["v1"], true);
    assert_eq!(v["linux"]["cgroup"]["v2"], true);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: the features content is the runtime's own"
)]
fn berth_only_features_reports_what_berth_applies() {
    let b = bundle("featberth");
    let v = json_out(&b.rt(&["features"]));
    assert_eq!(v["ociVersionMin"], "1.0.0");
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // idmapped mounts and network devices are applied (see mounts.rs and netdevices.rs)
    assert!(
        opts.contains(&"idmap") && opts.contains(&"ridmap"),
        "{opts:?}"
    );
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    assert_eq!(v["linux"]["netDevices"]["enabled"], true);
    // labels are ignored: not advertised
    assert_eq!(v["linux"]["apparmor"]["enabled"], false);
    assert_eq!(v["linux"]["selinux"]["enabled"], false);
    assert_eq!(v["linux"]["intelRdt"]["enabled"], false);
    // every action/operator berth lists is the spec's full set
    assert_eq!(
        v["linux"]["seccomp"]["actions"].as_array().unwrap().len(),
        9
    );
    assert_eq!(
        v["linux"]["seccomp"]["operators"].as_array().unwrap().len(),
        7
    );
    assert!(v["linux"]["seccomp"]["supportedFlags"]
        .as_array()
        .unwrap()
        .contains(&json!("SECCOMP_FILTER_FLAG_TSYNC")));
    // and what is listed works: every listed mount option (bind ones on a bind mount, the others
    // on a tmpfs) is accepted in a real container
    let mut b = bundle("featmounts");
    // bind options, and idmap ones (bind mounts with mappings: mounts.rs tests them)
    let bind_only = ["bind", "rbind", "idmap", "ridmap"];
    let fs_flags: Vec<&str> = opts
        .iter()
        .copied()
        .filter(|o| !bind_only.contains(o))
        .collect();
    for (i, o) in fs_flags.iter().enumerate() {
        b.mount(
            json!({"destination": format!("/mnt/t{i}"), "type": "tmpfs", "source": "tmpfs",
                       "options": [o]}),
        );
    }
    b.mount(
        json!({"destination": "/mnt/b", "type": "bind", "source": "/tmp",
                   "options": ["rbind", "ro"]}),
    );
    b.args(&["true"]);
    b.run_ok();
}

#[test]
fn spec_rootless_maps_the_caller_and_drops_the_network_namespace() {
    let b = bundle("specrootless");
    let dir = b.path().join("rl");
    fs::create_dir(&dir).unwrap();
    b.rt(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
        .ok();
    let v: Value = serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap())
        .expect("config.json");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        ns.contains(&"user") && ns.contains(&"mount") && ns.contains(&"pid"),
        "{ns:?}"
    );
    assert!(!ns.contains(&"network"), "{ns:?}");
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to our effective uid and gid
    let me = fs::metadata("/proc/self").unwrap();
    let (uid, gid) = (me.uid(), me.gid());
    assert_eq!(
        v["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}])
    );
    assert_eq!(
        v["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": gid, "size": 1}])
    );
    assert!(v["linux"].get("resources").is_none(), "{}", v["linux"]);
    // sysfs is bound from the host (no network namespace of its own to mount one)
    let sys = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(
        sys["options"].as_array().unwrap().contains(&json!("rbind")),
        "{sys}"
    );
    // writing over an existing config.json is refused
    b.rt(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
        .fails();
}

#[test]
fn the_rootless_spec_runs_as_an_unprivileged_user() {
    use std::os::unix::fs::chown;
    const UID: u32 = 1000;
    let b = bundle("rootless");
    // a directory of the user's for config.json and the state; the rootfs stays root's (read-only)
    let dir = b.path().join("rl");
    fs::create_dir(&dir).unwrap();
    chown(&dir, Some(UID), Some(UID)).unwrap();
    let as_user = |args: &[&str]| {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid", "1000", "--regid", "1000", "--clear-groups"])
            .arg(runtime())
            .args(args)
            .current_dir(&dir);
        run_cmd(c, b.path(), T)
    };
    let d = dir.to_str().unwrap();
    as_user(&["spec", "--rootless", "--bundle", d]).ok();
    let path = dir.join("config.json");
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]);
    v["root"] = json!({"path": b.rootfs(), "readonly": true});
    fs::write(&path, v.to_string()).unwrap();
    let state = dir.join("state");
    let s = state.to_str().unwrap();
    let id = format!("rootless-{}", std::process::id());
    let o = as_user(&["--root", s, "run", "--bundle", d, &id]);
    // leave nothing behind whatever happened
    let _ = as_user(&["--root", s, "delete", "--force", &id]);
    o.ok();
    let lines = o.lines();
    assert_eq!(lines[0], "0", "{}", o.stdout);
    assert_eq!(lines[1], "0", "{}", o.stdout);
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "1000", "1"],
        "{}",
        o.stdout
    );
    let left: Vec<_> = fs::read_dir(&state)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left: {left:?}");
}
