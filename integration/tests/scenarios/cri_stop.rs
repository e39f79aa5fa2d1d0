//! StopPodSandbox / RemovePodSandbox of pods the way Kubernetes' CRI validation suite (critest) leaves
//! them: containers still running when the pod is stopped (the kubelet's pod teardown, no StopContainer
//! first), a pod with a PortMapping (CNI portmap in containerd's own network namespace), several
//! containers in one pod, and a container whose init has exited on its own while a process it started
//! is still running in its cgroup (the runc shim's `kill --all` of a stopped init). Every stop and
//! removal has a deadline of its own, so a hang fails the scenario instead of stalling the suite.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use integration::cmd::Cmd;
use integration::containerd::{Containerd, CRI_HANDLER};
use integration::cri::{
    self, ContainerState, Cri, NamespaceMode, PodSandboxConfig, PodSandboxState, PortMapping,
    Protocol,
};
use integration::host;
use integration::images::BUSYBOX;
use integration::runtime::Runtime;

use super::eventually;

type Scenario = fn(&Containerd, &Runtime) -> Result<()>;

pub const LIST: &[(&str, Scenario)] = &[
    ("port_mapping_pod_stop", port_mapping_pod_stop),
    ("multi_container_pod_stop", multi_container_pod_stop),
    (
        "init_exited_child_running_pod_stop",
        init_exited_child_running,
    ),
];

/// How long StopPodSandbox and RemovePodSandbox may take (containerd's own waits are minutes long).
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// A busybox web server serving `body` on port 80, started by the shell that stays the container's
/// init (like nginx's or apache's master with its workers): killing the init leaves the server running
/// in the container's cgroup, since CRI containers without namespace options share the pod's pid
/// namespace (pid POD, as critest's), where the kernel does not end the rest with the init.
fn web_server(body: &str) -> String {
    format!(
        "mkdir -p /www && echo {body} > /www/index.html && {{ httpd -f -p 80 -h /www & wait; }}"
    )
}

/// critest's busybox container (`echo ...; sleep 1000`), its `sleep` made a child of the shell (busybox
/// sh would exec a last simple command): it holds the container's stdout.
const BUSYBOX_SLEEP: &str = "echo hello-from-busybox; sleep 1000 & wait";

/// A pod of this instance's cgroup parent under `group`, with `ports` mapped.
fn pod(c: &Containerd, name: &str, group: &str, ports: &[(i32, i32)]) -> Result<PodSandboxConfig> {
    let log_dir = c.layout.logs.join(name);
    fs::create_dir_all(&log_dir)?;
    let parent = format!("{}/{group}", c.cgroup_parent());
    let mut cfg = cri::pod_config(name, &format!("uid-{name}"), &log_dir, &parent, false);
    cfg.port_mappings = ports
        .iter()
        .map(|&(container_port, host_port)| PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port,
            host_port,
            host_ip: String::new(),
        })
        .collect();
    Ok(cfg)
}

/// `wget` from inside containerd's network namespace (where the pods' host ports live), with busybox
/// of the host; None while nothing answers. (Debian's static busybox wget crashes with `-T`: the
/// command's own timeout bounds it instead.)
fn fetch_in_node_netns(c: &Containerd, url: &str) -> Result<Option<String>> {
    let out = Cmd::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", c.pid()))
        .args(["--", "busybox", "wget", "-q", "-O", "-", url])
        .timeout(Duration::from_secs(10))
        .run()?;
    Ok((out.code == 0).then(|| out.stdout.trim().to_string()))
}

