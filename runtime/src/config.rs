//! Parse: read a bundle's config.json into oci-spec's types.
//!
//! Only syntax and the spec version are checked here; `validate` turns the result into a `Plan`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

/// The runtime-spec version berth implements (reported by `state` and written by `spec`).
pub const OCI_VERSION: &str = "1.3.0";

/// Read `<bundle>/config.json`. The bundle path is made absolute, as the state records it.
pub fn load(bundle: &Path) -> Result<(PathBuf, Spec)> {
    let bundle = std::path::absolute(bundle)
        .with_context(|| format!("bundle {}: cannot make the path absolute", bundle.display()))?;
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec = parse(&data).with_context(|| format!("parsing {}", path.display()))?;
    Ok((bundle, spec))
}

/// Parse a config.json's bytes, and check that its `ociVersion` is one berth implements. A value of
/// the wrong type is named by its field (`process.user.uid: invalid type: string "0", expected u32`).
pub fn parse(data: &[u8]) -> Result<Spec> {
    let mut value: serde_json::Value = serde_json::from_slice(data)?;
    let spec_1_3 = value
        .get("ociVersion")
        .and_then(|v| v.as_str())
        .is_some_and(at_least_1_3);
    if let Some(r) = value.pointer_mut("/linux/resources") {
        normalize_pids(r, spec_1_3);
    }
    check_capability_names(&value)?;
    let spec: Spec = from_value(&value)?;
    check_shapes(&value, &serde_json::to_value(&spec)?, &mut String::new())?;
    check_version(spec.version())?;
    Ok(spec)
}

/// Capabilities are named as the kernel's headers name them (`CAP_CHOWN`): oci-spec would also read
/// `CHOWN` or `cap_chown`, which runc does not know (it drops them with a warning), and a name that
/// maps to no kernel interface must be an error (config.md).
fn check_capability_names(value: &serde_json::Value) -> Result<()> {
    let Some(caps) = value
        .pointer("/process/capabilities")
        .and_then(|c| c.as_object())
    else {
        return Ok(());
    };
    for (set, names) in caps {
        for (i, name) in names.as_array().into_iter().flatten().enumerate() {
            if let Some(n) = name.as_str() {
                if !n.starts_with("CAP_") || n.bytes().any(|b| b.is_ascii_lowercase()) {
                    bail!("process.capabilities.{set}[{i}]: {n:?} is not a capability name (they are written CAP_..., e.g. CAP_CHOWN)");
                }
            }
        }
    }
    Ok(())
}

/// `resources.pids` as berth applies it: present means "set pids.max". oci-spec reads an absent
/// `limit` as 0, so a `pids` without one is dropped here (nothing to set). `limit: 0` is a real limit
/// from runtime-spec 1.3 on (runc 1.4); configs written for an older spec meant "no limit" by it
/// (podman writes 0 for `--pids-limit -1`), so there it is dropped too.
pub fn normalize_pids(resources: &mut serde_json::Value, zero_is_a_limit: bool) {
    let Some(r) = resources.as_object_mut() else {
        return;
    };
    let drop = match r.get("pids") {
        Some(serde_json::Value::Object(p)) => match p.get("limit") {
            None | Some(serde_json::Value::Null) => true,
            Some(l) => l.as_i64() == Some(0) && !zero_is_a_limit,
        },
        Some(serde_json::Value::Null) => true,
        _ => false,
    };
    if drop {
        r.remove("pids");
    }
}

/// The version is 1.3.0 or later (pre-releases of 1.3.0 included).
fn at_least_1_3(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 1 || (major == 1 && minor >= 3)
}

/// Deserialize `value` as `T`, naming the field at fault in an error.
pub fn from_value<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            anyhow::anyhow!("{}", e.inner())
        } else {
            anyhow::anyhow!("{path}: {}", e.inner())
        }
    })
}

