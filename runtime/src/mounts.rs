//! `mounts`: each entry of config.json translated once into a `Mount` — what to attach where, with which
//! per-mount attributes, recursive attributes, superblock flags, filesystem data and propagation.
//!
//! The options are runc's (mount(8) names, the `r*` recursive forms, propagation names, `tmpcopyup`);
//! whatever is not a flag is filesystem data (`mode=755`, `size=64m`, ...). `rootfs` applies the result
//! with the new mount API (open_tree/fsopen + mount_setattr + move_mount), so attributes are set before
//! a mount becomes visible and targets are the exact directories resolved inside the rootfs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxIdMapping, Mount as SpecMount};

use crate::sys::mount_api::*;
use crate::sys::MountAttr;

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A bind mount of a host path (absolute; relative sources are taken from the bundle).
    Bind { path: PathBuf, recursive: bool },
    /// A new filesystem of this type, with this source string ("proc", "tmpfs", "/dev/sdb1", ...).
    Fs { fstype: String, source: String },
    /// `type: cgroup`: the container's cgroups, laid out like the host's (see `rootfs`).
    Cgroup,
}

#[derive(Clone, Debug)]
pub struct Mount {
    pub destination: PathBuf,
    pub source: Source,
    /// Per-mount attributes set / cleared on the top mount (ro, nosuid, nodev, noexec, atime, nosymfollow).
    pub attr: MountAttr,
    /// The `r*` options: set / cleared on every mount of the tree.
    pub recursive_attr: MountAttr,
    /// Superblock flags passed to a new filesystem (sync, dirsync, mand, lazytime, iversion, silent, ro).
    pub sb_flags: Vec<&'static str>,
    /// Filesystem options: `key=value` or a bare `key`.
    pub data: Vec<(String, Option<String>)>,
    /// Propagation changes in order: (MS_SHARED etc., recursive).
    pub propagation: Vec<(u64, bool)>,
    /// `tmpcopyup`: fill a new tmpfs with what the directory under it held.
    pub tmpcopyup: bool,
    /// Idmapped mount (`idmap`/`ridmap` options or the mount's own uid/gid mappings).
    pub idmap: Option<IdMap>,
    /// The atime options as mount(2) flags, folded into `attr` by [`from_spec`].
    pub atime: AtimeFlags,
}

/// MS_NOATIME, MS_STRICTATIME and MS_RELATIME as the atime options set (true) or clear (false)
/// them, in order, the way runc hands them to mount(2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtimeFlags {
    pub noatime: Option<bool>,
    pub strictatime: Option<bool>,
    pub relatime: Option<bool>,
}

impl AtimeFlags {
    /// The mount's atime mode as the kernel derives it from those flags: strictatime wins, then
    /// noatime, else relatime (the default). None when no atime option was given.
    fn mode(&self) -> Option<u64> {
        if *self == AtimeFlags::default() {
            return None;
        }
        Some(if self.strictatime == Some(true) {
            MOUNT_ATTR_STRICTATIME
        } else if self.noatime == Some(true) {
            MOUNT_ATTR_NOATIME
        } else {
            MOUNT_ATTR_RELATIME
        })
    }
}

#[derive(Clone, Debug)]
pub struct IdMap {
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    pub recursive: bool,
}

impl Mount {
    pub fn is_bind(&self) -> bool {
        matches!(self.source, Source::Bind { .. })
    }
}

