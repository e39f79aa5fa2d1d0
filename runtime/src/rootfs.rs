//! The container's filesystem, in the order the child builds it:
//! 0. (in the parent, before the clone) `IdmappedTrees::prepare`: the idmapped bind mounts, as detached
//!    trees the init inherits;
//! 1. `prepare`: make `/` a slave (or `rootfsPropagation`), bind the rootfs onto itself, attach every
//!    `mounts` entry (targets resolved inside the rootfs by pathrs), create `/dev`'s nodes and links;
//! 2. (the createContainer hooks run)
//! 3. `pivot`: pivot_root into it (or MS_MOVE + chroot with `--no-pivot`) and drop the host's tree;
//! 4. `finalize`: `readonlyPaths`, `maskedPaths`, `root.readonly`, `rootfsPropagation`.

use std::ffi::CString;
use std::fs::Permissions;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use pathrs::flags::OpenFlags;
use pathrs::Root;

use crate::devices;
use crate::mounts::{Mount, Source};
use crate::sys::{self, mount_api::*, MountAttr};

/// Everything `prepare` needs from the plan.
pub struct RootfsPlan<'a> {
    pub rootfs: &'a Path,
    /// The container has a mount namespace of its own. Without one the mounts are made in the
    /// runtime's (inherited) namespace: `/`'s propagation is left alone and the rootfs is not bound
    /// onto itself (the init chroots into it).
    pub mount_namespace: bool,
    pub mounts: &'a [Mount],
    /// `linux.rootfsPropagation` as mount(2) flags (0 = runc's default, rslave).
    pub propagation: u64,
    pub devices: &'a [devices::Device],
    /// In a new user namespace: bind host device nodes instead of mknod.
    pub in_user_namespace: bool,
    /// Create `/dev/console` for a terminal.
    pub console: bool,
    /// The container has a cgroup namespace of its own (new or joined): cgroup mounts show its root.
    pub cgroup_namespace: bool,
    /// The idmapped bind mounts, made by the runtime before the init was cloned.
    pub idmapped: &'a IdmappedTrees,
}

/// What `prepare` leaves for the later steps.
pub struct Prepared {
    /// The `/dev/console` placeholder, when there is a terminal.
    pub console: Option<OwnedFd>,
    /// The container's root: the top of the rootfs bound onto itself (or the rootfs directory
    /// without a mount namespace of its own), for pivot_root / chroot.
    pub root: OwnedFd,
}

/// The init starts in the rootfs (the runtime clones it from there, see `launch`), so that nothing
/// here resolves the rootfs's path: a mapped root in a user namespace may not be allowed to search
/// the directories above it (a bundle under a 0700 directory of the host's root).
pub fn prepare(plan: &RootfsPlan) -> Result<Prepared> {
    let open_cwd = || -> Result<OwnedFd> {
        let fd = nix::fcntl::open(
            ".",
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("opening the rootfs (the init's working directory)")?;
        Ok(owned(fd))
    };
    let mut here = open_cwd()?;
    if crate::procfs::fd_path(here.as_raw_fd())? != plan.rootfs {
        // Joining a mount namespace (setns) moved the init to that namespace's `/`: there the
        // rootfs is found by its path, in the joined namespace.
        nix::unistd::chdir(plan.rootfs)
            .with_context(|| format!("chdir into the rootfs {}", plan.rootfs.display()))?;
        here = open_cwd()?;
    }
    if plan.mount_namespace {
        let root_flags = if plan.propagation != 0 {
            plan.propagation
        } else {
            libc::MS_SLAVE | libc::MS_REC
        };
        mount::<str, str, str, str>(None, "/", None, MsFlags::from_bits_retain(root_flags), None)
            .context("setting the propagation of / in the container's mount namespace")?;
        make_parent_mount_private(plan.rootfs)?;
        let bind = || -> Result<OwnedFd> {
            let tree = sys::open_tree(
                here.as_raw_fd(),
                c"",
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH,
            )
            .context("open_tree")?;
            sys::move_mount(tree.as_fd(), here.as_fd()).context("move_mount")?;
            Ok(tree)
        };
        here = bind()
            .with_context(|| format!("binding the rootfs {} onto itself", plan.rootfs.display()))?;
    }
    let root = Rootfs {
        root: Root::from_fd(here.try_clone().context("duplicating the rootfs's fd")?),
        path: plan.rootfs,
    };

    for (i, m) in plan.mounts.iter().enumerate() {
        attach(&root, m, plan.cgroup_namespace, plan.idmapped.get(i)).with_context(|| {
            format!(
                "mounts[{i}]: mounting {} on {}",
                describe(&m.source),
                m.destination.display()
            )
        })?;
    }
    // The image's /dev is used as it is when a mount put the host's /dev (or another) there.
    let dev_bound = plan
        .mounts
        .iter()
        .any(|m| m.is_bind() && m.destination == Path::new("/dev"));
    let console = if dev_bound {
        None
    } else {
        devices::setup(&root, plan.devices, plan.in_user_namespace, plan.console)?
    };
    Ok(Prepared {
        console,
        root: here,
    })
}

/// The rootfs being built: its root for resolving paths inside it, and its path in the init's
/// mount namespace (what /proc/self/fd links of fds below it start with).
struct Rootfs<'a> {
    root: Root,
    path: &'a Path,
}