/// serde reads a struct from a JSON array too (its fields in order): `"hooks": [...]` would pass as
/// hooks. Where the parsed config has an object, the input must have had one.
fn check_shapes(
    input: &serde_json::Value,
    parsed: &serde_json::Value,
    path: &mut String,
) -> Result<()> {
    use serde_json::Value;
    match (input, parsed) {
        (Value::Array(_), Value::Object(_)) => {
            bail!(
                "{}: invalid type: an array, expected an object",
                display_path(path)
            )
        }
        (Value::Object(i), Value::Object(p)) => {
            for (k, v) in i {
                if let Some(pv) = p.get(k) {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    check_shapes(v, pv, path)?;
                    path.truncate(len);
                }
            }
            Ok(())
        }
        (Value::Array(i), Value::Array(p)) => {
            for (n, (v, pv)) in i.iter().zip(p).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{n}]"));
                check_shapes(v, pv, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the config"
    } else {
        path
    }
}

/// Accept every 1.x version the spec defines (1.0.0 .. 1.3.0, with pre-release tags like "1.0.2-dev").
pub fn check_version(version: &str) -> Result<()> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        bail!("ociVersion {version:?} is not a version (expected MAJOR.MINOR.PATCH, e.g. 1.2.0)");
    }
    if parts[0] != "1" {
        bail!("ociVersion {version:?} is not supported: berth implements runtime-spec 1.x");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_1x_version() {
        for v in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0-rc.1",
            "1.2.0",
            "1.2.1",
            "1.3.0",
            "1.10.0",
        ] {
            check_version(v).unwrap();
        }
    }

    #[test]
    fn rejects_other_versions() {
        for v in ["", "2.0.0", "0.5.0", "1.0", "x.y.z", "1.0.0.0"] {
            assert!(check_version(v).is_err(), "{v} accepted");
        }
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let err = parse(br#"{"ociVersion": "1.0.0", "root": {"path": 3"#).unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
    }

    #[test]
    fn type_errors_name_the_field() {
        let err = parse(
            br#"{"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": "0", "gid": 0}}}"#,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").starts_with("process.user.uid: invalid type"),
            "{err:#}"
        );
        let err = parse(br#"{"ociVersion": "1.0.0", "root": {"path": 3}}"#).unwrap_err();
        assert!(format!("{err:#}").starts_with("root.path:"), "{err:#}");
    }

    #[test]
    fn pids_zero_is_a_limit_from_spec_1_3() {
        let limit = |v: &str, pids: &str| {
            let doc =
                format!(r#"{{"ociVersion": "{v}", "linux": {{"resources": {{"pids": {pids}}}}}}}"#);
            let spec = parse(doc.as_bytes()).unwrap();
            let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
            r.pids().map(|p| p.limit())
        };
        assert_eq!(limit("1.3.0", r#"{"limit": 0}"#), Some(0));
        assert_eq!(
            limit("1.2.0", r#"{"limit": 0}"#),
            None,
            "0 meant no limit before 1.3"
        );
        assert_eq!(limit("1.3.0", "{}"), None, "no limit given: nothing to set");
        assert_eq!(limit("1.0.2-dev", r#"{"limit": -1}"#), Some(-1));
        assert_eq!(limit("1.1.0", r#"{"limit": 5}"#), Some(5));
    }

    #[test]
    fn an_array_is_not_an_object() {
        let err = parse(br#"{"ociVersion": "1.0.0", "hooks": [[], []]}"#).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("hooks: invalid type: an array"),
            "{err:#}"
        );
        let err = parse(
            br#"{"ociVersion": "1.0.0", "mounts": [{"destination": "/x", "type": "tmpfs"}, ["/y"]]}"#,
        )
        .unwrap_err();
        assert!(format!("{err:#}").starts_with("mounts[1]:"), "{err:#}");
    }

    #[test]
    fn unknown_properties_are_ignored() {
        parse(br#"{"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "future": {"x": 1}}"#)
            .unwrap();
    }
}
