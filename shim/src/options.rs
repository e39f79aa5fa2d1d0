//! Runtime options: which runc-compatible binary to drive (`BinaryName`), its state root (`Root`, the
//! containerd namespace is appended) and `SystemdCgroup`.
//!
//! They reach the shim in one of three shapes, all decoded here into [`RuntimeOptions`]:
//! - `containerd.runc.v1.Options` (the runc shim's own options message),
//! - `runtimeoptions.v1.Options` with `ConfigPath` (a TOML file) or `ConfigBody` (the TOML of the
//!   runtime's options table): what `ctr --runtime-config-path` and the CRI plugin send to any runtime
//!   type other than `io.containerd.runc.v*`. containerd 1.6's CRI sends only `ConfigPath`; 1.7+ puts
//!   the whole options table in `ConfigBody` when there is no path.
//!
//! containerd 1.6 passes the `Any` on `start`'s stdin and again in CreateTask; 2.3 passes it inside the
//! bootstrap message's extensions (and in CreateTask). Whatever the route, the same decoder runs.
//! The options in force for a container are written to `BUNDLE/options.json`, so that `delete` (a shim
//! that is gone) finds the same runtime and root.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use serde::{Deserialize, Serialize};

pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
pub const RUNTIME_OPTIONS: &str = "runtimeoptions.v1.Options";
/// The runtime binary when the options name none.
pub const DEFAULT_BINARY: &str = "berth";
pub const OPTIONS_FILE: &str = "options.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    /// BinaryName: a path or a name on PATH; empty means [`DEFAULT_BINARY`].
    #[serde(default)]
    pub binary_name: String,
    /// Root: the runtime's state root before the namespace is appended; empty means
    /// `/run/containerd/<binary file name>` (so runc lands where the runc shim puts it).
    #[serde(default)]
    pub root: String,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

impl RuntimeOptions {
    pub fn binary(&self) -> &str {
        if self.binary_name.is_empty() {
            DEFAULT_BINARY
        } else {
            &self.binary_name
        }
    }