/// Translate mount `index` of config.json. `bundle` resolves relative bind sources.
pub fn from_spec(index: usize, m: &SpecMount, bundle: &Path) -> Result<Mount> {
    let field = format!("mounts[{index}]");
    let destination = m.destination();
    if destination.as_os_str().is_empty() {
        bail!("{field}.destination is empty");
    }
    // Relative destinations are taken from "/", and ".." is cleaned lexically (never above "/"),
    // as runc does; the result is resolved inside the rootfs when the mount is made.
    let destination = clean(&Path::new("/").join(destination));

    let options: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
    let mut mount = Mount {
        destination,
        source: Source::Cgroup,
        attr: MountAttr::default(),
        recursive_attr: MountAttr::default(),
        sb_flags: Vec::new(),
        data: Vec::new(),
        propagation: Vec::new(),
        tmpcopyup: false,
        idmap: None,
        atime: AtimeFlags::default(),
    };
    let mut bind = None;
    let mut idmap = None;
    for opt in &options {
        if let Some(rest) = apply_option(&mut mount, opt) {
            match rest {
                Extra::Bind(recursive) => bind = Some(recursive || bind.unwrap_or(false)),
                Extra::Idmap(recursive) => idmap = Some(recursive),
                Extra::Data => {
                    let (k, v) = match opt.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (opt.to_string(), None),
                    };
                    if k.is_empty() {
                        bail!("{field}.options: empty option name in {opt:?}");
                    }
                    mount.data.push((k, v));
                }
            }
        }
    }

    if let Some(mode) = mount.atime.mode() {
        mount.attr.attr_clr |= MOUNT_ATTR__ATIME;
        mount.attr.attr_set = (mount.attr.attr_set & !MOUNT_ATTR__ATIME) | mode;
    }
    let fstype = m.typ().as_deref().unwrap_or("");
    if fstype == "bind" && bind.is_none() {
        bind = Some(false);
    }
    mount.source = if let Some(recursive) = bind {
        let src = m
            .source()
            .as_ref()
            .filter(|s| !s.as_os_str().is_empty())
            .ok_or_else(|| anyhow::anyhow!("{field}: a bind mount needs a source"))?;
        let path = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        if !mount.data.is_empty() {
            // mount(2) ignores the data of a bind mount, and runc passes it through: so is it here.
            crate::debug!(
                "{field}.options: {:?} are filesystem options, which a bind mount does not take: ignored",
                mount.data.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
            );
            mount.data.clear();
        }
        Source::Bind { path, recursive }
    } else if fstype == "cgroup" {
        Source::Cgroup
    } else {
        if fstype.is_empty() {
            bail!("{field}: type is required unless the options make it a bind mount");
        }
        Source::Fs {
            fstype: fstype.to_owned(),
            source: m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| fstype.to_owned()),
        }
    };

    if mount.tmpcopyup && !matches!(&mount.source, Source::Fs { fstype, .. } if fstype == "tmpfs") {
        bail!("{field}.options: tmpcopyup is only for tmpfs mounts");
    }
    let uid_maps = m.uid_mappings().clone().unwrap_or_default();
    let gid_maps = m.gid_mappings().clone().unwrap_or_default();
    if idmap.is_some() || !uid_maps.is_empty() || !gid_maps.is_empty() {
        if !mount.is_bind() {
            bail!("{field}: idmapped mounts are only supported for bind mounts");
        }
        if uid_maps.is_empty() || gid_maps.is_empty() {
            bail!("{field}: an idmapped mount needs both uidMappings and gidMappings");
        }
        for (name, maps) in [("uidMappings", &uid_maps), ("gidMappings", &gid_maps)] {
            for (i, map) in maps.iter().enumerate() {
                if map.size() == 0 {
                    bail!("{field}.{name}[{i}]: size must not be 0");
                }
            }
        }
        mount.idmap = Some(IdMap {
            uid_mappings: uid_maps,
            gid_mappings: gid_maps,
            recursive: idmap.unwrap_or(false),
        });
    }
    check_proc_destination(&field, &mount)?;
    Ok(mount)
}

/// `path` without "." and ".." components (a ".." at "/" stays at "/"), like Go's filepath.Clean.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Every option [`from_spec`] recognises as a flag, attribute, propagation or mount kind (anything
/// else is filesystem data). `features` reports these; the tests hold the list to the code.
pub const OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

enum Extra {
    Bind(bool),
    Idmap(bool),
    Data,
}

