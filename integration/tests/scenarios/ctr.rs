//! containerd + ctr with the stock runc shim, `--runc-binary` = the runtime under test.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration::containerd::{Containerd, CTR_NAMESPACE};
use integration::host;
use integration::runtime::Runtime;

use super::{eventually, interactive_shell};

type Scenario = fn(&Containerd, &Runtime) -> Result<()>;

pub const LIST: &[(&str, Scenario)] = &[
    ("run_rm_exit_code", run_rm_exit_code),
    ("run_tty_pty_resize", run_tty_pty_resize),
    (
        "detached_exec_ps_pause_resume_kill_delete",
        detached_lifecycle,
    ),
    ("kill_sigkill_exit_status", kill_sigkill_exit_status),
    ("log_uri_file", log_uri_file),
    ("log_uri_binary", log_uri_binary),
];

pub fn containers(c: &Containerd) -> Result<Vec<String>> {
    let out = c.ctr(CTR_NAMESPACE).args(["containers", "ls", "-q"]).ok()?;
    Ok(out
        .stdout
        .lines()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// `ctr run --rm`: output comes back, the exit code is propagated, and the container is gone afterwards.
fn run_rm_exit_code(c: &Containerd, _rt: &Runtime) -> Result<()> {
    let out = c
        .ctr_run(
            &["--rm"],
            "rm-exit",
            &["sh", "-c", "echo hello-$((40+2)); exit 3"],
        )
        .run()?;
    ensure!(out.code == 3, "exit code not propagated: {out}");
    ensure!(out.stdout.contains("hello-42"), "no output: {out}");
    let out = c
        .ctr_run(
            &["--rm"],
            "rm-ok",
            &["sh", "-c", "cat /proc/self/cgroup; id -u"],
        )
        .ok()?;
    ensure!(
        out.stdout.contains(&format!("/{}/rm-ok", c.name)),
        "container not in the cgroup ctr asked for: {out}"
    );
    ensure!(out.stdout.trim_end().ends_with('0'), "not uid 0: {out}");
    let left = containers(c)?;
    ensure!(
        !left.iter().any(|x| x == "rm-exit" || x == "rm-ok"),
        "--rm left containers: {left:?}"
    );
    ensure!(
        !host::cgroup_exists(&format!("/{}/rm-exit", c.name)),
        "container cgroup left after --rm"
    );
    Ok(())
}

/// `ctr run -t` on a real pty: a terminal inside, resize forwarded, exit code back.
fn run_tty_pty_resize(c: &Containerd, _rt: &Runtime) -> Result<()> {
    interactive_shell(c.ctr_run(&["--rm", "-t"], "tty", &["sh"]), 5)
}

/// `ctr run -d`, then exec (plain and -t), ps, pause/resume, kill, delete, checking each step against both
/// ctr and the runtime's own `state`.
fn detached_lifecycle(c: &Containerd, rt: &Runtime) -> Result<()> {
    let id = "svc";
    let root = c.runtime_root(CTR_NAMESPACE);
    c.ctr_run(
        &["-d"],
        id,
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo started; while :; do sleep 1; done",
        ],
    )
    .ok()?;
    let pid = c.wait_task(id, "RUNNING")?;
    ensure!(pid > 0, "no pid for the running task");
    let st = rt
        .state(&root, id)
        .with_context(|| format!("the runtime under test does not know container {id}"))?;
    ensure!(st["status"] == "running", "runtime state: {st}");
    ensure!(
        st["pid"].as_i64() == Some(pid as i64),
        "runtime pid {} != ctr pid {pid}",
        st["pid"]
    );

    // exec: output and exit codes.
    let out = c
        .ctr_exec(
            &["--exec-id", "e1"],
            id,
            &["sh", "-c", "echo in-exec-$((6*7)); exit 4"],
        )
        .run()?;
    ensure!(
        out.code == 4 && out.stdout.contains("in-exec-42"),
        "exec: {out}"
    );
    let out = c.ctr_exec(&["--exec-id", "e0"], id, &["true"]).run()?;
    ensure!(out.code == 0, "exec true: {out}");
    let out = c
        .ctr_exec(&["--exec-id", "e9"], id, &["/no/such/binary"])
        .run()?;
    ensure!(out.code != 0, "exec of a missing binary succeeded: {out}");
    // exec -t on a pty.
    interactive_shell(c.ctr_exec(&["-t", "--exec-id", "e2"], id, &["sh"]), 6)?;

    // ps lists the init process and its children.
    let out = c.ctr(CTR_NAMESPACE).args(["task", "ps", id]).ok()?;
    let pids: Vec<i32> = out
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    ensure!(
        pids.contains(&pid),
        "task ps does not list init pid {pid}: {out}"
    );
    ensure!(
        pids.len() >= 2,
        "task ps lists only {pids:?} (expected sh and sleep): {out}"
    );

    // metrics: the shim reads the container's cgroup (v1 Metrics on hybrid hosts, v2 otherwise).
    let out = c.ctr(CTR_NAMESPACE).args(["task", "metrics", id]).ok()?;
    let mem_key = if super::cgroup_v1() {
        "memory.usage_in_bytes"
    } else {
        "memory.usage"
    };
    let pids_current = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids.current"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    ensure!(
        out.stdout.contains(mem_key) && pids_current.is_some_and(|n| n >= 2),
        "task metrics (want {mem_key} and pids.current >= 2): {out}"
    );

    // pause / resume.
    c.ctr(CTR_NAMESPACE).args(["task", "pause", id]).ok()?;
    c.wait_task(id, "PAUSED")?;
    ensure!(
        rt.status(&root, id)? == "paused",
        "runtime does not say paused"
    );
    c.ctr(CTR_NAMESPACE).args(["task", "resume", id]).ok()?;
    c.wait_task(id, "RUNNING")?;
    ensure!(
        rt.status(&root, id)? == "running",
        "runtime does not say running after resume"
    );
    let out = c
        .ctr_exec(&["--exec-id", "e3"], id, &["echo", "after-resume"])
        .ok()?;
    ensure!(
        out.stdout.contains("after-resume"),
        "exec after resume: {out}"
    );

    // kill (SIGTERM, trapped: exit 0), delete.
    c.ctr(CTR_NAMESPACE).args(["task", "kill", id]).ok()?;
    c.wait_task(id, "STOPPED")?;
    let out = c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).run()?;
    ensure!(out.code == 0, "task delete of a task that exited 0: {out}");
    c.ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .ok()?;
    ensure!(c.task(id)?.is_none(), "task still listed after delete");
    ensure!(
        rt.state(&root, id).is_err(),
        "the runtime still knows {id} after delete"
    );
    ensure!(
        !host::alive(pid),
        "container init {pid} still alive after delete"
    );
    ensure!(
        !host::cgroup_exists(&format!("/{}/{id}", c.name)),
        "container cgroup left after delete"
    );
    Ok(())
}