impl std::ops::Deref for Rootfs<'_> {
    type Target = Root;

    fn deref(&self) -> &Root {
        &self.root
    }
}

fn describe(s: &Source) -> String {
    match s {
        Source::Bind { path, .. } => path.display().to_string(),
        Source::Fs { fstype, source } => format!("{source} ({fstype})"),
        Source::Cgroup => "cgroup".into(),
    }
}

/// pivot_root needs the rootfs's parent mount not to be shared, and binding the rootfs needs it not to
/// be unbindable (`rootfsPropagation: unbindable` just made `/` so): make it private in both cases.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 7 {
            continue;
        }
        let mount_point = PathBuf::from(unescape_octal(fields[4]));
        if !rootfs.starts_with(&mount_point) {
            continue;
        }
        let shared = fields[6..]
            .iter()
            .take_while(|f| **f != "-")
            .any(|f| f.starts_with("shared:") || *f == "unbindable");
        if best
            .as_ref()
            .is_none_or(|(p, _)| mount_point.as_os_str().len() >= p.as_os_str().len())
        {
            best = Some((mount_point, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount::<str, Path, str, str>(None, &mp, None, MsFlags::MS_PRIVATE, None).with_context(
            || {
                format!(
                    "making {} private for binding the rootfs and pivot_root",
                    mp.display()
                )
            },
        )?;
    }
    Ok(())
}

/// mountinfo escapes space, tab, newline and backslash as \NNN.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{} contains a NUL byte", p.display()))
}

/// Attach one mount at its destination inside `root`. `premade`: the mount's idmapped tree, with its
/// attributes already set (see `IdmappedTrees`).
fn attach(
    root: &Rootfs,
    m: &Mount,
    cgroup_namespace: bool,
    premade: Option<&OwnedFd>,
) -> Result<()> {
    match &m.source {
        Source::Bind { .. } if premade.is_some() => {
            let tree = premade.expect("checked");
            let st =
                nix::sys::stat::fstat(tree.as_raw_fd()).context("fstat of the idmapped tree")?;
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            let target = target(root, m, !is_dir)?;
            sys::move_mount(tree.as_fd(), target.as_fd()).context("move_mount")?;
        }
        Source::Bind { path, recursive } => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("bind source {}", path.display()))?;
            let tree = open_bind_tree(path, *recursive)?;
            set_attrs(&tree, m)?;
            let target = target(root, m, !meta.is_dir())?;
            sys::move_mount(tree.as_fd(), target.as_fd()).context("move_mount")?;
        }
        Source::Fs { fstype, source } => {
            if let Err(e) = mount_fs(root, m, fstype, source) {
                // sysfs belongs to a network namespace: from a user namespace that does not own it (the
                // container joined a host-owned netns), the kernel refuses it, and runc binds the host's.
                let eperm = e
                    .root_cause()
                    .downcast_ref::<std::io::Error>()
                    .and_then(|e| e.raw_os_error())
                    == Some(libc::EPERM);
                if fstype != "sysfs" || !eperm {
                    return Err(e);
                }
                crate::debug!(
                    "sysfs cannot be mounted here ({e:#}): binding the host's /sys instead"
                );
                let bind = Mount {
                    source: Source::Bind {
                        path: "/sys".into(),
                        recursive: true,
                    },
                    data: Vec::new(),
                    sb_flags: Vec::new(),
                    ..m.clone()
                };
                return attach(root, &bind, cgroup_namespace, None);
            }
        }
        Source::Cgroup => mount_cgroups(root, m, cgroup_namespace)?,
    }
    set_propagation(root, m)
}

