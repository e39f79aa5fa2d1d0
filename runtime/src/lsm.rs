//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`
//! (and `exec --apparmor` / `--process-label`).
//!
//! As runc: the exec attribute is written just before execve (before the seccomp filter), so the
//! profile or label applies from the program's first instruction, and never to berth's own code;
//! the mount label becomes the `context=` option of the container's filesystems.
//!
//! Where the host has no such LSM there is nothing to confine with: the field is not applied and
//! berth says so with a warning on stderr (as youki does, and as the OCI validation suite expects).
//! This differs from runc 1.1.5 on purpose: runc fails the container with the kernel's EINVAL
//! from writing the attribute (`apparmor failed to apply profile: ... invalid argument`), which
//! the spec does not ask for. Where the LSM is enabled, a profile or label that cannot be applied
//! fails the container: it never runs unconfined.
//!
//! Every write goes through the verified procfs handle (`crate::procfs`): a container's mount over
//! /proc/self/attr cannot take the label.

use anyhow::{Context, Result};

use crate::process::ProcessPlan;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// What this host can apply of the process's labels: the fields of an LSM the host lacks are cleared,
/// each with a warning naming it. Returns the mount label to apply (None without SELinux).
pub fn applicable(p: &mut ProcessPlan, mount_label: Option<&str>) -> Option<String> {
    if let Some(profile) = &p.apparmor_profile {
        if !apparmor_enabled() {
            crate::warn!("process.apparmorProfile {profile:?} is not applied: AppArmor is not enabled on this host");
            p.apparmor_profile = None;
        }
    }
    let selinux = selinux_enabled();
    if let Some(label) = &p.selinux_label {
        if !selinux {
            crate::warn!("process.selinuxLabel {label:?} is not applied: SELinux is not enabled on this host");
            p.selinux_label = None;
        }
    }
    match mount_label {
        Some(label) if !selinux => {
            crate::warn!(
                "linux.mountLabel {label:?} is not applied: SELinux is not enabled on this host"
            );
            None
        }
        other => other.map(str::to_owned),
    }
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
