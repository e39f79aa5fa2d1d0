//! `process.capabilities`: the five sets, applied with the `caps` crate.
//!
//! Order (as runc): drop the bounding set while still privileged, keep the permitted set across the uid
//! change (PR_SET_KEEPCAPS), then set effective/permitted/inheritable, then raise the ambient set.

use std::str::FromStr;

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities as SpecCaps, LinuxCapabilities};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub permitted: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// One capability name ("CAP_SYS_ADMIN") as the caps crate knows it.
pub fn parse(name: &str) -> Result<Capability> {
    let name = name.to_ascii_uppercase();
    let full = if name.starts_with("CAP_") {
        name
    } else {
        format!("CAP_{name}")
    };
    Capability::from_str(&full).map_err(|_| anyhow::anyhow!("unknown capability {full:?}"))
}

fn convert(set: &Option<SpecCaps>) -> Result<CapsHashSet> {
    set.iter()
        .flatten()
        .map(|c| parse(&c.to_string()))
        .collect()
}

impl CapSets {
    pub fn from_spec(c: &LinuxCapabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: convert(c.bounding()).context("process.capabilities.bounding")?,
            effective: convert(c.effective()).context("process.capabilities.effective")?,
            inheritable: convert(c.inheritable()).context("process.capabilities.inheritable")?,
            permitted: convert(c.permitted()).context("process.capabilities.permitted")?,
            ambient: convert(c.ambient()).context("process.capabilities.ambient")?,
        })
    }

    /// Drop from the bounding set every capability not asked for (needs CAP_SETPCAP: do it first).
    pub fn apply_bounding(&self) -> Result<()> {
        let supported = caps::runtime::thread_all_supported();
        for cap in supported.difference(&self.bounding) {
            caps::drop(None, CapSet::Bounding, *cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
        Ok(())
    }

    /// Set the other four sets (after the uid change). Capabilities this kernel does not know are skipped.
    /// `keep`: one more capability left effective and permitted, for a last privileged step before
    /// execve (which computes the program's sets afresh, without it; see `process::exec`).
    pub fn apply(&self, keep: Option<Capability>) -> Result<()> {
        let supported = caps::runtime::thread_all_supported();
        let known =
            |s: &CapsHashSet| -> CapsHashSet { s.intersection(&supported).copied().collect() };
        let with_keep = |mut s: CapsHashSet| {
            s.extend(keep);
            s
        };
        // A set can only shrink: name what was asked for that berth itself does not hold.
        let held =
            caps::read(None, CapSet::Permitted).context("reading the permitted capabilities")?;
        for (field, set) in [
            ("effective", &self.effective),
            ("permitted", &self.permitted),
        ] {
            let mut missing: Vec<String> = known(set)
                .difference(&held)
                .map(|c| c.to_string())
                .collect();
            if !missing.is_empty() {
                missing.sort();
                anyhow::bail!(
                    "process.capabilities.{field}: {} not in the runtime's own permitted set, so the container cannot have {}",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                );
            }
        }
        // After every capset the effective set must stay within the permitted one: shrink effective first,
        // then inheritable (bounded by the old permitted set), then permitted.
        caps::set(None, CapSet::Effective, &with_keep(known(&self.effective)))
            .context("setting the effective capabilities")?;
        caps::set(None, CapSet::Inheritable, &known(&self.inheritable))
            .context("setting the inheritable capabilities")?;
        caps::set(None, CapSet::Permitted, &with_keep(known(&self.permitted)))
            .context("setting the permitted capabilities (they must include the effective ones)")?;
        caps::clear(None, CapSet::Ambient).ok();
        // As runc: an ambient capability the kernel refuses (it must be permitted and inheritable) is
        // skipped, not fatal — runc's own default spec asks for ambient capabilities without inheritable ones.
        for cap in known(&self.ambient) {
            if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
                crate::debug!("process.capabilities.ambient: not raising {cap} ({e}): it must also be permitted and inheritable");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_or_without_prefix() {
        assert_eq!(parse("CAP_KILL").unwrap(), Capability::CAP_KILL);
        assert_eq!(parse("net_raw").unwrap(), Capability::CAP_NET_RAW);
        assert!(parse("CAP_NOPE").is_err());
    }
}