/// A detached copy of `path` (and of the mounts under it for `rbind`).
fn open_bind_tree(path: &Path, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    sys::open_tree(libc::AT_FDCWD, &cstr(path)?, flags)
        .with_context(|| format!("open_tree({})", path.display()))
}

/// The idmapped bind mounts of a container (`idmap`/`ridmap`, `uidMappings`/`gidMappings`), keyed by
/// their index in `mounts`: detached trees with their idmapping and attributes set, made by the runtime
/// in its own namespaces before the init is cloned (the init inherits the fds and only attaches them).
///
/// Why not in the init: mount_setattr(MOUNT_ATTR_IDMAP) needs CAP_SYS_ADMIN over the user namespace that
/// owns the source's superblock (the host's, for a host directory), and the mapping's user namespace has
/// to be a child of the runtime's so that `hostID`s are the runtime's ids. An init inside the container's
/// own user namespace (created by clone3, unshared or joined on the staged path) has neither; the runtime
/// has both in every case, so one way serves all of them.
///
/// The mapping is the kernel's: a file owned by `containerID + n` on the source filesystem shows as
/// `hostID + n` through the mount (ids outside the mappings show as the overflow id, 65534).
#[derive(Default)]
pub struct IdmappedTrees {
    trees: Vec<(usize, OwnedFd)>,
}

impl IdmappedTrees {
    /// Make every idmapped bind mount of `mounts`. Errors name the mount (`mounts[i]`). Must run while
    /// the runtime is single-threaded (it clones a helper process per mount).
    pub fn prepare(mounts: &[Mount]) -> Result<IdmappedTrees> {
        let mut trees = Vec::new();
        for (i, m) in mounts.iter().enumerate() {
            let (Some(idmap), Source::Bind { path, recursive }) = (&m.idmap, &m.source) else {
                continue;
            };
            let tree = idmapped_tree(m, idmap, path, *recursive).with_context(|| {
                format!(
                    "mounts[{i}]: idmapped bind mount of {} on {}",
                    path.display(),
                    m.destination.display()
                )
            })?;
            trees.push((i, tree));
        }
        Ok(IdmappedTrees { trees })
    }

    pub fn get(&self, index: usize) -> Option<&OwnedFd> {
        self.trees.iter().find(|(i, _)| *i == index).map(|(_, t)| t)
    }
}

fn idmapped_tree(
    m: &Mount,
    idmap: &crate::mounts::IdMap,
    path: &Path,
    recursive: bool,
) -> Result<OwnedFd> {
    let userns = mapping_user_namespace(idmap)?;
    let tree = open_bind_tree(path, recursive)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..Default::default()
    };
    let mut flags = AT_EMPTY_PATH;
    if idmap.recursive {
        flags |= AT_RECURSIVE;
    }
    sys::mount_setattr(tree.as_raw_fd(), c"", flags, &attr).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) => format!(
                " (the filesystem of {} does not support idmapped mounts{})",
                path.display(),
                if idmap.recursive {
                    ", or one of the mounts under it does not"
                } else {
                    ""
                }
            ),
            Some(libc::EPERM) => " (not permitted over this filesystem)".to_owned(),
            _ => String::new(),
        };
        anyhow::anyhow!(
            "mount_setattr(MOUNT_ATTR_IDMAP{}): {e}{hint}",
            if idmap.recursive { ", recursive" } else { "" }
        )
    })?;
    set_attrs(&tree, m)?;
    Ok(tree)
}

