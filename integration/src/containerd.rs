//! A containerd of its own per test group: config generated for whichever containerd generation runs it
//! (1.6 reads config version 2, 2.x version 3/4: `containerd config default` says which), all state in a
//! scratch area, optionally inside a network namespace of its own (for a CNI bridge that never touches
//! the host), with the CRI plugin enabled and a runtime handler that runs the runtime under test.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cmd::{wait_for, Cmd, Output};
use crate::host;
use crate::images::{self, BUSYBOX, PAUSE};
use crate::runtime::{ShimKind, ShimRuntime};
use crate::scratch::Scratch;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The CRI runtime handler name that points at the runtime under test.
pub const CRI_HANDLER: &str = "integ";
/// Containerd namespace for the ctr scenarios (CRI uses "k8s.io").
pub const CTR_NAMESPACE: &str = "integ";
pub const CRI_NAMESPACE: &str = "k8s.io";

/// One containerd build: Debian's (/usr/bin) or the one in $CONTAINERD_BIN_DIR.
#[derive(Debug, Clone)]
pub struct Generation {
    /// None for the system one (found on PATH).
    pub bin_dir: Option<PathBuf>,
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    /// e.g. "1.6.20", "2.3.4".
    pub version: String,
    /// The config `version` its `config default` prints (2 for 1.x, 3 or 4 for 2.x).
    pub config_version: u32,
    /// Whether it knows `io.containerd.shim.v1.manager`'s `socket_dir` (else shim sockets go to
    /// /run/containerd/s whatever the config says).
    pub shim_socket_dir: bool,
}

impl Generation {
    pub fn detect(bin_dir: Option<&Path>) -> Result<Generation> {
        let (containerd, ctr) = match bin_dir {
            Some(d) => (d.join("containerd"), d.join("ctr")),
            None => (crate::cmd::which("containerd")?, crate::cmd::which("ctr")?),
        };
        for b in [&containerd, &ctr] {
            if !b.is_file() {
                bail!("{} not found", b.display());
            }
        }
        let v = Cmd::new(&containerd).arg("--version").ok()?;
        // "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
        let version = v
            .out()
            .split_whitespace()
            .nth(2)
            .map(|s| {
                s.trim_start_matches('v')
                    .split(['~', '+', '-'])
                    .next()
                    .unwrap_or(s)
                    .to_string()
            })
            .with_context(|| {
                format!("parsing `{} --version`: {}", containerd.display(), v.out())
            })?;
        let def = Cmd::new(&containerd).args(["config", "default"]).ok()?;
        let config_version = def
            .stdout
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "version")
                    .then(|| v.trim().parse::<u32>().ok())
                    .flatten()
            })
            .with_context(|| {
                format!(
                    "no `version = N` in `{} config default`",
                    containerd.display()
                )
            })?;
        let shim_socket_dir = def.stdout.contains("io.containerd.shim.v1.manager")
            && def.stdout.contains("socket_dir");
        Ok(Generation {
            bin_dir: bin_dir.map(Path::to_path_buf),
            containerd,
            ctr,
            version,
            config_version,
            shim_socket_dir,
        })
    }

    /// Debian's containerd, then the one in $CONTAINERD_BIN_DIR if set. Each entry is (label, result):
    /// a generation that cannot be used is reported, not skipped silently.
    pub fn all() -> Vec<(String, Result<Generation>)> {
        let mut v = vec![];
        let sys = Generation::detect(None);
        v.push((
            sys.as_ref()
                .map(|g| g.label())
                .unwrap_or_else(|_| "containerd-system".into()),
            sys,
        ));
        if let Some(d) = std::env::var_os("CONTAINERD_BIN_DIR") {
            let d = PathBuf::from(d);
            let g = Generation::detect(Some(&d));
            v.push((
                g.as_ref()
                    .map(|g| g.label())
                    .unwrap_or_else(|_| "containerd-bin-dir".into()),
                g,
            ));
        }
        v
    }

    /// "containerd-1.6.20": used in test names and output lines.
    pub fn label(&self) -> String {
        format!("containerd-{}", self.version)
    }

    /// PATH for the daemon: containerd resolves `io.containerd.X.v2` to containerd-shim-X-v2 on its own
    /// PATH, so a generation's bin dir goes first (Debian's 1.6 runc shim fails under 2.x).
    /// $INTEG_SHIM_DIR (where a containerd-shim-berth-v2 would be) goes before everything.
    fn daemon_path(&self, shim_dir: Option<&Path>) -> String {
        let mut p = match &self.bin_dir {
            Some(d) => format!("{}:{DEFAULT_PATH}", d.display()),
            None => DEFAULT_PATH.to_string(),
        };
        if let Some(extra) = std::env::var_os("INTEG_SHIM_DIR") {
            p = format!("{}:{p}", Path::new(&extra).display());
        }
        if let Some(d) = shim_dir {
            p = format!("{}:{p}", d.display());
        }
        p
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Enable the CRI plugin (sandbox image localhost/pause:latest, handler CRI_HANDLER).
    pub cri: bool,
    /// Run the daemon in a network namespace of its own (lo up) with a CNI bridge conflist, so pod
    /// networks never touch the host.
    pub own_netns: bool,
}

