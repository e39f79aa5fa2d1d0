//! Parse: read a bundle's config.json into oci-spec's types.
//!
//! Only syntax and the spec version are checked here; `validate` turns the result into a `Plan`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

/// The runtime-spec version berth implements (reported by `state` and written by `spec`).
pub const OCI_VERSION: &str = "1.2.1";

/// Read `<bundle>/config.json`. The bundle path is made absolute, as the state records it.
pub fn load(bundle: &Path) -> Result<(PathBuf, Spec)> {
    let bundle = std::path::absolute(bundle)
        .with_context(|| format!("bundle {}: cannot make the path absolute", bundle.display()))?;
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec = parse(&data).with_context(|| format!("parsing {}", path.display()))?;
    Ok((bundle, spec))
}

/// Parse a config.json's bytes, and check that its `ociVersion` is one berth implements.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let spec: Spec = serde_json::from_slice(data)?;
    check_version(spec.version())?;
    Ok(spec)
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
        let err = parse(br#"{"ociVersion": "1.0.0", "root": {"path": 3}}"#).unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
    }

    #[test]
    fn unknown_properties_are_ignored() {
        parse(br#"{"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "future": {"x": 1}}"#)
            .unwrap();
    }
}