/// A user namespace holding `idmap`'s mappings, child of the runtime's.
fn mapping_user_namespace(idmap: &crate::mounts::IdMap) -> Result<OwnedFd> {
    let holder = sys::UsernsHolder::spawn()
        .context("cloning a helper process into a new user namespace for the mapping")?;
    for (name, file, maps) in [
        ("uidMappings", "uid_map", &idmap.uid_mappings),
        ("gidMappings", "gid_map", &idmap.gid_mappings),
    ] {
        let text = crate::namespaces::id_map_text(maps);
        crate::procfs::write_pid(holder.pid, file, text.as_bytes()).with_context(|| {
            format!(
                "{name}: the kernel refused the mapping ({})",
                text.trim().replace('\n', "; ")
            )
        })?;
    }
    let ns = std::fs::File::open(format!("/proc/{}/ns/user", holder.pid))
        .context("opening the mapping's user namespace")?;
    Ok(OwnedFd::from(ns))
}

fn mount_fs(root: &Rootfs, m: &Mount, fstype: &str, source: &str) -> Result<()> {
    let fs = sys::fsopen(&CString::new(fstype)?).with_context(|| format!("fsopen({fstype})"))?;
    sys::fsconfig_set(fs.as_fd(), c"source", Some(&CString::new(source)?))
        .with_context(|| format!("fsconfig source={source}"))?;
    for (key, value) in &m.data {
        let k = CString::new(key.as_str())?;
        let v = value.as_deref().map(CString::new).transpose()?;
        sys::fsconfig_set(fs.as_fd(), &k, v.as_deref()).with_context(|| match value {
            Some(v) => format!("option {key}={v}"),
            None => format!("option {key}"),
        })?;
    }
    for flag in &m.sb_flags {
        match sys::fsconfig_set(fs.as_fd(), &CString::new(*flag)?, None) {
            Ok(()) => {}
            // mount(2) (runc) takes these as superblock flags that any filesystem accepts; with
            // fsconfig they are parameters only some filesystems know (tmpfs has neither), and
            // where unknown the flag had no effect: skip them there.
            Err(e)
                if matches!(*flag, "silent" | "iversion")
                    && e.raw_os_error() == Some(libc::EINVAL) =>
            {
                crate::debug!("{fstype} does not take the {flag} option: ignored");
            }
            Err(e) => return Err(e).with_context(|| format!("option {flag}")),
        }
    }
    let attrs = m.attr.attr_set & !(MOUNT_ATTR_IDMAP);
    let mnt =
        sys::fsmount(fs.as_fd(), attrs).with_context(|| format!("creating the {fstype} mount"))?;
    if m.recursive_attr != MountAttr::default() {
        setattr(&mnt, &m.recursive_attr, true)?;
    }
    if fstype == "proc" || fstype == "sysfs" {
        ordinary_directory(root, m, fstype)?;
    }
    let target = target(root, m, false)?;
    if m.tmpcopyup {
        copy_up(&target, &mnt).context("tmpcopyup")?;
    }
    sys::move_mount(mnt.as_fd(), target.as_fd()).context("move_mount")?;
    Ok(())
}

/// The mount's propagation options, on the mount now at its destination.
fn set_propagation(root: &Root, m: &Mount) -> Result<()> {
    if !m.propagation.is_empty() {
        let top = root
            .resolve(&m.destination)
            .context("reopening the new mount to set its propagation")?;
        for (flag, recursive) in &m.propagation {
            let attr = MountAttr {
                propagation: *flag,
                ..Default::default()
            };
            setattr(&top, &attr, *recursive).context("setting the propagation")?;
        }
    }
    Ok(())
}

/// Per-mount attributes on the top of a detached tree, recursive ones on all of it.
fn set_attrs(tree: &OwnedFd, m: &Mount) -> Result<()> {
    if m.attr != MountAttr::default() {
        setattr(tree, &m.attr, false)?;
    }
    if m.recursive_attr != MountAttr::default() {
        setattr(tree, &m.recursive_attr, true)?;
    }
    Ok(())
}

fn setattr(fd: &impl AsFd, attr: &MountAttr, recursive: bool) -> Result<()> {
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    sys::mount_setattr(fd.as_fd().as_raw_fd(), c"", flags, attr).with_context(|| {
        format!(
            "mount_setattr(set {:#x}, clear {:#x}, propagation {:#x}{})",
            attr.attr_set,
            attr.attr_clr,
            attr.propagation,
            if recursive { ", recursive" } else { "" }
        )
    })
}

