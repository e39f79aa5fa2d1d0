//! `/dev`: the default devices every container gets, `linux.devices`, the standard symlinks, and the
//! placeholder that the terminal is later bound onto as `/dev/console`.
//!
//! Nodes are made with mknod inside the rootfs (through pathrs, never following the container's symlinks);
//! inside a user namespace mknod is not allowed, so the host's node is bind-mounted instead, as runc does.

use std::fs::Permissions;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};

use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    Char,
    Block,
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub typ: NodeType,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Device {
    fn char(path: &str, major: u32, minor: u32) -> Device {
        Device {
            path: path.into(),
            typ: NodeType::Char,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        }
    }

    fn rdev(&self) -> u64 {
        libc::makedev(self.major, self.minor)
    }
}

/// What the runtime-spec says every Linux container gets.
pub fn default_devices() -> Vec<Device> {
    vec![
        Device::char("/dev/null", 1, 3),
        Device::char("/dev/zero", 1, 5),
        Device::char("/dev/full", 1, 7),
        Device::char("/dev/random", 1, 8),
        Device::char("/dev/urandom", 1, 9),
        Device::char("/dev/tty", 5, 0),
    ]
}

/// Translate `linux.devices`.
pub fn from_spec(devices: &[LinuxDevice]) -> Result<Vec<Device>> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = format!("linux.devices[{i}]");
            let path = d.path();
            if !path.is_absolute() {
                bail!("{field}.path {}: must be absolute", path.display());
            }
            let typ = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => NodeType::Char,
                LinuxDeviceType::B => NodeType::Block,
                LinuxDeviceType::P => NodeType::Fifo,
                LinuxDeviceType::A => {
                    bail!("{field}.type: \"a\" is a cgroup rule, not a device node")
                }
            };
            if typ != NodeType::Fifo && (d.major() < 0 || d.minor() < 0) {
                bail!("{field}: major and minor numbers are required for a device node");
            }
            Ok(Device {
                path: path.clone(),
                typ,
                major: d.major().max(0) as u32,
                minor: d.minor().max(0) as u32,
                mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            })
        })
        .collect()
}

/// Create the default devices (replacing whatever the image holds at their paths), the configured ones,
/// the standard symlinks and, with a terminal, the `/dev/console` placeholder (returned: the terminal is
/// bound onto exactly this file later).
pub fn setup(
    root: &Root,
    configured: &[Device],
    bind_host_nodes: bool,
    with_console: bool,
) -> Result<Option<OwnedFd>> {
    root.mkdir_all("/dev", &Permissions::from_mode(0o755))
        .context("creating /dev in the rootfs")?;
    for dev in default_devices() {
        let configured_here = configured.iter().any(|d| d.path == dev.path);
        if !configured_here {
            create_node(root, &dev, bind_host_nodes, true)?;
        }
    }
    for dev in configured {
        create_node(root, dev, bind_host_nodes, false)?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        symlink(root, link, target)?;
    }
    if Path::new("/proc/kcore").exists() {
        symlink(root, "/dev/core", "/proc/kcore")?;
    }
    if !with_console {
        return Ok(None);
    }
    let _ = root.remove_file("/dev/console");
    let console = root
        .create_file(
            "/dev/console",
            OpenFlags::O_CREAT | OpenFlags::O_EXCL | OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
            &Permissions::from_mode(0o600),
        )
        .context("creating /dev/console in the rootfs")?;
    Ok(Some(OwnedFd::from(console)))
}

fn symlink(root: &Root, link: &str, target: &str) -> Result<()> {
    match root.create(link, &InodeType::Symlink(target.into())) {
        Ok(()) => Ok(()),
        Err(e) if is_exist(&e) => {
            // Keep what the image has if it already is this link; replace anything else.
            if root.readlink(link).ok().as_deref() == Some(Path::new(target)) {
                return Ok(());
            }
            remove_any(root, Path::new(link))?;
            root.create(link, &InodeType::Symlink(target.into()))
                .with_context(|| format!("creating the symlink {link} -> {target}"))
        }
        Err(e) => Err(e).with_context(|| format!("creating the symlink {link} -> {target}")),
    }
}

fn is_exist(e: &pathrs::error::Error) -> bool {
    e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::EEXIST))
}