/// Pids in cgroup `rel` (any hierarchy that has it).
fn cgroup_procs(rel: &str) -> Vec<i32> {
    let mut v: Vec<i32> = host::cgroup_hierarchies()
        .iter()
        .filter_map(|h| {
            fs::read_to_string(h.join(rel.trim_start_matches('/')).join("cgroup.procs")).ok()
        })
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// containerd's log lines (its own, and those its shims write there) at level error, or that say a
/// shim could not kill what an init left: what explains a stop that hangs.
fn log_problems(c: &Containerd) -> String {
    let log = fs::read_to_string(&c.layout.log).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("failed to kill init's children"))
        .collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Fails if a shim logged that the runtime could not kill what the init of container `id` left (the
/// runc shim: "failed to kill init's children" error="OCI runtime killall failed: ..." id=ID; the
/// berth shim: "failed to kill init's children of ID: ...").
fn ensure_children_killed(c: &Containerd, id: &str) -> Result<()> {
    let log = fs::read_to_string(&c.layout.log).unwrap_or_default();
    if let Some(l) = log
        .lines()
        .find(|l| l.contains("failed to kill init's children") && l.contains(id))
    {
        bail!("the runtime's `kill --all {id} 9` after the init exited failed: {l}");
    }
    Ok(())
}

/// StopPodSandbox and RemovePodSandbox within STOP_LIMIT each, then: every container exited, nothing
/// of the pod left in the runtime, no cgroup of the pod or its containers.
fn stop_and_remove(
    c: &Containerd,
    rt: &Runtime,
    cri: &mut Cri,
    pod: &str,
    parent: &str,
    containers: &[&str],
) -> Result<()> {
    let t0 = Instant::now();
    let stopped = cri.stop_pod_sandbox_within(pod, STOP_LIMIT);
    let took = t0.elapsed();
    if let Err(e) = stopped {
        let states: Vec<String> = containers
            .iter()
            .map(|id| match cri.container_status(id) {
                Ok(s) => format!(
                    "{id}: {} exit {}",
                    ContainerState::try_from(s.state)
                        .map(|s| s.as_str_name())
                        .unwrap_or("?"),
                    s.exit_code
                ),
                Err(e) => format!("{id}: {e:#}"),
            })
            .collect();
        bail!(
            "StopPodSandbox failed after {took:?}: {e:#}\ncontainers: {states:#?}\n\
             errors in the containerd log:\n{}",
            log_problems(c)
        );
    }
    eprintln!("[integ] StopPodSandbox took {took:.2?}");
    ensure!(
        cri.pod_sandbox_status(pod)?.state == PodSandboxState::SandboxNotready as i32,
        "sandbox still ready after StopPodSandbox"
    );
    for id in containers {
        let s = cri.container_status(id)?;
        ensure!(
            s.state == ContainerState::ContainerExited as i32,
            "container {id} not EXITED after StopPodSandbox: {s:?}"
        );
        ensure_children_killed(c, id)?;
    }
    cri.remove_pod_sandbox_within(pod, STOP_LIMIT)
        .with_context(|| log_problems(c))?;
    ensure!(
        !cri.list_pod_sandboxes()?.iter().any(|p| p.id == pod),
        "sandbox listed after RemovePodSandbox"
    );
    let root = c.runtime_root(integration::containerd::CRI_NAMESPACE);
    for id in containers.iter().chain([&pod]) {
        ensure!(
            rt.state(&root, id).is_err(),
            "the runtime still knows {id} after RemovePodSandbox"
        );
        ensure!(
            !host::cgroup_exists(&format!("{parent}/{id}")),
            "cgroup {parent}/{id} left after RemovePodSandbox"
        );
    }
    Ok(())
}

/// critest's port mapping test: a pod with container port 80 mapped to host port 8080, a web server in
/// it, reached through the host port (from containerd's network namespace) and from a second container
/// of the pod; then the pod is stopped with both containers running.
fn port_mapping_pod_stop(c: &Containerd, rt: &Runtime) -> Result<()> {
    let mut cri = Cri::connect(&c.layout.socket)?;
    let cfg = pod(c, "portpod", "portpods", &[(80, 8080)])?;
    let parent = cfg.linux.as_ref().unwrap().cgroup_parent.clone();
    let pod = cri.run_pod_sandbox(cfg.clone(), CRI_HANDLER)?;
    let st = cri.pod_sandbox_status(&pod)?;
    let ip = st.network.map(|n| n.ip).unwrap_or_default();
    ensure!(ip.starts_with("10.123.0."), "pod got no bridge address");

    let web = cri.create_container(
        &pod,
        cri::container_config(
            "web",
            BUSYBOX,
            &["sh", "-c", &web_server("hello-port-80")],
            "web.log",
        ),
        cfg.clone(),
    )?;
    cri.start_container(&web)?;
    let side = cri.create_container(
        &pod,
        cri::container_config("side", BUSYBOX, &["sh", "-c", BUSYBOX_SLEEP], "side.log"),
        cfg.clone(),
    )?;
    cri.start_container(&side)?;

    // From the second container, over the pod's loopback.
    let got = eventually(
        "the web server from the pod's second container",
        Duration::from_secs(20),
        || {
            let r = cri.exec_sync(
                &side,
                &["wget", "-q", "-O", "-", "http://127.0.0.1:80/"],
                10,
            )?;
            Ok((r.exit_code == 0).then(|| String::from_utf8_lossy(&r.stdout).trim().to_string()))
        },
    )?;
    ensure!(got == "hello-port-80", "web server answered {got:?}");
    // Through the host port: portmap's DNAT in containerd's namespace, to the bridge's gateway address.
    let got = eventually(
        "the web server through host port 8080",
        Duration::from_secs(20),
        || fetch_in_node_netns(c, "http://10.123.0.1:8080/"),
    )?;
    ensure!(got == "hello-port-80", "host port 8080 answered {got:?}");

    stop_and_remove(c, rt, &mut cri, &pod, &parent, &[&web, &side])?;
    ensure!(
        fetch_in_node_netns(c, "http://10.123.0.1:8080/")?.is_none(),
        "host port 8080 still answers after RemovePodSandbox"
    );
    Ok(())
}

/// critest's multi-container pod: a web server and critest's busybox (both inits with a child), a loop
/// that ignores SIGTERM, a plain `sleep` as init; no port mapping; stopped all at once by
/// StopPodSandbox.
fn multi_container_pod_stop(c: &Containerd, rt: &Runtime) -> Result<()> {
    let mut cri = Cri::connect(&c.layout.socket)?;
    let cfg = pod(c, "multipod", "multipods", &[])?;
    let parent = cfg.linux.as_ref().unwrap().cgroup_parent.clone();
    let pod = cri.run_pod_sandbox(cfg.clone(), CRI_HANDLER)?;
    let mut ids = Vec::new();
    for (name, cmd) in [
        ("web", web_server("hello-multi")),
        (
            "stubborn",
            "trap '' TERM; while :; do sleep 1; done".to_string(),
        ),
        ("busybox", BUSYBOX_SLEEP.to_string()),
        ("sleeper", "exec sleep 1000".to_string()),
    ] {
        let id = cri.create_container(
            &pod,
            cri::container_config(name, BUSYBOX, &["sh", "-c", &cmd], &format!("{name}.log")),
            cfg.clone(),
        )?;
        cri.start_container(&id)?;
        ids.push(id);
    }
    for id in &ids {
        let s = cri.container_status(id)?;
        ensure!(
            s.state == ContainerState::ContainerRunning as i32,
            "{id} not running: {s:?}"
        );
    }
    let got = eventually("the web server", Duration::from_secs(20), || {
        let r = cri.exec_sync(
            &ids[1],
            &["wget", "-q", "-O", "-", "http://127.0.0.1:80/"],
            10,
        )?;
        Ok((r.exit_code == 0).then(|| String::from_utf8_lossy(&r.stdout).trim().to_string()))
    })?;
    ensure!(got == "hello-multi", "web server answered {got:?}");
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    stop_and_remove(c, rt, &mut cri, &pod, &parent, &refs)
}

/// A pod sharing one pid namespace (pid POD, like `shareProcessNamespace`), with a port mapping: a web
/// server that daemonizes (busybox `httpd` without -f) and a `sleep` in the background holding the
/// container's stdout: the container's init exits at once, both keep running in its cgroup; and a second,
/// running container. When the init
/// exits, the shim ends what is left in the container's cgroup (the runc shim: `RUNTIME kill --all ID
/// 9`), so the container is reported EXITED and its cgroup empties; then the pod is stopped.
fn init_exited_child_running(c: &Containerd, rt: &Runtime) -> Result<()> {
    let mut cri = Cri::connect(&c.layout.socket)?;
    let mut cfg = pod(c, "daemonpod", "daemonpods", &[(80, 8081)])?;
    let shared_pid = |ns: &mut Option<cri::NamespaceOption>| {
        ns.get_or_insert_with(Default::default).pid = NamespaceMode::Pod as i32;
    };
    if let Some(sc) = cfg.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        shared_pid(&mut sc.namespace_options);
    }
    let parent = cfg.linux.as_ref().unwrap().cgroup_parent.clone();
    let pod = cri.run_pod_sandbox(cfg.clone(), CRI_HANDLER)?;

    let side_cfg = {
        let mut x = cri::container_config(
            "side",
            BUSYBOX,
            &["sh", "-c", "while :; do sleep 1; done"],
            "side.log",
        );
        shared_pid(
            &mut x
                .linux
                .get_or_insert_with(Default::default)
                .security_context
                .get_or_insert_with(Default::default)
                .namespace_options,
        );
        x
    };
    let side = cri.create_container(&pod, side_cfg, cfg.clone())?;
    cri.start_container(&side)?;

    let mut daemon_cfg = cri::container_config(
        "daemon",
        BUSYBOX,
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello-daemon > /www/index.html && httpd -p 80 -h /www && \
             { sleep 1000 & echo daemonized; }",
        ],
        "daemon.log",
    );
    shared_pid(
        &mut daemon_cfg
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
            .namespace_options,
    );
    let daemon = cri.create_container(&pod, daemon_cfg, cfg.clone())?;
    cri.start_container(&daemon)?;

    // The init exits 0 at once: the container is EXITED, and what it left in its cgroup (the httpd
    // daemon) is ended by the shim.
    let s = eventually(
        "the daemonizing container to be EXITED",
        Duration::from_secs(20),
        || {
            let s = cri.container_status(&daemon)?;
            Ok((s.state == ContainerState::ContainerExited as i32).then_some(s))
        },
    )
    .with_context(|| format!("errors in the containerd log:\n{}", log_problems(c)))?;
    ensure_children_killed(c, &daemon)?;
    ensure!(
        s.exit_code == 0,
        "the daemonizing init exited {}: {s:?}",
        s.exit_code
    );
    let log = fs::read_to_string(c.layout.logs.join("daemonpod/daemon.log")).unwrap_or_default();
    ensure!(
        log.contains("daemonized"),
        "httpd did not daemonize: log {log:?}"
    );
    let cg = format!("{parent}/{daemon}");
    let left = eventually(
        "the daemon's cgroup to empty after its init exited",
        Duration::from_secs(20),
        || {
            let p = cgroup_procs(&cg);
            Ok(p.is_empty().then_some(p))
        },
    )
    .with_context(|| {
        format!(
            "still in {cg}: {:?} (the shim did not end the init's children)\n{}",
            cgroup_procs(&cg),
            log_problems(c)
        )
    })?;
    ensure!(left.is_empty());
    ensure!(
        fetch_in_node_netns(c, "http://10.123.0.1:8081/")?.is_none(),
        "the daemonized web server still answers on host port 8081 after its container exited"
    );
    ensure!(
        cri.container_status(&side)?.state == ContainerState::ContainerRunning as i32,
        "the other container of the pod did not survive"
    );

    stop_and_remove(c, rt, &mut cri, &pod, &parent, &[&daemon, &side])
}