/// The mount point of `m` inside the rootfs, created if missing (a directory, or an empty file for a
/// file mount), and checked for what it resolved to: see [`check_not_in_proc`].
fn target(root: &Rootfs, m: &Mount, file: bool) -> Result<pathrs::Handle> {
    let handle = mount_point(root, &m.destination, file)?;
    check_not_in_proc(root, m, &handle)?;
    Ok(handle)
}

/// Files under /proc that may be mounted over (what lxcfs provides, and CRIU's ns_last_pid), as runc
/// 1.3.1 allows them (it took /proc/net/dev off the list).
pub const PROC_FILES_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
];

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Nothing but a procfs may go on /proc, and inside /proc nothing but the files above (a mount over
/// /proc/sys or /proc/self/attr defeats the container's protections, CVE-2019-19921). Checked on what
/// the destination resolved to — the directory the mount will land on, through the image's symlinks —
/// both by its path and by its filesystem: `/evil -> /proc/sys` is refused like `/proc/sys`.
fn check_not_in_proc(root: &Rootfs, m: &Mount, target: &pathrs::Handle) -> Result<()> {
    let on_procfs = nix::sys::statfs::fstatfs(target.as_fd())
        .context("fstatfs of the mount point")?
        .filesystem_type()
        .0 as i64
        == PROC_SUPER_MAGIC;
    let at = crate::procfs::fd_path(target.as_fd().as_raw_fd())?;
    let inside = Path::new("/").join(at.strip_prefix(root.path).unwrap_or(&at));
    let resolved = if inside == m.destination {
        String::new()
    } else {
        format!(" (it resolves to {})", inside.display())
    };
    if inside == Path::new("/proc") {
        if !matches!(&m.source, Source::Fs { fstype, .. } if fstype == "proc") {
            bail!(
                "the destination {}{resolved} is /proc: only a proc filesystem may be mounted there",
                m.destination.display()
            );
        }
        return Ok(());
    }
    if (on_procfs || inside.starts_with("/proc"))
        && !PROC_FILES_ALLOWED.iter().any(|p| Path::new(p) == inside)
    {
        bail!(
            "the destination {}{resolved} is inside /proc: mounting there is not allowed (only on {})",
            m.destination.display(),
            PROC_FILES_ALLOWED.join(", ")
        );
    }
    Ok(())
}

/// proc and sysfs go only on a directory (or where nothing is yet), never through a symlink, as runc
/// requires: an image's `/proc -> somewhere` is refused, naming it.
fn ordinary_directory(root: &Root, m: &Mount, fstype: &str) -> Result<()> {
    let st = match root.resolve_nofollow(&m.destination) {
        Ok(h) => nix::sys::stat::fstat(h.as_fd().as_raw_fd()).context("fstat")?,
        Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
            return Ok(())
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("looking up the mount point {}", m.destination.display()))
        }
    };
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => return Ok(()),
        libc::S_IFLNK => "a symlink",
        libc::S_IFREG => "a file",
        _ => "not a directory",
    };
    bail!(
        "filesystem {fstype:?} must be mounted on an ordinary directory, and {} is {kind} in the image",
        m.destination.display()
    )
}

