//! The shim's command line actions other than serving: `start` under both containerd generations,
//! `delete` of a bundle whose shim is gone, and `-info`.
//!
//! `start` tells the protocols apart by what arrives on stdin:
//! - containerd 2.3 sends a `BootstrapParams` message whose `instance_id` and `namespace` equal our `-id`
//!   and `-namespace`; runtime options are among its `extensions`, the socket directory may be given.
//!   The reply is a `BootstrapResult` (version 3: task API v3, protocol ttrpc) on stdout.
//! - containerd 1.6 sends the runtime options `Any` (or nothing) and reads a bare `unix://` address: the
//!   shim then speaks task API v2. An `Any` also parses as a `BootstrapParams` (its type URL lands in
//!   `instance_id`), hence the identity check.
//!
//! Either way the daemon is the same binary (`serve`), handed the listening socket as fd 3, and serves
//! both task API versions.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::bootstrap_api::{BootstrapParams, BootstrapResult};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use sha2::{Digest, Sha256};

use crate::args::Flags;
use crate::options::RuntimeOptions;
use crate::{events, mount, sys, OPTIONS_ENV, SOCKET_ENV};

/// Where shim sockets go when containerd does not say (what 1.6 and the runc shim use).
const DEFAULT_SOCKET_DIR: &str = "/run/containerd/s";
/// The CRI annotation that groups a pod's containers into one shim.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// Task API version announced in a BootstrapResult.
const TASK_API_V3: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// containerd 1.x (and 2.0–2.2): options on stdin, bare address back, task API v2.
    Legacy,
    /// containerd 2.3+: BootstrapParams in, BootstrapResult out, task API v3.
    Bootstrap,
}

/// What `start` learnt from containerd.
#[derive(Debug)]
pub struct StartParams {
    pub protocol: Protocol,
    pub ttrpc_address: String,
    pub grpc_address: String,
    pub socket_dir: Option<String>,
    pub options: Option<Any>,
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut v = Vec::new();
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(v);
    }
    stdin
        .lock()
        .take(10 << 20)
        .read_to_end(&mut v)
        .context("reading stdin")?;
    Ok(v)
}

/// Decides the protocol from stdin (see the module docs).
pub fn parse_start_input(input: &[u8], flags: &Flags) -> Result<StartParams> {
    if !input.is_empty() {
        if let Ok(p) = BootstrapParams::parse_from_bytes(input) {
            if p.instance_id == flags.id && p.namespace == flags.namespace {
                // Runtime options: the extension whose type is one we know (there may be others,
                // e.g. CRI's sandbox config).
                let options = p.extensions.iter().find_map(|ext| {
                    let a = ext.value.as_ref()?;
                    let name = a.type_url.rsplit('/').next().unwrap_or_default();
                    [
                        crate::options::RUNC_OPTIONS,
                        crate::options::RUNTIME_OPTIONS,
                    ]
                    .contains(&name)
                    .then(|| a.clone())
                });
                return Ok(StartParams {
                    protocol: Protocol::Bootstrap,
                    ttrpc_address: if p.containerd_ttrpc_address.is_empty() {
                        std::env::var("TTRPC_ADDRESS").unwrap_or_default()
                    } else {
                        p.containerd_ttrpc_address.clone()
                    },
                    grpc_address: if p.containerd_grpc_address.is_empty() {
                        flags.address.clone()
                    } else {
                        p.containerd_grpc_address.clone()
                    },
                    socket_dir: p.socket_dir.clone().filter(|d| !d.is_empty()),
                    options,
                });
            }
        }
    }
    let options = if input.is_empty() {
        None
    } else {
        Some(
            Any::parse_from_bytes(input)
                .context("runtime options on stdin are not a protobuf Any")?,
        )
    };
    Ok(StartParams {
        protocol: Protocol::Legacy,
        ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        grpc_address: flags.address.clone(),
        socket_dir: None,
        options: options.filter(|a| !a.type_url.is_empty()),
    })
}

