//! podman `--runtime <runtime under test>` with its own configuration and storage.

use std::fs;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration::images::BUSYBOX;
use integration::podman::Podman;
use integration::runtime::Runtime;

use super::{
    cgroup_v1, eventually, host_cgroup_file, interactive_shell, parse_limits, PRINT_LIMITS,
};

type Scenario = fn(&Podman, &Runtime) -> Result<()>;

pub const LIST: &[(&str, Scenario)] = &[
    ("run_rm_exit_code", run_rm_exit_code),
    ("run_it_pty_resize", run_it_pty_resize),
    ("detached_exec_top_pause_stop_rm", detached_lifecycle),
    ("memory_pids_limits", memory_pids_limits),
    ("bind_volume_live", bind_volume_live),
];

const SERVICE: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

/// `podman run` ARGS with the network off and our cgroup parent.
fn run_args<'a>(parent: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--network", "none", "--cgroup-parent", parent];
    v.extend_from_slice(extra);
    v
}

fn inspect(p: &Podman, name: &str, fmt: &str) -> Result<String> {
    Ok(p.cmd(&["inspect", "--format", fmt, name])
        .ok()?
        .out()
        .to_string())
}

fn run_rm_exit_code(p: &Podman, _rt: &Runtime) -> Result<()> {
    let parent = p.cgroup_parent();
    let mut a = run_args(
        &parent,
        &[
            "--rm",
            "--name",
            "rm1",
            BUSYBOX,
            "sh",
            "-c",
            "echo hello-$((40+2)); exit 3",
        ],
    );
    let out = p.cmd(&a).run()?;
    ensure!(
        out.code == 3 && out.stdout.contains("hello-42"),
        "run --rm: {out}"
    );
    a = run_args(
        &parent,
        &[
            "--rm",
            "--name",
            "rm2",
            "--hostname",
            "pm1",
            BUSYBOX,
            "hostname",
        ],
    );
    let out = p.cmd(&a).ok()?;
    ensure!(out.out() == "pm1", "hostname: {out}");
    for name in ["rm1", "rm2"] {
        ensure!(
            p.cmd(&["container", "exists", name]).run()?.code == 1,
            "--rm left container {name}"
        );
    }
    Ok(())
}

fn run_it_pty_resize(p: &Podman, _rt: &Runtime) -> Result<()> {
    let parent = p.cgroup_parent();
    interactive_shell(
        p.cmd(&run_args(&parent, &["--rm", "-it", BUSYBOX, "sh"])),
        4,
    )
}

fn detached_lifecycle(p: &Podman, rt: &Runtime) -> Result<()> {
    let parent = p.cgroup_parent();
    let name = "psvc";
    let out = p
        .cmd(&run_args(
            &parent,
            &["-d", "--name", name, BUSYBOX, "sh", "-c", SERVICE],
        ))
        .ok()?;
    let id = out.out().lines().last().unwrap_or_default().to_string();
    ensure!(inspect(p, name, "{{.State.Status}}")? == "running");
    ensure!(
        rt.status(&p.runtime_root(), &id)
            .context("the runtime under test does not hold the container")?
            == "running"
    );

    let out = p
        .cmd(&["exec", name, "sh", "-c", "echo in-exec-$((6*7)); exit 5"])
        .run()?;
    ensure!(
        out.code == 5 && out.stdout.contains("in-exec-42"),
        "exec: {out}"
    );
    interactive_shell(p.cmd(&["exec", "-it", name, "sh"]), 6)?;

    let out = p.cmd(&["top", name, "pid", "args"]).ok()?;
    ensure!(
        out.stdout.contains("sleep 1") && out.stdout.contains("sh -c"),
        "top: {out}"
    );

    p.cmd(&["pause", name]).ok()?;
    ensure!(inspect(p, name, "{{.State.Status}}")? == "paused");
    ensure!(rt.status(&p.runtime_root(), &id)? == "paused");
    p.cmd(&["unpause", name]).ok()?;
    ensure!(inspect(p, name, "{{.State.Status}}")? == "running");

    p.cmd(&["stop", "--time", "10", name])
        .timeout(Duration::from_secs(30))
        .ok()?;
    ensure!(inspect(p, name, "{{.State.Status}}")? == "exited");
    ensure!(
        inspect(p, name, "{{.State.ExitCode}}")? == "0",
        "trapped SIGTERM should give exit 0"
    );
    p.cmd(&["start", name]).ok()?;
    ensure!(
        inspect(p, name, "{{.State.Status}}")? == "running",
        "not running after start"
    );
    p.cmd(&["rm", "--force", "--time", "0", name]).ok()?;
    ensure!(
        p.cmd(&["inspect", name]).run()?.code != 0,
        "container still there after rm"
    );
    ensure!(
        rt.state(&p.runtime_root(), &id).is_err(),
        "the runtime still knows {id} after rm"
    );
    Ok(())
}