/// Paths of one containerd instance, all in its scratch area.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub ttrpc: PathBuf,
    pub opt: PathBuf,
    pub shim_sockets: PathBuf,
    pub fifo: PathBuf,
    pub runtime_root: PathBuf,
    pub cni_conf: PathBuf,
    pub cni_ipam: PathBuf,
    pub logs: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            root: dir.join("root"),
            state: dir.join("state"),
            socket: dir.join("c.sock"),
            ttrpc: dir.join("c.sock.ttrpc"),
            opt: dir.join("opt"),
            shim_sockets: dir.join("s"),
            fifo: dir.join("fifo"),
            runtime_root: dir.join("rt"),
            cni_conf: dir.join("cni/net.d"),
            cni_ipam: dir.join("cni/ipam"),
            logs: dir.join("logs"),
            config: dir.join("config.toml"),
            log: dir.join("containerd.log"),
        }
    }
}

fn q(p: &Path) -> String {
    toml_str(&p.display().to_string())
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The runtime handler table body (runtime_type and options) shared by both config formats. The runc
/// shim gets runc's options keys; the berth shim gets `ConfigPath` (containerd 1.6's CRI only passes a
/// path to non-runc runtime types) or, with `inline`, the same keys as runc's (containerd 1.7+ passes the
/// whole table to the shim as `ConfigBody`).
fn runtime_table(out: &mut String, prefix: &str, shim: &ShimRuntime, inline: bool) {
    let _ = writeln!(out, "[{prefix}.containerd.runtimes.{CRI_HANDLER}]");
    let _ = writeln!(out, "  runtime_type = {}", toml_str(&shim.runtime_type));
    let _ = writeln!(out, "[{prefix}.containerd.runtimes.{CRI_HANDLER}.options]");
    if shim.kind == ShimKind::Berth && !inline {
        if let Some(c) = &shim.config_path {
            let _ = writeln!(out, "  ConfigPath = {}", q(c));
        }
        return;
    }
    if let Some(b) = &shim.binary_name {
        let _ = writeln!(out, "  BinaryName = {}", q(b));
    }
    if let Some(r) = &shim.root {
        let _ = writeln!(out, "  Root = {}", q(r));
    }
    let _ = writeln!(out, "  SystemdCgroup = {}", shim.systemd_cgroup);
}

/// The config.toml for `gen` (its config version), with all paths in layout `l`.
pub fn render_config(
    gen: &Generation,
    l: &Layout,
    opts: &Options,
    shim: &ShimRuntime,
) -> Result<String> {
    let mut c = String::new();
    let _ = writeln!(c, "version = {}", gen.config_version);
    let _ = writeln!(c, "root = {}", q(&l.root));
    let _ = writeln!(c, "state = {}", q(&l.state));
    let _ = writeln!(c, "imports = []");
    let _ = writeln!(c, "oom_score = 0");
    match gen.config_version {
        2 => {
            let disabled = if opts.cri {
                "[]"
            } else {
                "[\"io.containerd.grpc.v1.cri\"]"
            };
            let _ = writeln!(c, "disabled_plugins = {disabled}");
            let _ = writeln!(c, "[grpc]\n  address = {}", q(&l.socket));
            let _ = writeln!(c, "[ttrpc]\n  address = {}", q(&l.ttrpc));
            let _ = writeln!(
                c,
                "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = {}",
                q(&l.opt)
            );
            if opts.cri {
                let p = "plugins.\"io.containerd.grpc.v1.cri\"";
                let _ = writeln!(c, "[{p}]");
                let _ = writeln!(c, "  sandbox_image = {}", toml_str(PAUSE));
                let _ = writeln!(c, "  netns_mounts_under_state_dir = true");
                let _ = writeln!(
                    c,
                    "  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\""
                );
                let _ = writeln!(
                    c,
                    "  disable_apparmor = true\n  restrict_oom_score_adj = true"
                );
                let _ = writeln!(
                    c,
                    "[{p}.cni]\n  bin_dir = \"/usr/lib/cni\"\n  conf_dir = {}\n  max_conf_num = 1",
                    q(&l.cni_conf)
                );
                let _ = writeln!(
                    c,
                    "[{p}.containerd]\n  snapshotter = \"overlayfs\"\n  default_runtime_name = {}",
                    toml_str(CRI_HANDLER)
                );
                runtime_table(&mut c, p, shim, false);
            }
        }
        3 | 4 => {
            let mut disabled = vec!["io.containerd.nri.v1.nri"];
            if !opts.cri {
                disabled.extend([
                    "io.containerd.grpc.v1.cri",
                    "io.containerd.cri.v1.runtime",
                    "io.containerd.cri.v1.images",
                ]);
            }
            let list: Vec<String> = disabled.iter().map(|s| toml_str(s)).collect();
            let _ = writeln!(c, "disabled_plugins = [{}]", list.join(", "));
            let _ = writeln!(
                c,
                "[plugins.'io.containerd.server.v1.grpc']\n  address = {}",
                q(&l.socket)
            );
            let _ = writeln!(
                c,
                "[plugins.'io.containerd.server.v1.ttrpc']\n  address = {}",
                q(&l.ttrpc)
            );
            let _ = writeln!(
                c,
                "[plugins.'io.containerd.internal.v1.opt']\n  path = {}",
                q(&l.opt)
            );
            if gen.shim_socket_dir {
                let _ = writeln!(
                    c,
                    "[plugins.'io.containerd.shim.v1.manager']\n  socket_dir = {}",
                    q(&l.shim_sockets)
                );
            }
            if opts.cri {
                let _ = writeln!(
                    c,
                    "[plugins.'io.containerd.cri.v1.images']\n  snapshotter = \"overlayfs\""
                );
                let _ = writeln!(
                    c,
                    "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = {}",
                    toml_str(PAUSE)
                );
                let p = "plugins.'io.containerd.cri.v1.runtime'";
                let _ = writeln!(c, "[{p}]");
                let _ = writeln!(c, "  netns_mounts_under_state_dir = true");
                let _ = writeln!(
                    c,
                    "  disable_apparmor = true\n  restrict_oom_score_adj = true"
                );
                let _ = writeln!(c, "  enable_cdi = false\n  cdi_spec_dirs = []");
                let _ = writeln!(c, "[{p}.cni]\n  bin_dirs = [\"/usr/lib/cni\"]\n  conf_dir = {}\n  max_conf_num = 1", q(&l.cni_conf));
                let _ = writeln!(
                    c,
                    "[{p}.containerd]\n  default_runtime_name = {}",
                    toml_str(CRI_HANDLER)
                );
                runtime_table(&mut c, p, shim, true);
                let _ = writeln!(
                    c,
                    "[plugins.'io.containerd.grpc.v1.cri']\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\""
                );
            }
        }
        v => bail!(
            "containerd {} wants config version {v}, which this harness does not know",
            gen.version
        ),
    }
    Ok(c)
}

/// CNI: a bridge (host-local IPAM, its data in the scratch area), portmap (a pod's PortMappings as DNAT
/// rules in the daemon's network namespace: `host_port` is a port of that namespace) plus loopback. Only
/// used when the daemon has a network namespace of its own, so the bridge, veths and iptables rules never
/// reach the host.
pub fn render_cni(l: &Layout, name: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "integ0",
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.123.0.0/24"}]],
                    "dataDir": l.cni_ipam.display().to_string()
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "loopback"}
        ]
    })
    .to_string()
}