/// Record one option in `m`; return what is not an attribute, flag or propagation.
fn apply_option(m: &mut Mount, opt: &str) -> Option<Extra> {
    let (attr_set, attr_clr) = (&mut m.attr.attr_set, &mut m.attr.attr_clr);
    let atime_flags = &mut m.atime;
    match opt {
        "ro" => {
            *attr_set |= MOUNT_ATTR_RDONLY;
            *attr_clr &= !MOUNT_ATTR_RDONLY;
        }
        "rw" => {
            *attr_clr |= MOUNT_ATTR_RDONLY;
            *attr_set &= !MOUNT_ATTR_RDONLY;
        }
        "nosuid" => *attr_set |= MOUNT_ATTR_NOSUID,
        "suid" => {
            *attr_clr |= MOUNT_ATTR_NOSUID;
            *attr_set &= !MOUNT_ATTR_NOSUID;
        }
        "nodev" => *attr_set |= MOUNT_ATTR_NODEV,
        "dev" => {
            *attr_clr |= MOUNT_ATTR_NODEV;
            *attr_set &= !MOUNT_ATTR_NODEV;
        }
        "noexec" => *attr_set |= MOUNT_ATTR_NOEXEC,
        "exec" => {
            *attr_clr |= MOUNT_ATTR_NOEXEC;
            *attr_set &= !MOUNT_ATTR_NOEXEC;
        }
        "nosymfollow" => *attr_set |= MOUNT_ATTR_NOSYMFOLLOW,
        "symfollow" => {
            *attr_clr |= MOUNT_ATTR_NOSYMFOLLOW;
            *attr_set &= !MOUNT_ATTR_NOSYMFOLLOW;
        }
        "nodiratime" => *attr_set |= MOUNT_ATTR_NODIRATIME,
        "diratime" => {
            *attr_clr |= MOUNT_ATTR_NODIRATIME;
            *attr_set &= !MOUNT_ATTR_NODIRATIME;
        }
        // The atime words set or clear one mount(2) flag each, as runc passes them; the mode is
        // decided once all options are read (see `AtimeFlags::mode`).
        "noatime" => atime_flags.noatime = Some(true),
        "atime" => atime_flags.noatime = Some(false),
        "strictatime" => atime_flags.strictatime = Some(true),
        "nostrictatime" => atime_flags.strictatime = Some(false),
        "relatime" => atime_flags.relatime = Some(true),
        "norelatime" => atime_flags.relatime = Some(false),
        "defaults" | "remount" | "async" | "loud" | "noiversion" | "nolazytime" | "nomand" => {}
        "sync" | "dirsync" | "mand" | "lazytime" | "iversion" | "silent" => {
            m.sb_flags.push(match opt {
                "sync" => "sync",
                "dirsync" => "dirsync",
                "mand" => "mand",
                "lazytime" => "lazytime",
                "iversion" => "iversion",
                _ => "silent",
            })
        }
        "bind" => return Some(Extra::Bind(false)),
        "rbind" => return Some(Extra::Bind(true)),
        "idmap" => return Some(Extra::Idmap(false)),
        "ridmap" => return Some(Extra::Idmap(true)),
        "tmpcopyup" => m.tmpcopyup = true,
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
        | "runbindable" => {
            let recursive = opt.starts_with('r');
            let flag = match opt.trim_start_matches('r') {
                "private" => libc::MS_PRIVATE,
                "shared" => libc::MS_SHARED,
                "slave" => libc::MS_SLAVE,
                _ => libc::MS_UNBINDABLE,
            };
            m.propagation.push((flag, recursive));
        }
        _ => {
            if let Some((set, clear)) = recursive_option(opt) {
                let ra = &mut m.recursive_attr;
                if set {
                    ra.attr_set |= clear_atime_mask(opt, ra);
                } else {
                    ra.attr_clr |= clear;
                    ra.attr_set &= !clear;
                }
                return None;
            }
            return Some(Extra::Data);
        }
    }
    None
}

/// The `r*` options: (true, _) sets the attribute returned by `clear_atime_mask`; (false, attr) clears attr.
fn recursive_option(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" | "rnosuid" | "rnodev" | "rnoexec" | "rnodiratime" | "rnosymfollow" | "rnoatime"
        | "rstrictatime" | "rrelatime" => (true, 0),
        "rrw" => (false, MOUNT_ATTR_RDONLY),
        "rsuid" => (false, MOUNT_ATTR_NOSUID),
        "rdev" => (false, MOUNT_ATTR_NODEV),
        "rexec" => (false, MOUNT_ATTR_NOEXEC),
        "rdiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rsymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        "ratime" | "rnorelatime" | "rnostrictatime" => (false, MOUNT_ATTR__ATIME),
        _ => return None,
    })
}

