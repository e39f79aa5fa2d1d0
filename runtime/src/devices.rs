//! `/dev`: the default devices every container gets, `linux.devices`, the standard symlinks, and the
//! placeholder that the terminal is later bound onto as `/dev/console`.
//!
//! Nodes are made with mknod inside the rootfs (through pathrs, never following the container's symlinks);
//! inside a user namespace mknod is not allowed, so the host's node is bind-mounted instead, as runc does.

use std::fs::Permissions;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use pathrs::Root;

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
///
/// Each parent directory is resolved inside the rootfs once (pathrs); the nodes and links are then made
/// with *at() calls on that directory's fd, which never follow the final component.
pub fn setup(
    root: &Root,
    configured: &[Device],
    bind_host_nodes: bool,
    with_console: bool,
) -> Result<Option<OwnedFd>> {
    let mut dirs = Dirs {
        root,
        open: Vec::new(),
    };
    for dev in default_devices() {
        let configured_here = configured.iter().any(|d| d.path == dev.path);
        if !configured_here {
            create_node(&mut dirs, &dev, bind_host_nodes, true)?;
        }
    }
    for dev in configured {
        create_node(&mut dirs, dev, bind_host_nodes, false)?;
    }
    let dev = dirs.get(Path::new("/dev"))?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        symlink(dev, link, target)?;
    }
    if Path::new("/proc/kcore").exists() {
        symlink(dev, "core", "/proc/kcore")?;
    }
    if !with_console {
        return Ok(None);
    }
    let _ = remove_any(dev, "console");
    let console =
        create_empty_file(dev, "console").context("creating /dev/console in the rootfs")?;
    Ok(Some(console))
}

/// Directories of the rootfs resolved once, by path.
struct Dirs<'a> {
    root: &'a Root,
    open: Vec<(PathBuf, pathrs::Handle)>,
}

impl Dirs<'_> {
    fn get(&mut self, dir: &Path) -> Result<RawFd> {
        if let Some((_, h)) = self.open.iter().find(|(p, _)| p == dir) {
            return Ok(h.as_fd().as_raw_fd());
        }
        let h = self
            .root
            .mkdir_all(dir, &Permissions::from_mode(0o755))
            .with_context(|| format!("creating {} in the rootfs", dir.display()))?;
        let fd = h.as_fd().as_raw_fd();
        self.open.push((dir.to_path_buf(), h));
        Ok(fd)
    }
}

/// The directory and the final name of a device path.
fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => bail!("{}: not a file path", path.display()),
    }
}

fn symlink(dir: RawFd, link: &str, target: &str) -> Result<()> {
    match nix::unistd::symlinkat(target, Some(dir), link) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => {
            // Keep what the image has if it already is this link; replace anything else.
            if nix::fcntl::readlinkat(Some(dir), link).ok().as_deref()
                == Some(std::ffi::OsStr::new(target))
            {
                return Ok(());
            }
            remove_any(dir, link)?;
            nix::unistd::symlinkat(target, Some(dir), link)
                .with_context(|| format!("creating the symlink /dev/{link} -> {target}"))
        }
        Err(e) => Err(e).with_context(|| format!("creating the symlink /dev/{link} -> {target}")),
    }
}

fn remove_any<P: ?Sized + nix::NixPath + std::fmt::Debug>(dir: RawFd, name: &P) -> Result<()> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir)
        .or_else(|_| unlinkat(Some(dir), name, UnlinkatFlags::RemoveDir))
        .with_context(|| format!("removing {name:?} to replace it"))
}

/// An empty regular file, created (not followed) in `dir`: a mount point for a bind.
fn create_empty_file<P: ?Sized + nix::NixPath>(dir: RawFd, name: &P) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::openat(
        Some(dir),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )?;
    Ok(crate::rootfs::owned(fd))
}

/// Make one device node. `replace`: a default device replaces whatever is at its path; a configured one
/// must either not exist yet or already be exactly the device asked for (the spec's rule).
fn create_node(dirs: &mut Dirs, dev: &Device, bind_host_nodes: bool, replace: bool) -> Result<()> {
    use nix::sys::stat::{fstatat, mknodat, Mode, SFlag};
    let path = dev.path.as_path();
    let (parent, name) = split(path)?;
    let dir = dirs.get(parent)?;
    if let Ok(st) = fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        let fmt = st.st_mode & libc::S_IFMT;
        let same = match dev.typ {
            NodeType::Char => fmt == libc::S_IFCHR && st.st_rdev == dev.rdev(),
            NodeType::Block => fmt == libc::S_IFBLK && st.st_rdev == dev.rdev(),
            NodeType::Fifo => fmt == libc::S_IFIFO,
        };
        if !same && !replace {
            bail!(
                "linux.devices: {} already exists in the rootfs and is not the device asked for",
                path.display()
            );
        }
        if !same || bind_host_nodes {
            remove_any(dir, name)?;
        }
        if same && !bind_host_nodes {
            return set_owner_and_mode(dir, name, dev);
        }
    }
    if bind_host_nodes && dev.typ != NodeType::Fifo {
        return bind_host_node(dir, name, dev);
    }
    let kind = match dev.typ {
        NodeType::Char => SFlag::S_IFCHR,
        NodeType::Block => SFlag::S_IFBLK,
        NodeType::Fifo => SFlag::S_IFIFO,
    };
    mknodat(
        Some(dir),
        name,
        kind,
        Mode::from_bits_truncate(dev.mode),
        dev.rdev(),
    )
    .with_context(|| format!("mknod {} ({}:{})", path.display(), dev.major, dev.minor))?;
    // (set_owner_and_mode also makes the mode exact: mknod's passes through the umask.)
    set_owner_and_mode(dir, name, dev)
}

fn set_owner_and_mode(dir: RawFd, name: &std::ffi::OsStr, dev: &Device) -> Result<()> {
    let path = dev.path.display();
    nix::unistd::fchownat(
        Some(dir),
        name,
        Some(dev.uid.into()),
        Some(dev.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("chown {path} to {}:{}", dev.uid, dev.gid))?;
    nix::sys::stat::fchmodat(
        Some(dir),
        name,
        nix::sys::stat::Mode::from_bits_truncate(dev.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .with_context(|| format!("chmod {path} to {:o}", dev.mode))
}

/// In a user namespace: bind the host's node onto an empty file (mknod would fail with EPERM).
fn bind_host_node(dir: RawFd, name: &std::ffi::OsStr, dev: &Device) -> Result<()> {
    let path = dev.path.as_path();
    let target = create_empty_file(dir, name)
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
