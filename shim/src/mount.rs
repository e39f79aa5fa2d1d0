//! The container's root filesystem from CreateTask's mounts (an overlay of snapshots, or a bind), mounted
//! on BUNDLE/rootfs before the runtime runs and detached when the task is deleted.

use std::path::Path;

use anyhow::{Context, Result};
use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// mount(8) option words → flags; everything else is filesystem data.
fn parse_options(opts: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in opts {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            _ => {
                data.push(o.clone());
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data)
}

/// Mounts `mounts` on `target` in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            unmount_all(target);
            return Err(e).with_context(|| format!("rootfs mount {i} ({} {})", m.type_, m.source));
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let (flags, data) = parse_options(&m.options);
    let data = data.join(",");
    let fstype = if m.type_ == "bind" || m.type_ == "rbind" {
        None
    } else {
        Some(m.type_.as_str())
    };
    let extra = if m.type_ == "rbind" {
        MsFlags::MS_BIND | MsFlags::MS_REC
    } else if m.type_ == "bind" {
        MsFlags::MS_BIND
    } else {
        MsFlags::empty()
    };
    let flags = flags | extra;
    let first = if flags.contains(MsFlags::MS_BIND) {
        flags - MsFlags::MS_RDONLY
    } else {
        flags
    };
    mount(
        Some(m.source.as_str()),
        target,
        fstype,
        first,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .with_context(|| format!("mount {} on {}", m.source, target.display()))?;
    // A bind mount takes MS_RDONLY only on a remount.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .with_context(|| format!("remounting {} read-only", target.display()))?;
    }
    Ok(())
}

/// Detaches everything mounted on `target` (stacked mounts included).
pub fn unmount_all(target: &Path) {
    for _ in 0..16 {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o: Vec<String> = ["ro", "nosuid", "index=off", "lowerdir=/a", "rbind"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (f, d) = parse_options(&o);
        assert!(f.contains(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC
        ));
        assert_eq!(d, vec!["index=off", "lowerdir=/a"]);
        let (f, _) = parse_options(&["ro".to_string(), "rw".to_string()]);
        assert!(!f.contains(MsFlags::MS_RDONLY));
    }
}