fn memory_pids_limits(p: &Podman, _rt: &Runtime) -> Result<()> {
    let parent = p.cgroup_parent();
    let out = p
        .cmd(&run_args(
            &parent,
            &[
                "--rm",
                "--memory",
                "64m",
                "--pids-limit",
                "33",
                BUSYBOX,
                "sh",
                "-c",
                PRINT_LIMITS,
            ],
        ))
        .ok()?;
    let (mem, pids, _) = parse_limits(&out.stdout)?;
    ensure!(
        mem == "67108864",
        "memory limit inside the container: {mem}"
    );
    ensure!(pids == "33", "pids limit inside the container: {pids}");

    // The same, seen from the host in the container's cgroup.
    let name = "plimits";
    p.cmd(&run_args(
        &parent,
        &[
            "-d",
            "--name",
            name,
            "--memory",
            "48m",
            "--pids-limit",
            "21",
            BUSYBOX,
            "sh",
            "-c",
            SERVICE,
        ],
    ))
    .ok()?;
    let cg = inspect(p, name, "{{.State.CgroupPath}}")?;
    ensure!(cg.starts_with(&parent), "cgroup {cg} not under {parent}");
    if cgroup_v1() {
        ensure!(host_cgroup_file("memory", &cg, "memory.limit_in_bytes")? == "50331648");
        ensure!(host_cgroup_file("pids", &cg, "pids.max")? == "21");
    } else {
        ensure!(host_cgroup_file("", &cg, "memory.max")? == "50331648");
        ensure!(host_cgroup_file("", &cg, "pids.max")? == "21");
    }
    // A fork bomb stops at the limit (the shell reports fork failures).
    let out = p
        .cmd(&[
            "exec",
            name,
            "sh",
            "-c",
            "for i in $(seq 1 40); do sleep 5 & done 2>&1; wait",
        ])
        .timeout(Duration::from_secs(30))
        .run()?;
    ensure!(
        out.stdout.contains("can't fork")
            || out.stderr.contains("can't fork")
            || out.stdout.contains("Resource temporarily unavailable"),
        "40 background sleeps under pids.max=21 did not fail: {out}"
    );
    p.cmd(&["rm", "--force", "--time", "0", name]).ok()?;
    Ok(())
}

fn bind_volume_live(p: &Podman, _rt: &Runtime) -> Result<()> {
    let parent = p.cgroup_parent();
    let host_dir = p.dir.join("vol");
    fs::create_dir_all(&host_dir)?;
    fs::write(host_dir.join("before.txt"), "before\n")?;
    let v = format!("{}:/data", host_dir.display());
    let name = "pvol";
    p.cmd(&run_args(
        &parent,
        &["-d", "--name", name, "-v", &v, BUSYBOX, "sh", "-c", SERVICE],
    ))
    .ok()?;
    ensure!(
        p.cmd(&["exec", name, "cat", "/data/before.txt"])
            .ok()?
            .out()
            == "before"
    );
    // Written on the host after the container started: seen inside at once.
    fs::write(host_dir.join("live.txt"), "live-1\n")?;
    ensure!(p.cmd(&["exec", name, "cat", "/data/live.txt"]).ok()?.out() == "live-1");
    fs::write(host_dir.join("live.txt"), "live-2\n")?;
    ensure!(p.cmd(&["exec", name, "cat", "/data/live.txt"]).ok()?.out() == "live-2");
    // And the other way.
    p.cmd(&[
        "exec",
        name,
        "sh",
        "-c",
        "echo from-container > /data/out.txt",
    ])
    .ok()?;
    eventually(
        "file written in the container",
        Duration::from_secs(5),
        || {
            Ok(
                (fs::read_to_string(host_dir.join("out.txt")).unwrap_or_default()
                    == "from-container\n")
                    .then_some(()),
            )
        },
    )?;
    p.cmd(&["rm", "--force", "--time", "0", name]).ok()?;
    Ok(())
}
