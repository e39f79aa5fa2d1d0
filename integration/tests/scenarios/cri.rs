//! Kubernetes CRI through containerd's CRI plugin, runtime handler `integ` whose BinaryName is the runtime
//! under test: what the kubelet does for a pod with one container.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use integration::containerd::{Containerd, CRI_HANDLER, CRI_NAMESPACE};
use integration::cri::{self, ContainerState, Cri, LinuxContainerResources, PodSandboxState};
use integration::host;
use integration::images::BUSYBOX;
use integration::runtime::Runtime;

use super::eventually;

type Scenario = fn(&Containerd, &Runtime) -> Result<()>;

pub const LIST: &[(&str, Scenario)] = &[
    ("pod_network_lifecycle", pod_network_lifecycle),
    ("host_network_pod", host_network_pod),
    ("oom_killed", oom_killed),
];

const WORKLOAD: &str =
    "echo hello-from-cri; echo to-stderr >&2; trap 'echo got-term; exit 0' TERM; \
                        while :; do sleep 1; done";

/// Pod (CNI bridge in containerd's own netns) + container: status, ExecSync, logs, stop, remove.
fn pod_network_lifecycle(c: &Containerd, rt: &Runtime) -> Result<()> {
    let mut cri = Cri::connect(&c.layout.socket)?;
    let v = cri.version()?;
    ensure!(v.runtime_name == "containerd", "CRI version: {v:?}");
    ensure!(
        cri.image_status(BUSYBOX)?.is_some(),
        "CRI does not see {BUSYBOX} in namespace {CRI_NAMESPACE}"
    );

    let log_dir = c.layout.logs.join("pod1");
    fs::create_dir_all(&log_dir)?;
    let parent = format!("{}/pods", c.cgroup_parent());
    let pod_cfg = cri::pod_config("pod1", "uid-pod1", &log_dir, &parent, false);
    let pod = cri.run_pod_sandbox(pod_cfg.clone(), CRI_HANDLER)?;
    let st = cri.pod_sandbox_status(&pod)?;
    ensure!(
        st.state == PodSandboxState::SandboxReady as i32,
        "sandbox not ready: {st:?}"
    );
    let ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    ensure!(
        ip.starts_with("10.123.0."),
        "pod got no address from the CNI bridge: {:?}",
        st.network
    );
    let root = c.runtime_root(CRI_NAMESPACE);
    ensure!(
        rt.status(&root, &pod)
            .context("the runtime under test does not hold the sandbox")?
            == "running"
    );

    let ctr_cfg = cri::container_config("c1", BUSYBOX, &["sh", "-c", WORKLOAD], "c1.log");
    let id = cri.create_container(&pod, ctr_cfg, pod_cfg.clone())?;
    ensure!(
        cri.container_status(&id)?.state == ContainerState::ContainerCreated as i32,
        "not CREATED after CreateContainer"
    );
    cri.start_container(&id)?;
    let s = cri.container_status(&id)?;
    ensure!(
        s.state == ContainerState::ContainerRunning as i32,
        "not RUNNING after StartContainer: {s:?}"
    );
    ensure!(
        rt.status(&root, &id)
            .context("the runtime under test does not hold the container")?
            == "running"
    );

    // A second container in the same pod, served by the pod's shim.
    let id2 = cri.create_container(
        &pod,
        // SIGTERM ignored (SIG_IGN, not a handler): StopContainer must escalate to SIGKILL.
        cri::container_config(
            "c2",
            BUSYBOX,
            &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
            "c2.log",
        ),
        pod_cfg.clone(),
    )?;
    cri.start_container(&id2)?;
    ensure!(
        cri.container_status(&id2)?.state == ContainerState::ContainerRunning as i32,
        "second container not running"
    );
    ensure!(rt.status(&root, &id2)? == "running");
    let shim_bin = c.shim.kind.binary();
    let shims_of = |x: &str| c.shim.kind.daemons_for(x);
    ensure!(
        shims_of(&pod).len() == 1 && shims_of(&id).is_empty() && shims_of(&id2).is_empty(),
        "expected one {shim_bin} for the pod (sandbox {pod}): pod {:?}, c1 {:?}, c2 {:?}",
        shims_of(&pod),
        shims_of(&id),
        shims_of(&id2)
    );

    // Stats: CPU and memory of the container, from the shim's cgroup metrics.
    let st = eventually(
        "container stats with CPU and memory",
        Duration::from_secs(10),
        || {
            let s = cri.container_stats(&id)?;
            let cpu = s
                .cpu
                .as_ref()
                .and_then(|c| c.usage_core_nano_seconds.as_ref())
                .map(|v| v.value);
            let mem = s
                .memory
                .as_ref()
                .and_then(|m| m.working_set_bytes.as_ref())
                .map(|v| v.value);
            Ok(matches!((cpu, mem), (Some(c), Some(m)) if c > 0 && m > 0).then_some(s))
        },
    )?;
    ensure!(
        st.attributes.as_ref().map(|a| a.id.as_str()) == Some(id.as_str()),
        "stats for the wrong container: {st:?}"
    );

    // UpdateContainerResources: the shim's Update (the runtime's `update`) changes the limit the
    // container sees in its own cgroup.
    cri.update_container_resources(
        &id,
        LinuxContainerResources {
            memory_limit_in_bytes: 96 << 20,
            ..Default::default()
        },
    )?;
    let r = cri.exec_sync(
        &id,
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
        10,
    )?;
    let seen = String::from_utf8_lossy(&r.stdout).trim().to_string();
    ensure!(
        seen == (96u64 << 20).to_string(),
        "memory limit inside after UpdateContainerResources(96 MiB): {seen:?} (stderr {:?})",
        String::from_utf8_lossy(&r.stderr)
    );

    // ExecSync: stdout, stderr, exit code.
    let r = cri.exec_sync(
        &id,
        &["sh", "-c", "echo exec-out; echo exec-err >&2; exit 7"],
        20,
    )?;
    ensure!(
        r.exit_code == 7,
        "ExecSync exit code {} (expected 7)",
        r.exit_code
    );
    ensure!(
        r.stdout == b"exec-out\n",
        "ExecSync stdout {:?}",
        String::from_utf8_lossy(&r.stdout)
    );
    ensure!(
        r.stderr == b"exec-err\n",
        "ExecSync stderr {:?}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = cri.exec_sync(&id, &["hostname"], 20)?;
    ensure!(
        String::from_utf8_lossy(&r.stdout).trim() == "pod1",
        "hostname {:?}",
        String::from_utf8_lossy(&r.stdout)
    );
    let r = cri.exec_sync(&id, &["ip", "-o", "-4", "addr", "show", "eth0"], 20)?;
    ensure!(
        String::from_utf8_lossy(&r.stdout).contains(&format!("{ip}/")),
        "eth0 does not carry {ip}: {r:?}"
    );
    let r = cri.exec_sync(&id, &["cat", "/proc/self/cgroup"], 20)?;
    let cg = String::from_utf8_lossy(&r.stdout).into_owned();
    ensure!(
        cg.contains(&format!("{parent}/")),
        "container not under cgroup parent {parent}: {cg}"
    );

    // Logs: the CRI log format (timestamp stream tag message) in the pod's log directory.
    let log = log_dir.join("c1.log");
    eventually("container log lines", Duration::from_secs(10), || {
        let s = fs::read_to_string(&log).unwrap_or_default();
        Ok(
            (s.contains(" stdout F hello-from-cri") && s.contains(" stderr F to-stderr"))
                .then_some(()),
        )
    })
    .with_context(|| {
        format!(
            "log file {}: {:?}",
            log.display(),
            fs::read_to_string(&log).unwrap_or_default()
        )
    })?;

    // StopContainer: SIGTERM is trapped, so the container exits 0 well within the timeout.
    let t0 = Instant::now();
    cri.stop_container(&id, 20)?;
    ensure!(
        t0.elapsed() < Duration::from_secs(10),
        "StopContainer took {:?}: SIGTERM not delivered?",
        t0.elapsed()
    );
    let s = cri.container_status(&id)?;
    ensure!(
        s.state == ContainerState::ContainerExited as i32,
        "not EXITED after StopContainer: {s:?}"
    );
    ensure!(
        s.exit_code == 0,
        "exit code {} after a trapped SIGTERM",
        s.exit_code
    );
    let logs = fs::read_to_string(&log)?;
    ensure!(
        logs.contains(" stdout F got-term"),
        "no got-term in the log: {logs}"
    );

    cri.remove_container(&id)?;
    cri.stop_container(&id2, 2)?;
    let s2 = cri.container_status(&id2)?;
    ensure!(
        s2.state == ContainerState::ContainerExited as i32 && s2.exit_code == 137,
        "c2 ignores SIGTERM: expected a kill after the timeout (137): {s2:?}"
    );
    cri.remove_container(&id2)?;
    ensure!(
        cri.list_containers(&pod)?.is_empty(),
        "containers left in the pod after RemoveContainer"
    );
    ensure!(
        rt.state(&root, &id).is_err(),
        "the runtime still knows {id} after RemoveContainer"
    );

    cri.stop_pod_sandbox(&pod)?;
    let st = cri.pod_sandbox_status(&pod)?;
    ensure!(
        st.state == PodSandboxState::SandboxNotready as i32,
        "sandbox still ready after StopPodSandbox"
    );
    cri.remove_pod_sandbox(&pod)?;
    ensure!(
        !cri.list_pod_sandboxes()?.iter().any(|p| p.id == pod),
        "sandbox listed after RemovePodSandbox"
    );
    ensure!(
        rt.state(&root, &pod).is_err(),
        "the runtime still knows the sandbox after RemovePodSandbox"
    );
    ensure!(
        !host::cgroup_exists(&format!("{parent}/{id}")),
        "container cgroup left"
    );
    ensure!(
        !host::cgroup_exists(&format!("{parent}/{pod}")),
        "sandbox cgroup left"
    );
    Ok(())
}

/// A host-network pod (NamespaceMode NODE, empty hostname): the container shares the node's network
/// namespace (here containerd's own) and hostname.
fn host_network_pod(c: &Containerd, rt: &Runtime) -> Result<()> {
    let mut cri = Cri::connect(&c.layout.socket)?;
    let log_dir = c.layout.logs.join("hostpod");
    fs::create_dir_all(&log_dir)?;
    let parent = format!("{}/hostpods", c.cgroup_parent());
    let pod_cfg = cri::pod_config("hostpod", "uid-hostpod", &log_dir, &parent, true);
    let pod = cri.run_pod_sandbox(pod_cfg.clone(), CRI_HANDLER)?;
    let id = cri.create_container(
        &pod,
        cri::container_config("h1", BUSYBOX, &["sh", "-c", WORKLOAD], "h1.log"),
        pod_cfg,
    )?;
    cri.start_container(&id)?;
    ensure!(rt.status(&c.runtime_root(CRI_NAMESPACE), &id)? == "running");

    let node_netns = fs::read_link(format!("/proc/{}/ns/net", c.pid()))?
        .display()
        .to_string();
    let r = cri.exec_sync(&id, &["readlink", "/proc/self/ns/net"], 20)?;
    let got = String::from_utf8_lossy(&r.stdout).trim().to_string();
    ensure!(
        got == node_netns,
        "host-network container in netns {got}, node (containerd) is in {node_netns}"
    );
    let r = cri.exec_sync(&id, &["hostname"], 20)?;
    let host_name = nix::unistd::gethostname()?.to_string_lossy().into_owned();
    ensure!(
        String::from_utf8_lossy(&r.stdout).trim() == host_name,
        "hostname {:?} != node's {host_name}",
        r.stdout
    );

    cri.stop_container(&id, 20)?;
    ensure!(cri.container_status(&id)?.exit_code == 0);
    cri.remove_container(&id)?;
    cri.stop_pod_sandbox(&pod)?;
    cri.remove_pod_sandbox(&pod)?;
    Ok(())
}

/// A container over its memory limit is killed by the kernel and reported OOMKilled (the shim's
/// TaskOOM event), exit code 137.
fn oom_killed(c: &Containerd, _rt: &Runtime) -> Result<()> {
    let mut cri = Cri::connect(&c.layout.socket)?;
    let log_dir = c.layout.logs.join("oompod");
    fs::create_dir_all(&log_dir)?;
    let parent = format!("{}/oompods", c.cgroup_parent());
    let pod_cfg = cri::pod_config("oompod", "uid-oompod", &log_dir, &parent, true);
    let pod = cri.run_pod_sandbox(pod_cfg.clone(), CRI_HANDLER)?;
    let mut cfg = cri::container_config(
        "hog",
        BUSYBOX,
        // The string doubles until the 32 MiB limit is hit.
        &["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"],
        "hog.log",
    );
    if let Some(l) = cfg.linux.as_mut() {
        l.resources = Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            ..Default::default()
        });
    }
    let id = cri.create_container(&pod, cfg, pod_cfg)?;
    cri.start_container(&id)?;
    let s = eventually("the hog to be OOM-killed", Duration::from_secs(60), || {
        let s = cri.container_status(&id)?;
        Ok((s.state == ContainerState::ContainerExited as i32).then_some(s))
    })?;
    ensure!(
        s.reason == "OOMKilled" && s.exit_code == 137,
        "expected reason OOMKilled, exit code 137: reason {:?}, exit code {}, message {:?}",
        s.reason,
        s.exit_code,
        s.message
    );
    cri.remove_container(&id)?;
    cri.stop_pod_sandbox(&pod)?;
    cri.remove_pod_sandbox(&pod)?;
    Ok(())
}
