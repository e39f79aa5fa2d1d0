//! Scenarios that stop or replace containerd itself, each on a containerd of its own (no CRI, host
//! network): a restart of the same version while containers run (no exit is lost, whether it happens
//! while containerd is down or after it is back), a shim killed under a running container (containerd's
//! cleanup through the shim's `delete` leaves nothing behind), and an upgrade of the containerd binary
//! from 1.6 to 2.x with containers running.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration::containerd::{Containerd, Generation, Options, CTR_NAMESPACE};
use integration::host;
use integration::runtime::{Runtime, ShimKind, ShimRuntime};
use libtest_mimic::{Failed, Trial};

use super::ctr::containers;
use super::eventually;

fn own_containerd(gen: &Generation, kind: ShimKind, rt: &Runtime) -> Result<Containerd> {
    Containerd::start(
        gen,
        Options {
            cri: false,
            own_netns: false,
        },
        |root| ShimRuntime::new(kind, rt, root),
    )
}

fn trial(
    name: String,
    gen: Generation,
    kind: ShimKind,
    rt: &std::result::Result<Runtime, String>,
    f: fn(&Containerd, &Runtime) -> Result<()>,
) -> Trial {
    let rt = rt.clone();
    Trial::test(name, move || {
        let rt = rt.map_err(Failed::from)?;
        let c = own_containerd(&gen, kind, &rt).map_err(|e| Failed::from(format!("{e:#}")))?;
        let r = f(&c, &rt).map_err(|e| Failed::from(format!("{e:#}\n{}", c.log_tail())));
        drop(c);
        r
    })
}

/// The per-generation, per-shim scenarios of this module.
pub fn trials(
    prefix: &str,
    gen: &Generation,
    kind: ShimKind,
    rt: &std::result::Result<Runtime, String>,
) -> Vec<Trial> {
    vec![
        trial(
            format!("{prefix}::lifecycle::containerd_restart_keeps_exits"),
            gen.clone(),
            kind,
            rt,
            containerd_restart_keeps_exits,
        ),
        trial(
            format!("{prefix}::lifecycle::killed_shim_is_cleaned_up"),
            gen.clone(),
            kind,
            rt,
            killed_shim_is_cleaned_up,
        ),
    ]
}

/// `ctr task delete ID` reports exit status `code` (a warning for non-zero, as ctr words it).
fn delete_reports(c: &Containerd, id: &str, code: u32) -> Result<()> {
    let out = c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).run()?;
    if code == 0 {
        ensure!(
            out.code == 0,
            "task delete of {id} (expected exit 0): {out}"
        );
    } else {
        ensure!(
            out.code == code as i32 || out.stderr.contains(&format!("exit code {code}")),
            "expected exit status {code} from `ctr task delete {id}`: {out}"
        );
    }
    c.ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .ok()?;
    Ok(())
}

/// containerd stops (SIGTERM) while two containers run; one exits (code 7) while it is down; it comes
/// back: the other container still runs and its later exit (137) is seen too. The early exit is there
/// under 1.x; 2.x deletes that task as leaked (see below), and then nothing of it may be left.
fn containerd_restart_keeps_exits(c: &Containerd, rt: &Runtime) -> Result<()> {
    c.ctr_run(&["-d"], "early", &["sh", "-c", "sleep 2; exit 7"])
        .ok()?;
    c.ctr_run(&["-d"], "late", &["sleep", "1000"]).ok()?;
    let early = c.wait_task("early", "RUNNING")?;
    let late = c.wait_task("late", "RUNNING")?;
    let gen = c.gen();
    c.stop_daemon()?;
    ensure!(
        host::wait_dead(early, Duration::from_secs(15)),
        "container init {early} did not exit"
    );
    ensure!(
        host::alive(late),
        "the other container died with containerd"
    );
    c.restart_as(&gen)?;
    if gen.config_version <= 2 {
        // 1.x asks the shim for the task's state: stopped, with its exit status.
        c.wait_task("early", "STOPPED")
            .context("the exit that happened while containerd was down")?;
        delete_reports(c, "early", 7)?;
    } else {
        // 2.x treats a shim whose Pids list is empty at load time as leaked (containerd#6860) and
        // deletes its task ("cleaning leaked shim process"), with either shim: the exit status is
        // gone, and so must be the shim, the runtime's state and the cgroup.
        eventually(
            "2.x to drop the exited task",
            Duration::from_secs(15),
            || Ok(c.task("early")?.is_none().then_some(())),
        )?;
        let root = c.runtime_root(CTR_NAMESPACE);
        eventually(
            "the runtime to forget early",
            Duration::from_secs(15),
            || Ok(rt.state(&root, "early").is_err().then_some(())),
        )?;
        ensure!(
            !host::cgroup_exists(&format!("/{}/early", c.name)),
            "early's cgroup left"
        );
        c.ctr(CTR_NAMESPACE)
            .args(["containers", "delete", "early"])
            .ok()?;
    }
    let pid = c.wait_task("late", "RUNNING")?;
    ensure!(
        pid == late,
        "late's pid changed across the restart: {late} -> {pid}"
    );
    c.ctr(CTR_NAMESPACE)
        .args(["task", "kill", "-s", "SIGKILL", "late"])
        .ok()?;
    c.wait_task("late", "STOPPED")?;
    delete_reports(c, "late", 137)?;
    ensure!(containers(c)?.is_empty(), "containers left");
    Ok(())
}

