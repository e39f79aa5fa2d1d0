//! `berth features`: the runtime-spec features document (features.md) of what berth really
//! supports, derived from the code's own tables: hook phases (validate), mount options (mounts),
//! namespaces (namespaces, those this kernel has), capabilities (the caps crate), seccomp actions,
//! operators, architectures and flags (seccomp; supported flags probed in the kernel), memory
//! policies (validate).
//!
//! Reported as not supported: AppArmor and SELinux (berth ignores the labels) and Intel RDT.
//! Network devices (`netdev`) and idmapped mounts (`rootfs`, built by the parent) are.

use anyhow::Result;
use oci_spec::runtime::{
    Apparmor, Cgroup, Features, IDMap, IntelRdt, LinuxFeature, LinuxNamespaceType, MemoryPolicy,
    MountExtensions, NetDevices, Seccomp, Selinux,
};
use serde::Serialize;
use serde_json::Value;

use crate::config::OCI_VERSION;
use crate::namespaces::Kind;
use crate::{mounts, seccomp, validate};

pub fn run() -> Result<()> {
    println!("{}", to_json_indented(&features())?);
    Ok(())
}

fn names<T: Serialize>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items
        .into_iter()
        .filter_map(|i| match serde_json::to_value(i) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        })
        .collect()
}

pub fn features() -> Features {
    let mut namespaces: Vec<(String, LinuxNamespaceType)> = Kind::ALL
        .iter()
        .filter(|k| {
            std::path::Path::new("/proc/self/ns")
                .join(k.proc_name())
                .exists()
        })
        .filter_map(|k| {
            let t = serde_json::from_value(Value::String(k.spec_name().into())).ok()?;
            Some((k.spec_name().to_string(), t))
        })
        .collect();
    namespaces.sort_by(|a, b| a.0.cmp(&b.0));

    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    caps.sort_by_key(|c| c.index());

    let mut mount_options: Vec<String> = mounts::OPTIONS.iter().map(|o| o.to_string()).collect();
    mount_options.sort();

    let mut sec = Seccomp::default();
    sec.set_enabled(Some(seccomp::supported()));
    if seccomp::supported() {
        sec.set_actions(Some(seccomp::ACTIONS.to_vec()));
        sec.set_operators(Some(names(seccomp::OPERATORS)));
        sec.set_archs(Some(seccomp::host_archs()));
        sec.set_known_flags(Some(names(seccomp::known_flags())));
        sec.set_supported_flags(Some(names(seccomp::supported_flags())));
    }

    let mut cgroup = Cgroup::default();
    cgroup.set_v1(Some(true));
    cgroup.set_v2(Some(true));
    // the systemd driver (through libcgroups) on cgroup v2 hosts, as root
    cgroup.set_systemd(Some(true));
    cgroup.set_systemd_user(Some(false));
    cgroup.set_rdma(Some(true));

    let mut mempol = MemoryPolicy::default();
    mempol.set_modes(Some(names(validate::MEMORY_POLICY_MODES)));
    mempol.set_flags(Some(names(validate::MEMORY_POLICY_FLAGS)));

    let mut idmap = IDMap::default();
    idmap.set_enabled(Some(true));
    let mut mount_ext = MountExtensions::default();
    mount_ext.set_idmap(Some(idmap));

    let mut linux = LinuxFeature::default();
    linux.set_namespaces(Some(namespaces.into_iter().map(|(_, t)| t).collect()));
    linux.set_capabilities(Some(caps.iter().map(|c| c.to_string()).collect()));
    linux.set_cgroup(Some(cgroup));
    linux.set_seccomp(Some(sec));
    linux.set_apparmor(Some(
        Apparmor::default()
            .set_enabled(Some(crate::lsm::apparmor_enabled()))
            .clone(),
    ));
    linux.set_selinux(Some(
        Selinux::default()
            .set_enabled(Some(crate::lsm::selinux_enabled()))
            .clone(),
    ));
    linux.set_intel_rdt(Some(IntelRdt::default().set_enabled(Some(false)).clone()));
    linux.set_memory_policy(Some(mempol));
    linux.set_mount_extensions(Some(mount_ext));
    linux.set_net_devices(Some(NetDevices::default().set_enabled(Some(true)).clone()));

    let mut f = Features::default();
    f.set_oci_version_min("1.0.0".to_string());
    f.set_oci_version_max(OCI_VERSION.to_string());
    f.set_hooks(Some(
        validate::HOOK_PHASES
            .iter()
            .map(|h| h.to_string())
            .collect(),
    ));
    f.set_mount_options(Some(mount_options));
    f.set_linux(Some(linux));
    f
}

/// JSON with 4-space indentation like runc's, absent (null) fields left out.
fn to_json_indented(f: &Features) -> Result<String> {
    fn strip_nulls(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip_nulls);
            }
            Value::Array(a) => a.iter_mut().for_each(strip_nulls),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(f)?;
    strip_nulls(&mut v);
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_what_config_accepts() {
        let f = features();
        crate::config::check_version(f.oci_version_min()).unwrap();
        crate::config::check_version(f.oci_version_max()).unwrap();
    }

    #[test]
    fn no_nulls_and_four_space_indent() {
        let s = to_json_indented(&features()).unwrap();
        assert!(!s.contains("null"), "{s}");
        assert!(s.contains("\n    \"ociVersionMin\": \"1.0.0\""), "{s}");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        assert_eq!(v["linux"]["netDevices"]["enabled"], true);
        assert!(v["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&Value::String("idmap".into())));
    }
}