/// `ctr task kill -s SIGKILL` on a process that ignores SIGTERM: stopped, exit status 137.
fn kill_sigkill_exit_status(c: &Containerd, _rt: &Runtime) -> Result<()> {
    let id = "killme";
    c.ctr_run(
        &["-d"],
        id,
        &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
    )
    .ok()?;
    c.wait_task(id, "RUNNING")?;
    c.ctr(CTR_NAMESPACE)
        .args(["task", "kill", "-s", "SIGKILL", id])
        .ok()?;
    c.wait_task(id, "STOPPED")?;
    // ctr task delete reports the task's exit status (a warning in 1.6, not its own exit code).
    let out = c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).run()?;
    ensure!(
        out.code == 137 || out.stderr.contains("exit code 137"),
        "expected exit status 137 from `ctr task delete` of a SIGKILLed task: {out}"
    );
    c.ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .ok()?;
    Ok(())
}

/// `ctr run --log-uri file:///...`: stdout and stderr appended to the file by the shim.
fn log_uri_file(c: &Containerd, _rt: &Runtime) -> Result<()> {
    let id = "logfile";
    let path = c.layout.logs.join("ctr-file.log");
    let uri = format!("file://{}", path.display());
    c.ctr_run(
        &["-d", "--log-uri", &uri],
        id,
        // The pause before the exit: containerd 2.3.4's runc shim lost the stderr line now and then
        // when both pipes reached EOF at once (twice in ~10 runs here); both streams are still checked.
        &[
            "sh",
            "-c",
            "echo to-out-$((1+1)); echo to-err-$((2+1)) >&2; sleep 0.5",
        ],
    )
    .ok()?;
    c.wait_task(id, "STOPPED")?;
    // The shim's copy of the last bytes may trail the exit a little (the runc shim's does).
    let mut text = String::new();
    eventually(
        "both streams in the log file",
        Duration::from_secs(10),
        || {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            Ok((text.contains("to-out-2") && text.contains("to-err-3")).then_some(()))
        },
    )
    .with_context(|| format!("log file {}: {text:?}", path.display()))?;
    c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).ok()?;
    c.ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .ok()?;
    Ok(())
}

/// `ctr run --log-uri binary:///logger?out=DIR`: the logging binary gets stdout and stderr as fds 3 and 4,
/// signals ready by closing fd 5, sees CONTAINER_ID/CONTAINER_NAMESPACE, and its query as arguments.
fn log_uri_binary(c: &Containerd, _rt: &Runtime) -> Result<()> {
    let id = "logbin";
    let dir = c.layout.logs.join("binlog");
    std::fs::create_dir_all(&dir)?;
    let logger = c.layout.dir.join("logger.sh");
    std::fs::write(
        &logger,
        // fd 5 is closed before the readers start: a reader holding it would keep "ready" from arriving.
        "#!/bin/sh\n# $1=out $2=DIR\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID\" > \"$2/env\"\n\
         exec 5>&-\ncat <&3 > \"$2/stdout\" &\ncat <&4 > \"$2/stderr\" &\nwait\n",
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755))?;
    let uri = format!("binary://{}?out={}", logger.display(), dir.display());
    c.ctr_run(
        &["-d", "--log-uri", &uri],
        id,
        &[
            "sh",
            "-c",
            "echo bin-out-$((3+4)); echo bin-err-$((4+4)) >&2",
        ],
    )
    .ok()?;
    c.wait_task(id, "STOPPED")?;
    eventually(
        "the logger to write both streams",
        Duration::from_secs(10),
        || {
            let o = std::fs::read_to_string(dir.join("stdout")).unwrap_or_default();
            let e = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
            Ok((o.contains("bin-out-7") && e.contains("bin-err-8")).then_some(()))
        },
    )?;
    let env = std::fs::read_to_string(dir.join("env"))?;
    ensure!(
        env.trim() == format!("{CTR_NAMESPACE}/{id}"),
        "logger environment: {env:?}"
    );
    c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).ok()?;
    c.ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .ok()?;
    Ok(())
}