struct Inner {
    scratch: Scratch,
    child: Option<Child>,
}

/// A running containerd with everything under its scratch area.
pub struct Containerd {
    gen: Mutex<Generation>,
    pub layout: Layout,
    pub shim: ShimRuntime,
    pub opts: Options,
    /// The scratch area's unique name (cgroup parent, CNI network name).
    pub name: String,
    pid: std::sync::atomic::AtomicI32,
    /// Where containerd-shim-berth-v2 is linked for containerd's PATH (berth shim only).
    shim_dir: Option<PathBuf>,
    inner: Mutex<Option<Inner>>,
}

impl Containerd {
    /// Starts containerd `gen` with `opts`, the runtime under test as its shim runtime (built by
    /// `shim(runtime_root)`), and imports the busybox image (and the pause image into k8s.io with CRI).
    pub fn start(
        gen: &Generation,
        opts: Options,
        shim: impl FnOnce(PathBuf) -> ShimRuntime,
    ) -> Result<Containerd> {
        let scratch = Scratch::new(&gen.label())?;
        let layout = Layout::new(scratch.path());
        let name = scratch.name();
        let mut shim = shim(layout.runtime_root.clone());
        for d in [
            &layout.root,
            &layout.state,
            &layout.opt,
            &layout.fifo,
            &layout.runtime_root,
            &layout.logs,
        ] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let mut shim_dir = None;
        if shim.kind == ShimKind::Berth {
            let conf = layout.dir.join("berth-shim.toml");
            fs::write(&conf, shim.options_toml())
                .with_context(|| format!("writing {}", conf.display()))?;
            shim.config_path = Some(conf);
            let bin = crate::runtime::berth_shim()?;
            let dir = layout.dir.join("bin");
            fs::create_dir_all(&dir)?;
            std::os::unix::fs::symlink(&bin, dir.join(ShimKind::Berth.binary()))
                .with_context(|| format!("linking {} into {}", bin.display(), dir.display()))?;
            shim_dir = Some(dir);
        }
        if opts.cri && opts.own_netns {
            fs::create_dir_all(&layout.cni_conf)?;
            fs::create_dir_all(&layout.cni_ipam)?;
            fs::write(
                layout.cni_conf.join("10-integ.conflist"),
                render_cni(&layout, &name),
            )?;
        }
        let me = Containerd {
            gen: Mutex::new(gen.clone()),
            layout,
            shim,
            opts,
            name,
            pid: std::sync::atomic::AtomicI32::new(0),
            shim_dir,
            inner: Mutex::new(Some(Inner {
                scratch,
                child: None,
            })),
        };
        me.launch(gen)?;
        me.import(CTR_NAMESPACE, &images::get()?.busybox)?;
        if me.opts.cri {
            me.import(CRI_NAMESPACE, &images::get()?.busybox)?;
            me.import(CRI_NAMESPACE, &images::get()?.pause)?;
        }
        Ok(me)
    }