/// The group a container belongs to: its pod's sandbox id, else itself.
fn group_id(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["annotations"][SANDBOX_ID].as_str().map(String::from))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

/// DIR/sha256(containerd address, namespace, group): one socket per group per containerd.
pub fn socket_path(dir: &str, grpc_address: &str, ns: &str, group: &str) -> PathBuf {
    let h = Sha256::digest(format!("{grpc_address}/{ns}/{group}").as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(dir).join(hex)
}

fn reply(protocol: Protocol, address: &str) -> Result<()> {
    let out = match protocol {
        Protocol::Legacy => address.as_bytes().to_vec(),
        Protocol::Bootstrap => BootstrapResult {
            version: TASK_API_V3,
            address: address.to_string(),
            protocol: "ttrpc".into(),
            ..Default::default()
        }
        .write_to_bytes()?,
    };
    let mut so = std::io::stdout().lock();
    so.write_all(&out)?;
    so.flush()?;
    Ok(())
}

pub fn start(flags: &Flags) -> Result<()> {
    let input = read_stdin()?;
    let p = parse_start_input(&input, flags)?;
    anyhow::ensure!(
        !p.ttrpc_address.is_empty(),
        "containerd's ttrpc address is unknown (no TTRPC_ADDRESS, no bootstrap params)"
    );
    let options = match &p.options {
        Some(a) => RuntimeOptions::from_any(&a.type_url, &a.value)?,
        None => RuntimeOptions::default(),
    };
    let bundle = std::env::current_dir().context("the bundle (working directory)")?;
    let group = group_id(&bundle, &flags.id);
    let dir = p.socket_dir.as_deref().unwrap_or(DEFAULT_SOCKET_DIR);
    let sock = socket_path(dir, &p.grpc_address, &flags.namespace, &group);
    let address = format!("unix://{}", sock.display());

    if UnixStream::connect(&sock).is_ok() {
        // A shim of this group (the pod's) is serving: reuse it.
        std::fs::write(bundle.join("address"), &address)?;
        return reply(p.protocol, &address);
    }
    let _ = std::fs::remove_file(&sock);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .with_context(|| format!("creating {dir}"))?;
    let listener = match UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e)
            if e.kind() == std::io::ErrorKind::AddrInUse && UnixStream::connect(&sock).is_ok() =>
        {
            std::fs::write(bundle.join("address"), &address)?;
            return reply(p.protocol, &address);
        }
        Err(e) => return Err(e).with_context(|| format!("binding {}", sock.display())),
    };

    let exe = std::fs::read_link("/proc/self/exe").context("/proc/self/exe")?;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !matches!(k.as_str(), OPTIONS_ENV | SOCKET_ENV | "TTRPC_ADDRESS"))
        .collect();
    env.push(("TTRPC_ADDRESS".into(), p.ttrpc_address.clone()));
    env.push((OPTIONS_ENV.into(), serde_json::to_string(&options)?));
    env.push((SOCKET_ENV.into(), sock.display().to_string()));
    let mut argv: Vec<&std::ffi::OsStr> = vec![exe.as_os_str()];
    for a in [
        "-namespace",
        flags.namespace.as_str(),
        "-id",
        flags.id.as_str(),
        "-address",
        p.grpc_address.as_str(),
        "-publish-binary",
        flags.publish_binary.as_str(),
    ] {
        argv.push(std::ffi::OsStr::new(a));
    }
    if flags.debug {
        argv.push("-debug".as_ref());
    }
    argv.push("serve".as_ref());
    let pid = sys::spawn(&sys::SpawnSpec {
        path: &exe,
        argv,
        env,
        fds: vec![(listener.as_raw_fd(), 3)],
        setsid: true,
    })?;
    drop(listener);
    std::fs::write(bundle.join("shim.pid"), pid.to_string())?;
    std::fs::write(bundle.join("address"), &address)?;
    reply(p.protocol, &address)
}

/// The daemon's stderr → the bundle's `log` FIFO, which containerd reads (when it made one).
pub fn log_to_fifo() {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log");
    if let Ok(f) = f {
        let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
    }
}

