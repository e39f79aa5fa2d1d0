//! The shim's command line, as containerd writes it: Go `flag` syntax (`-name value`, `-name=value`,
//! `--name value`, bare booleans), flags first, then the action (`start`, `delete`, or none).

use anyhow::{bail, Result};

/// Flags containerd passes to every shim invocation, plus the action.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    /// containerd's main (gRPC) socket.
    pub address: String,
    pub publish_binary: String,
    /// Only with `delete`: the bundle of the container whose shim is gone.
    pub bundle: String,
    pub debug: bool,
    /// `-v`: print the version and exit.
    pub version: bool,
    /// `-info`: print the runtime info (containerd 2.x asks before the first start).
    pub info: bool,
    /// `start`, `delete`, `serve` (the daemon, started by `start`), or empty.
    pub action: String,
}

const BOOLS: &[&str] = &["debug", "v", "version", "info"];
const VALUES: &[&str] = &[
    "namespace",
    "id",
    "address",
    "publish-binary",
    "bundle",
    "socket",
];

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags> {
    let mut f = Flags::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            f.action = it.next().unwrap_or_default();
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            f.action = a;
            break;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if BOOLS.contains(&name) {
            let on = match inline.as_deref() {
                None | Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => bail!("flag -{name}: invalid boolean {v:?}"),
            };
            match name {
                "debug" => f.debug = on,
                "info" => f.info = on,
                _ => f.version = on,
            }
            continue;
        }
        if !VALUES.contains(&name) {
            bail!("unknown flag -{name}");
        }
        let value = match inline {
            Some(v) => v,
            None => match it.next() {
                Some(v) => v,
                None => bail!("flag -{name} needs a value"),
            },
        };
        match name {
            "namespace" => f.namespace = value,
            "id" => f.id = value,
            "address" => f.address = value,
            "publish-binary" => f.publish_binary = value,
            "bundle" => f.bundle = value,
            _ => {} // -socket: accepted for compatibility, unused
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Flags {
        parse(s.split_whitespace().map(String::from)).unwrap()
    }

    #[test]
    fn containerd_start_line() {
        let f = p("-namespace k8s.io -address /run/c.sock -publish-binary /usr/bin/containerd -id abc start");
        assert_eq!(f.namespace, "k8s.io");
        assert_eq!(f.address, "/run/c.sock");
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
        assert_eq!(f.id, "abc");
        assert_eq!(f.action, "start");
        assert!(!f.debug);
    }

    #[test]
    fn delete_line_with_bundle_and_debug() {
        let f = p("-namespace=ns -id x -bundle /b -debug delete");
        assert_eq!(f.bundle, "/b");
        assert!(f.debug);
        assert_eq!(f.action, "delete");
    }

    #[test]
    fn version_and_info() {
        assert!(p("-v").version);
        assert!(p("--info").info);
        assert!(parse(["-bogus".to_string()]).is_err());
        assert!(parse(["-id".to_string()]).is_err());
    }
}
