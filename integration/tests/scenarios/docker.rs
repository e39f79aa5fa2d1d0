//! Docker engine (dockerd 20.10) with the runtime under test registered under `runtimes`, used through
//! `docker run --runtime NAME`.

use std::fs;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration::docker::Docker;
use integration::images::BUSYBOX;
use integration::runtime::Runtime;

use super::{
    cgroup_v1, eventually, host_cgroup_file, interactive_shell, parse_limits, PRINT_LIMITS,
};

type Scenario = fn(&Docker, &Runtime) -> Result<()>;

pub const LIST: &[(&str, Scenario)] = &[
    ("run_task_hostname_exit_code", run_task),
    ("run_it_pty_resize", run_it_pty_resize),
    (
        "service_logs_exec_top_stop_start_kill_pause_rm",
        service_lifecycle,
    ),
    ("bind_volume_live", bind_volume_live),
    ("network_container_join", network_container_join),
    ("memory_pids_cpus_limits", limits),
];

const SERVICE: &str =
    "trap 'echo bye; exit 0' TERM; i=0; while :; do echo tick-$i; i=$((i+1)); sleep 1; done";

fn run_args<'a>(d: &'a Docker, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "--runtime",
        d.runtime_name.as_str(),
        "--network",
        "none",
    ];
    v.extend_from_slice(extra);
    v
}

fn inspect(d: &Docker, name: &str, fmt: &str) -> Result<String> {
    Ok(d.cmd(&["inspect", "--format", fmt, name])
        .ok()?
        .out()
        .to_string())
}

fn run_task(d: &Docker, _rt: &Runtime) -> Result<()> {
    let out = d
        .cmd(&run_args(
            d,
            &["--rm", "--hostname", "task1", BUSYBOX, "hostname"],
        ))
        .ok()?;
    ensure!(out.out() == "task1", "hostname: {out}");
    let out = d
        .cmd(&run_args(
            d,
            &["--rm", BUSYBOX, "sh", "-c", "echo hello-$((40+2)); exit 3"],
        ))
        .run()?;
    ensure!(
        out.code == 3 && out.stdout.contains("hello-42"),
        "exit code: {out}"
    );
    // A missing binary: dockerd maps the runtime's "no such file" wording to 127 (managers.md pitfall 6).
    let out = d
        .cmd(&run_args(d, &["--rm", BUSYBOX, "/no/such/binary"]))
        .run()?;
    ensure!(out.code == 127, "missing binary should give 127: {out}");
    Ok(())
}

fn run_it_pty_resize(d: &Docker, _rt: &Runtime) -> Result<()> {
    interactive_shell(d.cmd(&run_args(d, &["--rm", "-it", BUSYBOX, "sh"])), 4)
}

fn service_lifecycle(d: &Docker, rt: &Runtime) -> Result<()> {
    let name = "svc";
    let id = d
        .cmd(&run_args(
            d,
            &["-d", "--name", name, BUSYBOX, "sh", "-c", SERVICE],
        ))
        .ok()?
        .out()
        .to_string();
    ensure!(
        inspect(d, name, "{{.HostConfig.Runtime}}")? == d.runtime_name,
        "container not on the runtime under test"
    );
    ensure!(inspect(d, name, "{{.State.Status}}")? == "running");
    let root = d.runtime_root();
    let opts = fs::read_to_string(d.task_dir(&id).join("options.json"))
        .context("the shim's options.json")?;
    ensure!(
        opts.contains(&rt.path.display().to_string()),
        "the shim's options do not name the runtime under test: {opts}"
    );
    ensure!(
        rt.status(&root, &id)
            .context("the runtime under test does not hold the container")?
            == "running"
    );

    eventually("docker logs to show ticks", Duration::from_secs(10), || {
        Ok(d.cmd(&["logs", name])
            .ok()?
            .stdout
            .contains("tick-1")
            .then_some(()))
    })?;
    let out = d
        .cmd(&["exec", name, "sh", "-c", "echo in-exec-$((6*7)); exit 6"])
        .run()?;
    ensure!(
        out.code == 6 && out.stdout.contains("in-exec-42"),
        "exec: {out}"
    );
    interactive_shell(d.cmd(&["exec", "-it", name, "sh"]), 7)?;
    let out = d.cmd(&["top", name]).ok()?;
    ensure!(
        out.stdout.contains("sleep 1") && out.stdout.contains("tick-"),
        "top: {out}"
    );

    d.cmd(&["pause", name]).ok()?;
    ensure!(inspect(d, name, "{{.State.Status}}")? == "paused");
    ensure!(rt.status(&root, &id)? == "paused");
    d.cmd(&["unpause", name]).ok()?;
    ensure!(inspect(d, name, "{{.State.Status}}")? == "running");

    d.cmd(&["stop", "--time", "10", name])
        .timeout(Duration::from_secs(30))
        .ok()?;
    ensure!(inspect(d, name, "{{.State.Status}}")? == "exited");
    ensure!(
        inspect(d, name, "{{.State.ExitCode}}")? == "0",
        "trapped SIGTERM should give exit 0"
    );
    ensure!(
        d.cmd(&["logs", name]).ok()?.stdout.contains("bye"),
        "no `bye` after stop"
    );
    ensure!(
        rt.state(&root, &id).is_err(),
        "the runtime still knows the container after stop"
    );

    d.cmd(&["start", name]).ok()?;
    ensure!(inspect(d, name, "{{.State.Status}}")? == "running");
    d.cmd(&["kill", name]).ok()?;
    eventually(
        "the container to exit after kill",
        Duration::from_secs(10),
        || Ok((inspect(d, name, "{{.State.Status}}")? == "exited").then_some(())),
    )?;
    ensure!(
        inspect(d, name, "{{.State.ExitCode}}")? == "137",
        "docker kill (SIGKILL) should give 137"
    );
    d.cmd(&["rm", name]).ok()?;
    ensure!(
        d.cmd(&["inspect", name]).run()?.code != 0,
        "container still there after rm"
    );
    Ok(())
}

