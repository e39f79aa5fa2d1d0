//! A Docker engine of its own (Debian's dockerd 20.10): daemon.json with data-root, exec-root, pidfile and
//! socket in a scratch area, no iptables/bridge, cgroupfs under a cgroup parent of our own, and the runtime
//! under test registered under `runtimes` (dockerd runs it through containerd's runc shim, BinaryName).
//! The client is /usr/bin/docker (20.10) explicitly: another one may come first on PATH.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cmd::{wait_for, which, Cmd};
use crate::host;
use crate::images;
use crate::runtime::Runtime;
use crate::scratch::Scratch;

pub const DOCKER_CLIENT: &str = "/usr/bin/docker";

struct Inner {
    scratch: Scratch,
    child: Option<Child>,
}

pub struct Docker {
    pub runtime: Runtime,
    /// The name the runtime is registered under (`docker run --runtime NAME`); "runc" is reserved.
    pub runtime_name: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub name: String,
    pub pid: i32,
    pub version: String,
    inner: Mutex<Option<Inner>>,
}

impl Docker {
    pub fn start(runtime: &Runtime) -> Result<Docker> {
        let dockerd = which("dockerd")?;
        if !PathBuf::from(DOCKER_CLIENT).is_file() {
            bail!("{DOCKER_CLIENT} (Debian's docker.io client) is missing");
        }
        let scratch = Scratch::new("docker")?;
        let d = scratch.path().to_path_buf();
        let name = scratch.name();
        let runtime_name = format!("integ-{}", runtime.name);
        let socket = d.join("docker.sock");
        fs::create_dir_all(d.join("client"))?;
        let config = serde_json::json!({
            "data-root": d.join("data"),
            "exec-root": d.join("exec"),
            "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", socket.display())],
            "deprecated-key-path": d.join("key.json"),
            "iptables": false,
            "ip6tables": false,
            "ip-forward": false,
            "ip-masq": false,
            "bridge": "none",
            "userland-proxy": false,
            "storage-driver": "overlay2",
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": format!("/{name}"),
            "log-driver": "json-file",
            "runtimes": { runtime_name.clone(): { "path": runtime.path } },
        });
        fs::write(d.join("daemon.json"), serde_json::to_vec_pretty(&config)?)?;
        let log = fs::File::create(d.join("dockerd.log"))?;
        let mut cmd = Command::new(&dockerd);
        cmd.arg("--config-file")
            .arg(d.join("daemon.json"))
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid is async-signal-safe; the closure runs in the child between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn().context("starting dockerd")?;
        let pid = child.id() as i32;
        let mut me = Docker {
            runtime: runtime.clone(),
            runtime_name,
            dir: d,
            socket,
            name,
            pid,
            version: String::new(),
            inner: Mutex::new(Some(Inner {
                scratch,
                child: Some(child),
            })),
        };
        let version = wait_for("dockerd to answer", Duration::from_secs(60), || {
            if !host::alive(pid) {
                bail!("dockerd exited:\n{}", me.log_tail());
            }
            if !me.socket.exists() {
                return Ok(None);
            }
            let o = me
                .cmd(&["version", "--format", "{{.Server.Version}}"])
                .timeout(Duration::from_secs(10))
                .run()?;
            Ok((o.code == 0).then(|| o.out().to_string()))
        })
        .with_context(|| me.log_tail())?;
        me.version = version;
        me.cmd(&["load", "-i"])
            .arg(&images::get()?.busybox)
            .timeout(Duration::from_secs(120))
            .ok()
            .context("docker load")?;
        Ok(me)
    }

    /// `/usr/bin/docker ARGS...` against this daemon.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(DOCKER_CLIENT)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env(
                "DOCKER_CONFIG",
                self.dir.join("client").display().to_string(),
            )
            .args(args)
    }

    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        format!(
            "dockerd log:\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// Where the runtime keeps this daemon's containers. dockerd 20.10 makes EXEC-ROOT/runtime-NAME for a
    /// `path` runtime but passes the shim Root = EXEC-ROOT/runtime-runc whatever the name (the default
    /// runtime's), and the runc shim appends the containerd namespace (moby).
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.join("exec/runtime-runc/moby")
    }

    /// The shim's bundle directory of container `id` (config.json, options.json with BinaryName).
    pub fn task_dir(&self, id: &str) -> PathBuf {
        self.dir
            .join("exec/containerd/daemon/io.containerd.runtime.v2.task/moby")
            .join(id)
    }

    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    pub fn teardown(&self) -> Vec<String> {
        let Some(mut inner) = self.inner.lock().unwrap().take() else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        if let Ok(o) = self
            .cmd(&["ps", "-aq"])
            .timeout(Duration::from_secs(20))
            .run()
        {
            let ids: Vec<&str> = o.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                if let Ok(o) = self.cmd(&args).timeout(Duration::from_secs(60)).run() {
                    if o.code != 0 {
                        notes.push(format!("docker rm -f: {o}"));
                    }
                }
            }
        }
        for d in host::remove_cgroup(&self.cgroup_parent()) {
            notes.push(format!("cgroup left: {}", d.display()));
        }
        if let Some(mut child) = inner.child.take() {
            // dockerd stops the containerd it started.
            if !host::terminate_child(&mut child, Duration::from_secs(20)) {
                notes.push("dockerd ignored SIGTERM for 20 s: SIGKILL".into());
            }
        }
        notes.extend(inner.scratch.teardown());
        notes
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for n in self.teardown() {
            eprintln!("[integ teardown docker] {n}");
        }
    }
}