    /// The generation running now.
    pub fn gen(&self) -> Generation {
        self.gen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> i32 {
        self.pid.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Writes the config for `gen` and starts that daemon on this instance's directories.
    fn launch(&self, gen: &Generation) -> Result<()> {
        let config = render_config(gen, &self.layout, &self.opts, &self.shim)?;
        fs::write(&self.layout.config, &config)
            .with_context(|| format!("writing {}", self.layout.config.display()))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.layout.log)
            .with_context(|| format!("opening {}", self.layout.log.display()))?;
        let mut cmd = if self.opts.own_netns {
            // unshare execs its command in place (no --fork): the pid is containerd's.
            let mut c = Command::new("unshare");
            c.args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\"",
            ])
            .arg(&gen.containerd);
            c
        } else {
            Command::new(&gen.containerd)
        };
        cmd.arg("--config").arg(&self.layout.config);
        cmd.env("PATH", gen.daemon_path(self.shim_dir.as_deref()))
            .env_remove("CONTAINERD_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own session: no signal from the terminal of `cargo test`.
        // SAFETY: setsid is async-signal-safe; the closure runs in the child between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", gen.containerd.display()))?;
        self.pid
            .store(child.id() as i32, std::sync::atomic::Ordering::SeqCst);
        *self.gen.lock().unwrap_or_else(|e| e.into_inner()) = gen.clone();
        if let Some(inner) = self.inner.lock().unwrap().as_mut() {
            inner.child = Some(child);
        }
        let t0 = std::time::Instant::now();
        self.wait_ready().with_context(|| self.log_tail())?;
        eprintln!(
            "[integ] {}: socket answered after {:.2?}",
            gen.label(),
            t0.elapsed()
        );
        Ok(())
    }