/// The shim of a running container is SIGKILLed: containerd notices, runs the shim's `delete`
/// (`RUNTIME delete --force`, rootfs unmounted), reports the task stopped; nothing is left.
fn killed_shim_is_cleaned_up(c: &Containerd, rt: &Runtime) -> Result<()> {
    let id = "victim";
    c.ctr_run(&["-d"], id, &["sleep", "1000"]).ok()?;
    let pid = c.wait_task(id, "RUNNING")?;
    let bin = c.shim.kind.binary();
    let shims = c.shim.kind.daemons_for(id);
    ensure!(
        shims.len() == 1,
        "expected one {bin} for {id}, found {shims:?}"
    );
    ensure!(host::kill_pid(shims[0]), "shim {} did not die", shims[0]);
    // containerd 1.6 and 2.x both drop the task after cleaning up a dead shim (its exit, 137, goes out as
    // an event); a stopped task that is still listed is fine too.
    let left = eventually(
        "containerd to clean up after the dead shim",
        Duration::from_secs(15),
        || {
            Ok(match c.task(id)? {
                None => Some(false),
                Some((_, st)) if st == "STOPPED" => Some(true),
                Some(_) => None,
            })
        },
    )?;
    ensure!(
        host::wait_dead(pid, Duration::from_secs(10)),
        "container init {pid} survived its shim's cleanup"
    );
    if left {
        let out = c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).run()?;
        ensure!(
            out.code == 0 || out.code == 137 || out.stderr.contains("exit code 137"),
            "task delete after a dead shim: {out}"
        );
    }
    c.ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .ok()?;
    ensure!(c.task(id)?.is_none(), "task still listed");
    // containerd drops the task before its cleanup (the shim's `delete`) has finished.
    let root = c.runtime_root(CTR_NAMESPACE);
    eventually(
        "the runtime to forget the container",
        Duration::from_secs(15),
        || match rt.state(&root, id) {
            Ok(st) => Err(anyhow::anyhow!("the runtime still knows {id}: {st}")),
            Err(_) => Ok(Some(())),
        },
    )?;
    ensure!(
        !host::cgroup_exists(&format!("/{}/{id}", c.name)),
        "container cgroup left"
    );
    let mounts = host::mounts_under(&c.layout.state);
    ensure!(
        mounts.is_empty(),
        "mounts left under the state dir: {mounts:?}"
    );
    Ok(())
}

/// 1.x → 2.x binary upgrades, when $CONTAINERD_BIN_DIR holds a 2.x next to Debian's 1.6.
pub fn upgrade_trials(rt: &std::result::Result<Runtime, String>) -> Vec<Trial> {
    let all: Vec<Generation> = Generation::all()
        .into_iter()
        .filter_map(|(_, g)| g.ok())
        .collect();
    let (Some(old), Some(new)) = (
        all.iter().find(|g| g.version.starts_with("1.")),
        all.iter().find(|g| g.version.starts_with('2')),
    ) else {
        return Vec::new();
    };
    ShimKind::selected()
        .into_iter()
        .map(|kind| {
            let (old, new, rt) = (old.clone(), new.clone(), rt.clone());
            let name = format!(
                "upgrade-{}-to-{}::{}::running_containers_recovered",
                old.version,
                new.version,
                kind.label()
            );
            Trial::test(name, move || {
                let rt = rt.map_err(Failed::from)?;
                let c =
                    own_containerd(&old, kind, &rt).map_err(|e| Failed::from(format!("{e:#}")))?;
                let r = upgrade(&c, &rt, &new)
                    .map_err(|e| Failed::from(format!("{e:#}\n{}", c.log_tail())));
                drop(c);
                r
            })
        })
        .collect()
}

/// Containers started under the old containerd keep running under the new one, which reconnects to
/// their shim (task API v2, as the old containerd started it) and drives them: exec, an exit seen,
/// kill, delete.
fn upgrade(c: &Containerd, rt: &Runtime, new: &Generation) -> Result<()> {
    c.ctr_run(
        &["-d"],
        "up1",
        &["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    )
    .ok()?;
    c.ctr_run(&["-d"], "up2", &["sh", "-c", "sleep 4; exit 9"])
        .ok()?;
    let p1 = c.wait_task("up1", "RUNNING")?;
    c.wait_task("up2", "RUNNING")?;
    c.restart_as(new)?;
    let p1b = c
        .wait_task("up1", "RUNNING")
        .context("up1 after the upgrade")?;
    ensure!(p1 == p1b, "up1's pid changed: {p1} -> {p1b}");
    let out = c
        .ctr_exec(
            &["--exec-id", "after-upgrade"],
            "up1",
            &["sh", "-c", "echo up-$((40+2)); exit 5"],
        )
        .run()?;
    ensure!(
        out.code == 5 && out.stdout.contains("up-42"),
        "exec through the old shim under the new containerd: {out}"
    );
    c.wait_task("up2", "STOPPED")
        .context("up2's exit under the new containerd")?;
    delete_reports(c, "up2", 9)?;
    c.ctr(CTR_NAMESPACE).args(["task", "kill", "up1"]).ok()?;
    c.wait_task("up1", "STOPPED")?;
    delete_reports(c, "up1", 0)?;
    ensure!(
        rt.state(&c.runtime_root(CTR_NAMESPACE), "up1").is_err(),
        "the runtime still knows up1"
    );
    eventually("no containers left", Duration::from_secs(5), || {
        Ok(containers(c)?.is_empty().then_some(()))
    })?;
    Ok(())
}