/// The attribute a setting `r*` option sets (atime modes also clear the atime field first).
fn clear_atime_mask(opt: &str, ra: &mut MountAttr) -> u64 {
    let mut atime = |v: u64| {
        ra.attr_clr |= MOUNT_ATTR__ATIME;
        ra.attr_set &= !MOUNT_ATTR__ATIME;
        v
    };
    match opt {
        "rro" => MOUNT_ATTR_RDONLY,
        "rnosuid" => MOUNT_ATTR_NOSUID,
        "rnodev" => MOUNT_ATTR_NODEV,
        "rnoexec" => MOUNT_ATTR_NOEXEC,
        "rnodiratime" => MOUNT_ATTR_NODIRATIME,
        "rnosymfollow" => MOUNT_ATTR_NOSYMFOLLOW,
        "rnoatime" => atime(MOUNT_ATTR_NOATIME),
        "rstrictatime" => atime(MOUNT_ATTR_STRICTATIME),
        _ => atime(MOUNT_ATTR_RELATIME),
    }
}

/// The string check of a destination under /proc (the resolved mount point is checked again when the
/// mount is made: `rootfs::check_not_in_proc`).
fn check_proc_destination(field: &str, m: &Mount) -> Result<()> {
    let dest = m.destination.as_path();
    if dest == Path::new("/proc") {
        if !matches!(&m.source, Source::Fs { fstype, .. } if fstype == "proc") {
            bail!("{field}: only a proc filesystem may be mounted on /proc");
        }
        return Ok(());
    }
    let allowed = crate::rootfs::PROC_FILES_ALLOWED;
    if dest.starts_with("/proc") && !allowed.iter().any(|p| Path::new(p) == dest) {
        bail!(
            "{field}: mounting over {} is not allowed (only {} under /proc)",
            dest.display(),
            allowed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn mount(typ: &str, src: &str, dst: &str, opts: &[&str]) -> Result<Mount> {
        let m = MountBuilder::default()
            .typ(typ)
            .source(src)
            .destination(dst)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap();
        from_spec(0, &m, Path::new("/bundle"))
    }

    #[test]
    fn tmpfs_flags_and_data() {
        let m = mount(
            "tmpfs",
            "tmpfs",
            "/dev",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )
        .unwrap();
        assert_eq!(m.attr.attr_set, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME);
        assert_eq!(m.attr.attr_clr, MOUNT_ATTR__ATIME);
        assert_eq!(
            m.data,
            vec![
                ("mode".into(), Some("755".into())),
                ("size".into(), Some("65536k".into()))
            ]
        );
        assert!(matches!(m.source, Source::Fs { ref fstype, .. } if fstype == "tmpfs"));
    }

    #[test]
    fn bind_from_options_or_type_and_relative_source() {
        let m = mount("none", "data", "/data", &["rbind", "ro"]).unwrap();
        assert_eq!(
            m.source,
            Source::Bind {
                path: "/bundle/data".into(),
                recursive: true
            }
        );
        assert_eq!(m.attr.attr_set, MOUNT_ATTR_RDONLY);
        let m = mount("bind", "/x", "/y", &[]).unwrap();
        assert_eq!(
            m.source,
            Source::Bind {
                path: "/x".into(),
                recursive: false
            }
        );
    }

    #[test]
    fn atime_words_set_and_clear_flags_as_mount2_reads_them() {
        let mode = |opts: &[&str]| {
            mount("tmpfs", "tmpfs", "/x", opts).unwrap().attr.attr_set & MOUNT_ATTR__ATIME
        };
        assert_eq!(mode(&["noatime", "nostrictatime"]), MOUNT_ATTR_NOATIME);
        assert_eq!(mode(&["noatime", "strictatime"]), MOUNT_ATTR_STRICTATIME);
        assert_eq!(mode(&["strictatime", "nostrictatime"]), MOUNT_ATTR_RELATIME);
        assert_eq!(mode(&["noatime", "atime"]), MOUNT_ATTR_RELATIME);
        assert_eq!(mount("tmpfs", "tmpfs", "/x", &[]).unwrap().attr.attr_clr, 0);
    }

    #[test]
    fn later_options_win() {
        let m = mount("bind", "/x", "/y", &["ro", "rw"]).unwrap();
        assert_eq!(m.attr.attr_set & MOUNT_ATTR_RDONLY, 0);
        assert_ne!(m.attr.attr_clr & MOUNT_ATTR_RDONLY, 0);
    }

    #[test]
    fn recursive_and_propagation_options() {
        let m = mount(
            "bind",
            "/x",
            "/y",
            &["rbind", "rro", "rnosuid", "rshared", "private"],
        )
        .unwrap();
        assert_eq!(
            m.recursive_attr.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
        );
        assert_eq!(
            m.propagation,
            vec![(libc::MS_SHARED, true), (libc::MS_PRIVATE, false)]
        );
    }

    #[test]
    fn relative_destination_is_from_root_and_dotdot_is_cleaned() {
        let dest = |d: &str| mount("tmpfs", "tmpfs", d, &[]).unwrap().destination;
        assert_eq!(dest("tmp"), Path::new("/tmp"));
        assert_eq!(dest("/mnt/../mnt/dd1"), Path::new("/mnt/dd1"));
        assert_eq!(dest("/a/../../b/./c"), Path::new("/b/c"));
    }

    #[test]
    fn proc_destinations_are_checked() {
        assert!(mount("proc", "proc", "/proc", &[]).is_ok());
        assert!(mount("tmpfs", "tmpfs", "/proc", &[]).is_err());
        assert!(mount("bind", "/x", "/proc/self", &[]).is_err());
        assert!(mount("bind", "/x", "/proc/meminfo", &[]).is_ok());
    }

    fn recognised(opt: &str) -> bool {
        let mut m = mount("tmpfs", "tmpfs", "/x", &[]).unwrap();
        !matches!(apply_option(&mut m, opt), Some(Extra::Data))
    }

    #[test]
    fn the_options_list_is_what_the_code_recognises() {
        for opt in OPTIONS {
            assert!(
                recognised(opt),
                "{opt} is listed but taken as filesystem data"
            );
        }
        // runc 1.1's `features` list plus other mount(8) words: whatever is not listed is data
        let others = [
            "acl",
            "noacl",
            "mode=755",
            "size=1m",
            "nr_inodes=1k",
            "uid=0",
            "newinstance",
            "user_xattr",
            "nouser_xattr",
            "context=x",
            "gid=5",
            "ptmxmode=0666",
            "foo",
        ];
        for opt in others {
            assert!(!OPTIONS.contains(&opt));
            assert!(!recognised(opt), "{opt} is recognised but not in OPTIONS");
        }
        // the neighbours of every listed word (r-, no- forms) are listed iff recognised
        for w in OPTIONS {
            let mut near = vec![format!("r{w}"), format!("no{w}"), format!("rno{w}")];
            for p in ["r", "no", "rno"] {
                if let Some(rest) = w.strip_prefix(p) {
                    near.push(rest.to_string());
                    near.push(format!("r{rest}"));
                }
            }
            for c in near.iter().filter(|c| !c.is_empty()) {
                assert_eq!(
                    recognised(c),
                    OPTIONS.contains(&c.as_str()),
                    "{c}: recognised and listed disagree"
                );
            }
        }
        let mut sorted = OPTIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, OPTIONS, "keep OPTIONS sorted and unique");
    }

    #[test]
    fn bind_mounts_ignore_data_as_mount2_does() {
        let m = mount("bind", "/x", "/y", &["mode=755", "size=1k", "ro"]).unwrap();
        assert!(m.data.is_empty());
        assert_eq!(m.attr.attr_set, MOUNT_ATTR_RDONLY);
    }
}