    /// Stops the daemon (SIGTERM: its shims and containers keep running) and waits for it.
    pub fn stop_daemon(&self) -> Result<()> {
        let child = self
            .inner
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|i| i.child.take());
        let Some(mut child) = child else {
            return Ok(());
        };
        if !host::terminate_child(&mut child, Duration::from_secs(10)) {
            bail!("containerd ignored SIGTERM for 10 s");
        }
        Ok(())
    }

    /// Stops the daemon and starts `gen` (the same one for a restart, another for an upgrade) on the
    /// same root, state and sockets.
    pub fn restart_as(&self, gen: &Generation) -> Result<()> {
        self.stop_daemon()?;
        self.launch(gen)
    }

    fn wait_ready(&self) -> Result<()> {
        wait_for(
            "containerd to answer on its socket",
            Duration::from_secs(20),
            || {
                if !host::alive(self.pid()) {
                    bail!("containerd (pid {}) exited", self.pid());
                }
                if !self.layout.socket.exists() {
                    return Ok(None);
                }
                let out = self
                    .ctr(CTR_NAMESPACE)
                    .arg("version")
                    .timeout(Duration::from_secs(5))
                    .run()?;
                Ok((out.code == 0).then_some(()))
            },
        )
    }

    /// The last lines of the daemon's log (for error messages).
    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.layout.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        format!(
            "containerd log ({}):\n{}",
            self.layout.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// `ctr` of this generation, talking to this daemon in namespace `ns`.
    pub fn ctr(&self, ns: &str) -> Cmd {
        Cmd::new(self.gen().ctr)
            .env(
                "CONTAINERD_ADDRESS",
                self.layout.socket.display().to_string(),
            )
            .args(["--namespace", ns])
    }

    pub fn import(&self, ns: &str, tar: &Path) -> Result<Output> {
        self.ctr(ns)
            .args(["images", "import"])
            .arg(tar)
            .timeout(Duration::from_secs(120))
            .ok()
    }

    /// `ctr run` with the runtime under test selected, IO FIFOs in the scratch area and the container
    /// in our cgroup; `extra` goes before the image (e.g. --rm, -d, -t), `args` after the id.
    pub fn ctr_run(&self, extra: &[&str], id: &str, args: &[&str]) -> Cmd {
        let cgroup = format!("/{}/{id}", self.name);
        self.ctr(CTR_NAMESPACE)
            .arg("run")
            .args(self.shim.ctr_flags())
            .arg("--fifo-dir")
            .arg(&self.layout.fifo)
            .args(["--cgroup", &cgroup])
            .args(extra)
            .arg(BUSYBOX)
            .arg(id)
            .args(args)
    }

    /// (pid, STATUS) of task `id` in the ctr namespace, from `ctr task ls`; None if not listed.
    pub fn task(&self, id: &str) -> Result<Option<(i32, String)>> {
        let out = self.ctr(CTR_NAMESPACE).args(["task", "ls"]).ok()?;
        for l in out.stdout.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 3 && f[0] == id {
                return Ok(Some((f[1].parse().unwrap_or(0), f[2].to_string())));
            }
        }
        Ok(None)
    }

    /// Waits (up to 15 s) until task `id` has STATUS `want`; its pid.
    pub fn wait_task(&self, id: &str, want: &str) -> Result<i32> {
        let mut last = None;
        wait_for(
            &format!("task {id} to be {want}"),
            Duration::from_secs(15),
            || {
                last = self.task(id)?;
                Ok(last
                    .as_ref()
                    .and_then(|(pid, st)| (st == want).then_some(*pid)))
            },
        )
        .with_context(|| match &last {
            Some((pid, st)) => format!("last seen: pid {pid}, {st}"),
            None => "last seen: not listed".to_string(),
        })
    }

    /// `ctr task exec` with IO FIFOs in the scratch area (else ctr makes them in /run/containerd/fifo);
    /// `extra` goes before the container id (e.g. --exec-id X, -t).
    pub fn ctr_exec(&self, extra: &[&str], id: &str, args: &[&str]) -> Cmd {
        self.ctr(CTR_NAMESPACE)
            .args(["task", "exec", "--fifo-dir"])
            .arg(&self.layout.fifo)
            .args(extra)
            .arg(id)
            .args(args)
    }

    /// Where the runtime under test keeps containers of namespace `ns` (for `RUNTIME --root X state`).
    pub fn runtime_root(&self, ns: &str) -> PathBuf {
        self.shim
            .root_for_namespace(ns)
            .unwrap_or_else(|| PathBuf::from("/run/containerd/runc").join(ns))
    }

    /// The cgroup parent for CRI pods of this instance.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    /// Stops the daemon and removes everything it and its shims left. Idempotent.
    pub fn teardown(&self) -> Vec<String> {
        let Some(mut inner) = self.inner.lock().unwrap().take() else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        // Containers first (through their cgroups), so shims see their exits, then the daemon.
        for d in host::remove_cgroup(&self.cgroup_parent()) {
            notes.push(format!("cgroup left: {}", d.display()));
        }
        if let Some(mut child) = inner.child.take() {
            if !host::terminate_child(&mut child, Duration::from_secs(10)) {
                notes.push("containerd ignored SIGTERM for 10 s: SIGKILL".into());
            }
        }
        notes.extend(inner.scratch.teardown());
        notes
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for n in self.teardown() {
            eprintln!("[integ teardown {}] {n}", self.gen().label());
        }
    }
}