    /// The `--root` for containers of containerd namespace `ns`.
    pub fn root_for(&self, ns: &str) -> PathBuf {
        let base = if self.root.is_empty() {
            let name = Path::new(self.binary())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_BINARY.to_string());
            PathBuf::from("/run/containerd").join(name)
        } else {
            PathBuf::from(&self.root)
        };
        base.join(ns)
    }

    /// Decodes a runtime options `Any` (type URL and value). An empty type URL means no options.
    pub fn from_any(type_url: &str, value: &[u8]) -> Result<RuntimeOptions> {
        // containerd writes bare names; protobuf's Any::pack prefixes a host.
        let name = type_url.rsplit('/').next().unwrap_or_default();
        match name {
            "" => Ok(RuntimeOptions::default()),
            RUNC_OPTIONS => {
                let o = RuncOptions::parse_from_bytes(value)
                    .context("decoding containerd.runc.v1.Options")?;
                Ok(RuntimeOptions {
                    binary_name: o.binary_name,
                    root: o.root,
                    systemd_cgroup: o.systemd_cgroup,
                })
            }
            RUNTIME_OPTIONS => {
                let (path, body) = decode_runtimeoptions(value)?;
                if !path.is_empty() {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("runtime options ConfigPath {path}"))?;
                    from_toml(&text).with_context(|| format!("runtime options ConfigPath {path}"))
                } else if !body.is_empty() {
                    let text =
                        String::from_utf8(body).context("runtime options ConfigBody is not UTF-8")?;
                    from_toml(&text).context("runtime options ConfigBody")
                } else {
                    Ok(RuntimeOptions::default())
                }
            }
            other => bail!(
                "unsupported runtime options type {other:?} (want {RUNC_OPTIONS} or {RUNTIME_OPTIONS})"
            ),
        }
    }

    /// Writes BUNDLE/options.json.
    pub fn save(&self, bundle: &Path) -> Result<()> {
        let p = bundle.join(OPTIONS_FILE);
        std::fs::write(&p, serde_json::to_vec(self)?)
            .with_context(|| format!("writing {}", p.display()))
    }

    /// Reads BUNDLE/options.json (defaults when it is missing).
    pub fn load(bundle: &Path) -> Result<RuntimeOptions> {
        let p = bundle.join(OPTIONS_FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parsing {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RuntimeOptions::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }
}

/// The keys of the runc options table (`BinaryName`, `Root`, `SystemdCgroup`), as a containerd user
/// writes them in config.toml; snake_case spellings are accepted too. Other keys are ignored, as
/// containerd's own TOML decoding ignores them.
fn from_toml(text: &str) -> Result<RuntimeOptions> {
    let table: toml::Table = text.parse().context("parsing TOML")?;
    let mut o = RuntimeOptions::default();
    for (k, v) in &table {
        let key = k.to_ascii_lowercase().replace('_', "");
        match key.as_str() {
            "binaryname" => {
                o.binary_name = v
                    .as_str()
                    .with_context(|| format!("{k} must be a string"))?
                    .to_string()
            }
            "root" => {
                o.root = v
                    .as_str()
                    .with_context(|| format!("{k} must be a string"))?
                    .to_string()
            }
            "systemdcgroup" => {
                o.systemd_cgroup = v
                    .as_bool()
                    .with_context(|| format!("{k} must be a boolean"))?
            }
            _ => {}
        }
    }
    Ok(o)
}

fn varint(b: &[u8], i: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = b.get(*i) else {
            bail!("truncated varint");
        };
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("varint too long")
}

/// `runtimeoptions.v1.Options { string type_url = 1; string config_path = 2; bytes config_body = 3; }`
/// (not among containerd-shim-protos' messages): returns (config_path, config_body).
fn decode_runtimeoptions(b: &[u8]) -> Result<(String, Vec<u8>)> {
    let (mut path, mut body) = (String::new(), Vec::new());
    let mut i = 0;
    while i < b.len() {
        let tag = varint(b, &mut i)?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                varint(b, &mut i)?;
            }
            1 => i += 8,
            5 => i += 4,
            2 => {
                let len = varint(b, &mut i)? as usize;
                let end = i.checked_add(len).filter(|e| *e <= b.len());
                let Some(end) = end else {
                    bail!("runtimeoptions.v1.Options: truncated field {field}");
                };
                match field {
                    2 => {
                        path = String::from_utf8(b[i..end].to_vec())
                            .context("config_path is not UTF-8")?
                    }
                    3 => body = b[i..end].to_vec(),
                    _ => {}
                }
                i = end;
            }
            w => bail!("runtimeoptions.v1.Options: unexpected wire type {w}"),
        }
    }
    Ok((path, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, data.len() as u8];
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn runc_options_message() {
        let o = RuncOptions {
            binary_name: "/usr/bin/runc".into(),
            root: "/r".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        let got = RuntimeOptions::from_any(RUNC_OPTIONS, &o.write_to_bytes().unwrap()).unwrap();
        assert_eq!(got.binary(), "/usr/bin/runc");
        assert_eq!(got.root_for("ns"), PathBuf::from("/r/ns"));
        assert!(got.systemd_cgroup);
    }

    #[test]
    fn config_body_and_path() {
        let toml = b"BinaryName = \"runc\"\nRoot = \"/x\"\nSystemdCgroup = false\nOther = 1\n";
        let mut msg = field(1, b"t");
        msg.extend(field(3, toml));
        let got = RuntimeOptions::from_any(RUNTIME_OPTIONS, &msg).unwrap();
        assert_eq!(got.binary_name, "runc");
        assert_eq!(got.root_for("k8s.io"), PathBuf::from("/x/k8s.io"));

        let dir = std::env::temp_dir().join(format!("berth-shim-opt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("o.toml");
        std::fs::write(&p, "binary_name = \"crun\"\nsystemd_cgroup = true\n").unwrap();
        let msg = field(2, p.to_str().unwrap().as_bytes());
        let got = RuntimeOptions::from_any(&format!("type.googleapis.com/{RUNTIME_OPTIONS}"), &msg)
            .unwrap();
        assert_eq!(got.binary(), "crun");
        assert!(got.systemd_cgroup);
        assert_eq!(got.root_for("n"), PathBuf::from("/run/containerd/crun/n"));
        got.save(&dir).unwrap();
        assert_eq!(RuntimeOptions::load(&dir).unwrap(), got);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_and_errors() {
        let d = RuntimeOptions::from_any("", &[]).unwrap();
        assert_eq!(d.binary(), DEFAULT_BINARY);
        assert_eq!(
            d.root_for("default"),
            PathBuf::from("/run/containerd/berth/default")
        );
        assert!(RuntimeOptions::from_any("x.Unknown", &[]).is_err());
        assert!(RuntimeOptions::from_any(RUNTIME_OPTIONS, &[0x12, 0x05, b'a']).is_err());
        let bad = field(3, b"BinaryName = 3");
        assert!(RuntimeOptions::from_any(RUNTIME_OPTIONS, &bad).is_err());
    }
}