fn remove_any(root: &Root, path: &Path) -> Result<()> {
    root.remove_file(path)
        .or_else(|_| root.remove_dir(path))
        .with_context(|| format!("removing {} to replace it", path.display()))
}

/// Make one device node. `replace`: a default device replaces whatever is at its path; a configured one
/// must either not exist yet or already be exactly the device asked for (the spec's rule).
fn create_node(root: &Root, dev: &Device, bind_host_nodes: bool, replace: bool) -> Result<()> {
    let path = dev.path.as_path();
    if let Some(parent) = path.parent() {
        root.mkdir_all(parent, &Permissions::from_mode(0o755))
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if let Ok(existing) = root.resolve_nofollow(path) {
        let st = nix::sys::stat::fstat(existing.as_fd().as_raw_fd())
            .with_context(|| format!("stat {}", path.display()))?;
        let fmt = st.st_mode & libc::S_IFMT;
        let same = match dev.typ {
            NodeType::Char => fmt == libc::S_IFCHR && st.st_rdev == dev.rdev(),
            NodeType::Block => fmt == libc::S_IFBLK && st.st_rdev == dev.rdev(),
            NodeType::Fifo => fmt == libc::S_IFIFO,
        };
        if same && !bind_host_nodes {
            return set_owner_and_mode(&existing, dev);
        }
        if !replace && !same {
            bail!(
                "linux.devices: {} already exists in the rootfs and is not the device asked for",
                path.display()
            );
        }
        drop(existing);
        remove_any(root, path)?;
    }
    if bind_host_nodes && dev.typ != NodeType::Fifo {
        return bind_host_node(root, dev);
    }
    let perm = Permissions::from_mode(dev.mode);
    let inode = match dev.typ {
        NodeType::Char => InodeType::CharacterDevice(perm, dev.rdev()),
        NodeType::Block => InodeType::BlockDevice(perm, dev.rdev()),
        NodeType::Fifo => InodeType::Fifo(perm),
    };
    root.create(path, &inode)
        .with_context(|| format!("mknod {} ({}:{})", path.display(), dev.major, dev.minor))?;
    let handle = root
        .resolve_nofollow(path)
        .with_context(|| format!("opening {}", path.display()))?;
    set_owner_and_mode(&handle, dev)
}

fn set_owner_and_mode(handle: &pathrs::Handle, dev: &Device) -> Result<()> {
    let path = dev.path.display();
    nix::unistd::fchownat(
        Some(handle.as_fd().as_raw_fd()),
        "",
        Some(dev.uid.into()),
        Some(dev.gid.into()),
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .with_context(|| format!("chown {path} to {}:{}", dev.uid, dev.gid))?;
    // chmod through the O_PATH handle's /proc/self/fd link (fchmod does not take O_PATH fds).
    let proc_path = format!("/proc/self/fd/{}", handle.as_fd().as_raw_fd());
    std::fs::set_permissions(&proc_path, Permissions::from_mode(dev.mode))
        .with_context(|| format!("chmod {path} to {:o}", dev.mode))
}

/// In a user namespace: bind the host's node onto an empty file (mknod would fail with EPERM).
fn bind_host_node(root: &Root, dev: &Device) -> Result<()> {
    let path = dev.path.as_path();
    let target = root
        .create_file(
            path,
            OpenFlags::O_CREAT | OpenFlags::O_EXCL | OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
            &Permissions::from_mode(0o600),
        )
        .with_context(|| format!("creating {} to bind the host's device on", path.display()))?;
    let host = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    let src = sys::open_tree(
        libc::AT_FDCWD,
        &host,
        sys::mount_api::OPEN_TREE_CLONE | sys::mount_api::OPEN_TREE_CLOEXEC,
    )
    .with_context(|| format!("open_tree of the host's {}", path.display()))?;
    sys::move_mount(src.as_fd(), target.as_fd())
        .with_context(|| format!("binding the host's {} into the container", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn configured_devices_are_checked() {
        let ok = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o620u32)
            .build()
            .unwrap();
        let d = from_spec(&[ok]).unwrap();
        assert_eq!(d[0].mode, 0o620);
        assert_eq!(d[0].typ, NodeType::Char);
        let rel = LinuxDeviceBuilder::default()
            .path("dev/x")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .build()
            .unwrap();
        assert!(from_spec(&[rel]).is_err());
    }
}
