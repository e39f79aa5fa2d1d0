//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`
//! (and `exec --apparmor` / `--process-label`).
//!
//! As runc: the exec attribute is written just before execve (before the seccomp filter), so the
//! profile or label applies from the program's first instruction, and never to berth's own code;
//! the mount label becomes the `context=` option of the container's filesystems. Where the host has
//! no such LSM a config that asks for confinement is refused, as runc refuses it (its write of the
//! attribute fails): a process that asked to be confined must not run unconfined.
//!
//! Every write goes through the verified procfs handle (`crate::procfs`): a container's mount over
//! /proc/self/attr cannot take the label.

use anyhow::{bail, Context, Result};

use crate::process::ProcessPlan;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuse what this host cannot apply (checked before anything exists).
pub fn check(p: &ProcessPlan, mount_label: Option<&str>) -> Result<()> {
    if let Some(profile) = &p.apparmor_profile {
        if !apparmor_enabled() {
            bail!("process.apparmorProfile {profile:?}: AppArmor is not enabled on this host, so the profile cannot be applied");
        }
    }
    if let Some(label) = &p.selinux_label {
        if !selinux_enabled() {
            bail!("process.selinuxLabel {label:?}: SELinux is not enabled on this host, so the label cannot be applied");
        }
    }
    if let Some(label) = mount_label {
        if !selinux_enabled() {
            bail!("linux.mountLabel {label:?}: SELinux is not enabled on this host, so mounts cannot be labelled");
        }
    }
    Ok(())
}

/// The AppArmor exec attribute's file (the LSM-specific one of Linux 5.1+, else the shared one) and
/// what is written to it.
fn apparmor_exec(profile: &str) -> (&'static str, String) {
    let file = if crate::procfs::read_self("attr/apparmor/exec")
        .ok()
        .flatten()
        .is_some()
    {
        "attr/apparmor/exec"
    } else {
        "attr/exec"
    };
    (file, format!("exec {profile}"))
}

/// Set the process's exec attributes: they take effect at its next execve.
pub fn set_exec_attributes(p: &ProcessPlan) -> Result<()> {
    if let Some(profile) = &p.apparmor_profile {
        let (file, text) = apparmor_exec(profile);
        crate::procfs::write_self(file, text.as_bytes())
            .with_context(|| format!("process.apparmorProfile {profile:?}"))?;
    }
    if let Some(label) = &p.selinux_label {
        crate::procfs::write_self("attr/exec", label.as_bytes())
            .with_context(|| format!("process.selinuxLabel {label:?}"))?;
    }
    Ok(())
}

/// The `context=` option for a new filesystem mount of the container, when it has a mount label.
/// proc, sysfs and cgroup filesystems take no label (runc skips them too).
pub fn mount_context(mount_label: Option<&str>, fstype: &str) -> Option<String> {
    let label = mount_label.filter(|l| !l.is_empty())?;
    if matches!(fstype, "proc" | "sysfs" | "cgroup" | "cgroup2") {
        return None;
    }
    Some(format!("\"{label}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_context_skips_proc_and_sysfs() {
        assert_eq!(
            mount_context(Some("system_u:object_r:container_file_t:s0"), "tmpfs").as_deref(),
            Some("\"system_u:object_r:container_file_t:s0\"")
        );
        assert_eq!(mount_context(Some("x"), "proc"), None);
        assert_eq!(mount_context(None, "tmpfs"), None);
    }

    /// The write path on a host without the LSM: the attribute file is reached through the
    /// procfs handle and the kernel refuses the value (so the error names it).
    #[test]
    fn attribute_write_reaches_the_kernel() {
        // No LSM: EINVAL; AppArmor: no such profile. Either way the kernel answered the write.
        let (file, text) = apparmor_exec("berth-test-profile");
        let err = crate::procfs::write_self(file, text.as_bytes()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/proc/thread-self/attr"), "{msg}");
    }
}