fn bind_volume_live(d: &Docker, _rt: &Runtime) -> Result<()> {
    let host_dir = d.dir.join("vol");
    fs::create_dir_all(&host_dir)?;
    let v = format!("{}:/data", host_dir.display());
    let name = "vol";
    d.cmd(&run_args(
        d,
        &["-d", "--name", name, "-v", &v, BUSYBOX, "sh", "-c", SERVICE],
    ))
    .ok()?;
    fs::write(host_dir.join("live.txt"), "live-1\n")?;
    ensure!(d.cmd(&["exec", name, "cat", "/data/live.txt"]).ok()?.out() == "live-1");
    fs::write(host_dir.join("live.txt"), "live-2\n")?;
    ensure!(d.cmd(&["exec", name, "cat", "/data/live.txt"]).ok()?.out() == "live-2");
    d.cmd(&[
        "exec",
        name,
        "sh",
        "-c",
        "echo from-container > /data/out.txt",
    ])
    .ok()?;
    ensure!(fs::read_to_string(host_dir.join("out.txt"))? == "from-container\n");
    d.cmd(&["rm", "-f", name]).ok()?;
    Ok(())
}

fn network_container_join(d: &Docker, _rt: &Runtime) -> Result<()> {
    d.cmd(&run_args(
        d,
        &[
            "-d",
            "--name",
            "net1",
            "--hostname",
            "net1",
            BUSYBOX,
            "sh",
            "-c",
            SERVICE,
        ],
    ))
    .ok()?;
    let mut a = vec![
        "run",
        "--runtime",
        d.runtime_name.as_str(),
        "--network",
        "container:net1",
    ];
    a.extend(["-d", "--name", "net2", BUSYBOX, "sh", "-c", SERVICE]);
    d.cmd(&a).ok()?;
    let ns1 = d
        .cmd(&["exec", "net1", "readlink", "/proc/self/ns/net"])
        .ok()?
        .out()
        .to_string();
    let ns2 = d
        .cmd(&["exec", "net2", "readlink", "/proc/self/ns/net"])
        .ok()?
        .out()
        .to_string();
    ensure!(ns1 == ns2, "net2 is in {ns2}, net1 in {ns1}");
    let mine = fs::read_link("/proc/self/ns/net")?.display().to_string();
    ensure!(
        ns1 != mine,
        "containers are in the host's network namespace"
    );
    let if1 = d
        .cmd(&["exec", "net1", "ls", "/sys/class/net"])
        .ok()?
        .out()
        .to_string();
    let if2 = d
        .cmd(&["exec", "net2", "ls", "/sys/class/net"])
        .ok()?
        .out()
        .to_string();
    ensure!(if1 == if2, "interfaces differ: {if1:?} vs {if2:?}");
    // Loopback is shared too: a listener in net1 is reachable from net2 on 127.0.0.1.
    d.cmd(&[
        "exec",
        "-d",
        "net1",
        "sh",
        "-c",
        "echo over-lo | nc -l -p 7777",
    ])
    .ok()?;
    let got = eventually(
        "nc from net2 to net1 over loopback",
        Duration::from_secs(10),
        || {
            let o = d
                .cmd(&["exec", "net2", "nc", "127.0.0.1", "7777"])
                .timeout(Duration::from_secs(5))
                .run()?;
            Ok(o.stdout.contains("over-lo").then_some(o))
        },
    )?;
    ensure!(got.code == 0);
    d.cmd(&["rm", "-f", "net2", "net1"]).ok()?;
    Ok(())
}

fn limits(d: &Docker, _rt: &Runtime) -> Result<()> {
    let name = "limits";
    let id = d
        .cmd(&run_args(
            d,
            &[
                "-d",
                "--name",
                name,
                "--memory",
                "64m",
                "--pids-limit",
                "40",
                "--cpus",
                "0.5",
                BUSYBOX,
                "sh",
                "-c",
                SERVICE,
            ],
        ))
        .ok()?
        .out()
        .to_string();
    let out = d.cmd(&["exec", name, "sh", "-c", PRINT_LIMITS]).ok()?;
    let (mem, pids, cpu) = parse_limits(&out.stdout)?;
    ensure!(mem == "67108864", "memory limit inside: {mem}");
    ensure!(pids == "40", "pids limit inside: {pids}");
    ensure!(cpu == "50000 100000", "cpu quota/period inside: {cpu}");
    // From the host, under the daemon's cgroup parent.
    let cg = format!("{}/{id}", d.cgroup_parent());
    if cgroup_v1() {
        ensure!(host_cgroup_file("memory", &cg, "memory.limit_in_bytes")? == "67108864");
        ensure!(host_cgroup_file("pids", &cg, "pids.max")? == "40");
        ensure!(host_cgroup_file("cpu", &cg, "cpu.cfs_quota_us")? == "50000");
    } else {
        ensure!(host_cgroup_file("", &cg, "memory.max")? == "67108864");
        ensure!(host_cgroup_file("", &cg, "cpu.max")? == "50000 100000");
    }
    d.cmd(&["rm", "-f", name]).ok()?;
    Ok(())
}