/// The mount point inside the rootfs, created if missing: a directory, or an empty file for a file mount.
fn mount_point(root: &Root, dest: &Path, file: bool) -> Result<pathrs::Handle> {
    if let Ok(h) = root.resolve(dest) {
        return Ok(h);
    }
    let dir_perm = Permissions::from_mode(0o755);
    if !file {
        return root
            .mkdir_all(dest, &dir_perm)
            .with_context(|| format!("creating the mount point {}", dest.display()));
    }
    if let Some(parent) = dest.parent() {
        root.mkdir_all(parent, &dir_perm)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    root.create_file(
        dest,
        OpenFlags::O_CREAT | OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        &Permissions::from_mode(0o644),
    )
    .with_context(|| format!("creating the mount point {}", dest.display()))?;
    root.resolve(dest)
        .with_context(|| format!("opening the mount point {}", dest.display()))
}

/// Copy what the directory `under` holds into the new (still detached) tmpfs `mnt`.
fn copy_up(under: &pathrs::Handle, mnt: &OwnedFd) -> Result<()> {
    let src = format!("/proc/self/fd/{}", under.as_fd().as_raw_fd());
    let dst = format!("/proc/self/fd/{}", mnt.as_raw_fd());
    copy_tree(Path::new(&src), Path::new(&dst))
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let to = dst.join(entry.file_name());
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&entry.path(), &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &to)?;
        } else {
            continue;
        }
        let _ = nix::unistd::fchownat(
            None,
            &to,
            Some(meta.uid().into()),
            Some(meta.gid().into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if !ft.is_symlink() {
            std::fs::set_permissions(&to, Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// `type: cgroup`: the container's cgroups at the destination, laid out as on the host: cgroup2 on a
/// unified host; on v1 and hybrid hosts a tmpfs with one directory per hierarchy (and the host's symlinks
/// for co-mounted controllers). With a cgroup namespace each hierarchy is a fresh cgroup mount rooted at the
/// container's cgroup; without one, the container's own cgroup directories are bind-mounted.
fn mount_cgroups(root: &Rootfs, m: &Mount, in_cgroupns: bool) -> Result<()> {
    let hierarchies = host_cgroup_mounts()?;
    let own = own_cgroups()?;
    let dest = &m.destination;
    if let [(_, h)] = hierarchies.as_slice() {
        if h.fstype == "cgroup2" && h.mount_point == Path::new("/sys/fs/cgroup") {
            let t = target(root, m, false)?;
            return mount_one_hierarchy(&t, m, h, &own, in_cgroupns);
        }
    }
    // v1 / hybrid: a tmpfs to hold the hierarchies.
    let fs = sys::fsopen(c"tmpfs")?;
    sys::fsconfig_set(fs.as_fd(), c"source", Some(c"tmpfs"))?;
    sys::fsconfig_set(fs.as_fd(), c"mode", Some(c"755"))?;
    let mnt = sys::fsmount(
        fs.as_fd(),
        m.attr.attr_set & (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
    )
    .context("creating the tmpfs for the cgroup hierarchies")?;
    let t = target(root, m, false)?;
    sys::move_mount(mnt.as_fd(), t.as_fd()).context("attaching the cgroup tmpfs")?;
    // The tmpfs is new and only berth has written to it, so its directories are made and opened
    // relative to its own fd, without resolving paths through the rootfs again.
    let dir = mnt.as_raw_fd();
    for (name, h) in &hierarchies {
        nix::sys::stat::mkdirat(
            Some(dir),
            name.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .with_context(|| format!("creating {}/{name}", dest.display()))?;
        let fd = nix::fcntl::openat(
            Some(dir),
            name.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening {}/{name}", dest.display()))?;
        mount_one_hierarchy(&owned(fd), m, h, &own, in_cgroupns)
            .with_context(|| format!("cgroup hierarchy {name}"))?;
    }
    for (link, target) in host_cgroup_symlinks() {
        let _ = nix::unistd::symlinkat(&target, Some(dir), link.as_str());
    }
    if m.attr.attr_set & MOUNT_ATTR_RDONLY != 0 {
        let ro = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        setattr(&mnt, &ro, false)?;
    }
    Ok(())
}

/// Attach one cgroup hierarchy onto `t`: a fresh cgroup mount in a cgroup namespace, else a bind of
/// the container's own cgroup directory of that hierarchy.
fn mount_one_hierarchy(
    t: &impl AsFd,
    m: &Mount,
    h: &HostCgroupMount,
    own: &[(String, String)],
    in_cgroupns: bool,
) -> Result<()> {
    let mnt = if in_cgroupns {
        let fs = sys::fsopen(&CString::new(h.fstype.as_str())?)
            .with_context(|| format!("fsopen({})", h.fstype))?;
        sys::fsconfig_set(fs.as_fd(), c"source", Some(c"cgroup"))?;
        for opt in &h.options {
            let (k, v) = match opt.split_once('=') {
                Some((k, v)) => (CString::new(k)?, Some(CString::new(v)?)),
                None => (CString::new(opt.as_str())?, None),
            };
            sys::fsconfig_set(fs.as_fd(), &k, v.as_deref())
                .with_context(|| format!("cgroup option {opt}"))?;
        }
        sys::fsmount(fs.as_fd(), m.attr.attr_set).context("creating the cgroup mount")?
    } else {
        let own_path = own
            .iter()
            .find(|(ctrls, _)| *ctrls == h.controllers)
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        let rel = Path::new(own_path)
            .strip_prefix(&h.root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let src = h.mount_point.join(rel);
        let tree = sys::open_tree(
            libc::AT_FDCWD,
            &cstr(&src)?,
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
        .with_context(|| format!("open_tree({})", src.display()))?;
        set_attrs(&tree, m)?;
        tree
    };
    sys::move_mount(mnt.as_fd(), t.as_fd()).context("move_mount")?;
    Ok(())
}

struct HostCgroupMount {
    mount_point: PathBuf,
    /// The root of the hierarchy that this mount shows (field 4 of mountinfo).
    root: PathBuf,
    fstype: String,
    /// The controllers as /proc/self/cgroup names them ("cpu", "name=systemd", "" for cgroup2).
    controllers: String,
    /// fsconfig options that recreate this hierarchy ("cpu", "name=systemd", ...).
    options: Vec<String>,
}

/// The host's cgroup mounts under /sys/fs/cgroup, keyed by their directory name there.
fn host_cgroup_mounts() -> Result<Vec<(String, HostCgroupMount)>> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let mount_point = PathBuf::from(unescape_octal(pre[4]));
        let Ok(rel) = mount_point.strip_prefix("/sys/fs/cgroup") else {
            continue;
        };
        let name = rel.to_string_lossy().into_owned();
        let super_opts: Vec<&str> = post[2].split(',').collect();
        let (controllers, options) = if fstype == "cgroup2" {
            (String::new(), Vec::new())
        } else {
            let known: Vec<String> = super_opts
                .iter()
                .filter(|o| {
                    **o != "rw"
                        && **o != "ro"
                        && !o.starts_with("release_agent")
                        && **o != "clone_children"
                        && **o != "noprefix"
                        && **o != "xattr"
                })
                .map(|s| s.to_string())
                .collect();
            (known.join(","), known)
        };
        out.push((
            name,
            HostCgroupMount {
                mount_point,
                root: PathBuf::from(unescape_octal(pre[3])),
                fstype: fstype.to_owned(),
                controllers,
                options,
            },
        ));
    }
    if out.is_empty() {
        bail!("no cgroup filesystem is mounted under /sys/fs/cgroup on this host");
    }
    Ok(out)
}

fn host_cgroup_symlinks() -> Vec<(String, PathBuf)> {
    let Ok(dir) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_link(e.path()).ok()?,
            ))
        })
        .collect()
}

/// This process's cgroups: (controllers, path) from /proc/self/cgroup.
fn own_cgroups() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect())
}

/// Move into the prepared rootfs: pivot_root (the host's tree is detached and dropped), or with
/// `no_pivot` MS_MOVE + chroot (for a rootfs on ramfs, where pivot_root is impossible).
pub fn pivot(rootfs: &OwnedFd, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(rootfs.as_raw_fd()).context("fchdir into the rootfs")?;
    if no_pivot {
        mount::<str, str, str, str>(Some("."), "/", None, MsFlags::MS_MOVE, None)
            .context("moving the rootfs onto / (--no-pivot)")?;
        nix::unistd::chroot(".").context("chroot into the rootfs (--no-pivot)")?;
    } else {
        let old_root = std::fs::File::open("/").context("opening the old root")?;
        nix::unistd::pivot_root(".", ".").context("pivot_root into the rootfs")?;
        // The old root is now stacked on the new one. Step into it (through the fd: "." would name the new
        // root for mount(2)), keep our unmounts from reaching the host, and drop it.
        nix::unistd::fchdir(old_root.as_raw_fd()).context("fchdir into the old root")?;
        mount::<str, str, str, str>(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
            .context("making the old root a slave")?;
        umount2(".", MntFlags::MNT_DETACH).context("detaching the host's root")?;
    }
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// After pivot_root: readonlyPaths, maskedPaths (runc's order), root.readonly, and last
/// `rootfsPropagation` on `/` (last: an unbindable `/` would refuse the binds before it).
pub fn finalize(
    masked: &[String],
    readonly: &[String],
    root_readonly: bool,
    propagation: u64,
) -> Result<()> {
    let root = Root::open("/").context("opening the container's /")?;
    for p in readonly {
        make_readonly(&root, p).with_context(|| format!("linux.readonlyPaths: {p}"))?;
    }
    if !masked.is_empty() {
        let null = verified_dev_null()?;
        let mut empty_dir = None;
        for p in masked {
            mask(&root, p, &null, &mut empty_dir)
                .with_context(|| format!("linux.maskedPaths: {p}"))?;
        }
    }
    if root_readonly {
        let top = root.resolve("/")?;
        let ro = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        setattr(&top, &ro, false).context("root.readonly: making / read-only")?;
    }
    if propagation != 0 {
        mount::<str, str, str, str>(
            None,
            "/",
            None,
            MsFlags::from_bits_retain(propagation),
            None,
        )
        .context("applying linux.rootfsPropagation to /")?;
    }
    Ok(())
}

/// The container's /dev/null, checked to be the real character device 1:3 (a file planted there by the
/// image must not be bound over masked paths).
fn verified_dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("opening /dev/null to mask paths with")?;
    let fd = owned(fd);
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).context("stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        bail!("/dev/null in the container is not the null device (char 1:3): refusing to mask with it");
    }
    Ok(fd)
}

/// Take ownership of an fd just returned by open(2)/openat(2).
pub fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: only called with fds just returned by open(2), owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Mask `path`: a file with the container's /dev/null, a directory with an empty read-only tmpfs —
/// one for all of them (`empty_dir`, made on first use), as runc 1.3 and crun share one: Kubernetes
/// masks a directory per CPU, and a tmpfs each costs a superblock each.
fn mask(root: &Root, path: &str, null: &OwnedFd, empty_dir: &mut Option<OwnedFd>) -> Result<()> {
    let target = match root.resolve(path) {
        Ok(h) => h,
        Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    };
    let st = nix::sys::stat::fstat(target.as_fd().as_raw_fd())?;
    let mnt = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let empty = match empty_dir {
            Some(fd) => fd,
            None => {
                let fs = sys::fsopen(c"tmpfs")?;
                sys::fsconfig_set(fs.as_fd(), c"source", Some(c"tmpfs"))?;
                sys::fsconfig_set(fs.as_fd(), c"size", Some(c"0"))?;
                let fd = sys::fsmount(fs.as_fd(), MOUNT_ATTR_RDONLY)
                    .context("an empty read-only tmpfs")?;
                empty_dir.insert(fd)
            }
        };
        sys::open_tree(
            empty.as_raw_fd(),
            c"",
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH,
        )
        .context("open_tree of the masking tmpfs")?
    } else {
        sys::open_tree(
            null.as_raw_fd(),
            c"",
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH,
        )
        .context("open_tree(/dev/null)")?
    };
    sys::move_mount(mnt.as_fd(), target.as_fd()).context("move_mount")?;
    Ok(())
}

fn make_readonly(root: &Root, path: &str) -> Result<()> {
    let target = match root.resolve(path) {
        Ok(h) => h,
        Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    };
    let tree = sys::open_tree(
        target.as_fd().as_raw_fd(),
        c"",
        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE,
    )
    .context("open_tree")?;
    setattr(
        &tree,
        &MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        },
        true,
    )?;
    sys::move_mount(tree.as_fd(), target.as_fd()).context("move_mount")?;
    Ok(())
}

/// Bind the terminal `pty` (the container's end) onto the `/dev/console` placeholder made for it.
pub fn bind_console(pty: &OwnedFd, console: &OwnedFd) -> Result<()> {
    let tree = sys::open_tree(
        pty.as_raw_fd(),
        c"",
        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH,
    )
    .context("open_tree of the terminal")?;
    sys::move_mount(tree.as_fd(), console.as_fd())
        .context("binding the terminal onto /dev/console")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_unescaping() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/x\\134y"), "/x\\y");
    }
}