/// `delete`: the shim of this bundle is gone; stop what is left and report a killed task.
pub fn delete(flags: &Flags) -> Result<()> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir()?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let opts = RuntimeOptions::load(&bundle)?;
    let binary = crate::runtime::resolve(opts.binary())?;
    // A container whose processes are still dying can make the first delete fail (its cgroup is busy):
    // try a few times before leaving it to the operator.
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
        }
        let out = std::process::Command::new(&binary)
            .arg("--root")
            .arg(opts.root_for(&flags.namespace))
            .arg("--log")
            .arg(bundle.join("log.json"))
            .args(["--log-format", "json"])
            .args(if opts.systemd_cgroup {
                &["--systemd-cgroup"][..]
            } else {
                &[][..]
            })
            .args(["delete", "--force", &flags.id])
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {} delete", binary.display()))?;
        last = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.success() || last.contains("does not exist") || last.contains("not found") {
            last.clear();
            break;
        }
    }
    if !last.is_empty() {
        eprintln!("{}: delete --force {}: {last}", binary.display(), flags.id);
    }
    mount::unmount_all(&bundle.join("rootfs"));
    let resp = DeleteResponse {
        pid: 0,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(events::timestamp(SystemTime::now())),
        ..Default::default()
    };
    std::io::stdout().write_all(&resp.write_to_bytes()?)?;
    Ok(())
}

/// `-info`: the runtime's name and version, for containerd 2.x's introspection.
pub fn info() -> Result<()> {
    let _ = read_stdin();
    let ri = RuntimeInfo {
        name: crate::RUNTIME_TYPE.into(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    std::io::stdout().write_all(&ri.write_to_bytes()?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::bootstrap_api::Extension;

    fn flags() -> Flags {
        Flags {
            id: "c1".into(),
            namespace: "k8s.io".into(),
            address: "/run/c.sock".into(),
            ..Default::default()
        }
    }

    #[test]
    fn legacy_any_on_stdin() {
        let any = Any {
            type_url: crate::options::RUNC_OPTIONS.into(),
            value: vec![],
            ..Default::default()
        };
        let p = parse_start_input(&any.write_to_bytes().unwrap(), &flags()).unwrap();
        assert_eq!(p.protocol, Protocol::Legacy);
        assert_eq!(p.options.unwrap().type_url, crate::options::RUNC_OPTIONS);
        let p = parse_start_input(&[], &flags()).unwrap();
        assert_eq!(p.protocol, Protocol::Legacy);
        assert!(p.options.is_none());
        assert_eq!(p.grpc_address, "/run/c.sock");
    }

    #[test]
    fn bootstrap_params_with_options_extension() {
        let bp = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "k8s.io".into(),
            containerd_ttrpc_address: "/t.sock".into(),
            containerd_grpc_address: "/g.sock".into(),
            socket_dir: Some("/s".into()),
            extensions: vec![
                Extension {
                    value: MessageField::some(Any {
                        type_url: "containerd.io/cri.v1.Something".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Extension {
                    value: MessageField::some(Any {
                        type_url: crate::options::RUNTIME_OPTIONS.into(),
                        value: vec![0x12, 0x02, b'/', b'x'],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let p = parse_start_input(&bp.write_to_bytes().unwrap(), &flags()).unwrap();
        assert_eq!(p.protocol, Protocol::Bootstrap);
        assert_eq!(p.ttrpc_address, "/t.sock");
        assert_eq!(p.grpc_address, "/g.sock");
        assert_eq!(p.socket_dir.as_deref(), Some("/s"));
        assert_eq!(p.options.unwrap().type_url, crate::options::RUNTIME_OPTIONS);
    }

    #[test]
    fn socket_is_per_group() {
        let a = socket_path("/s", "/c.sock", "ns", "pod");
        assert_eq!(a, socket_path("/s", "/c.sock", "ns", "pod"));
        assert_ne!(a, socket_path("/s", "/c.sock", "ns2", "pod"));
        assert!(a.to_str().unwrap().len() < 108);
    }
}
