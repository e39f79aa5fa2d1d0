//! Host cgroup layout: one read of /proc/self/mountinfo and one of /proc/self/cgroup.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 hierarchies berth joins (runc 1.1's list). Named hierarchies other than name=systemd
/// and controllers not listed here are left alone.
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "name=systemd",
];

/// How cgroups are set up on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// cgroup v1 only.
    Legacy,
    /// cgroup v1 controllers plus a cgroup2 mount (normally /sys/fs/cgroup/unified).
    Hybrid,
    /// cgroup v2 only, mounted at /sys/fs/cgroup.
    Unified,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Legacy => "cgroup v1 (legacy)",
            Mode::Hybrid => "hybrid cgroup v1 + v2",
            Mode::Unified => "cgroup v2 (unified)",
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub mount_point: PathBuf,
    /// Root of the mount inside its hierarchy ("/" unless bind-mounted or in a cgroup namespace).
    pub root: PathBuf,
}

#[derive(Debug)]
pub(crate) struct HostLayout {
    pub mode: Mode,
    /// controller (or "name=systemd") -> mount
    pub v1: BTreeMap<String, Mount>,
    /// the cgroup2 mount in use (hybrid: /sys/fs/cgroup/unified, unified: /sys/fs/cgroup)
    pub unified: Option<Mount>,
    /// the calling process' own cgroups: controller -> path ("" = cgroup2)
    pub own: BTreeMap<String, PathBuf>,
}

impl HostLayout {
    pub fn read() -> Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .context("cannot read /proc/self/mountinfo")?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .context("cannot read /proc/self/cgroup")?;
        Self::parse(&mountinfo, &cgroup)
    }

    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Result<Self> {
        let mut v1 = BTreeMap::new();
        // Several cgroup2 entries can exist (e.g. a bind mount over /sys/fs/cgroup): the last
        // entry for a mount point is the one on top.
        let mut cg2_at_root = None;
        let mut cg2_unified = None;
        let mut cg2_other = None;
        for line in mountinfo.lines() {
            let Some(m) = parse_mountinfo_line(line) else {
                continue;
            };
            match m.fstype {
                "cgroup2" => {
                    let mount = Mount {
                        mount_point: m.mount_point.clone(),
                        root: m.root.clone(),
                    };
                    if m.mount_point == Path::new(CGROUP_ROOT) {
                        cg2_at_root = Some(mount);
                    } else if m.mount_point == Path::new(CGROUP_ROOT).join("unified") {
                        cg2_unified = Some(mount);
                    } else if cg2_other.is_none() {
                        cg2_other = Some(mount);
                    }
                }
                "cgroup" => {
                    for opt in m.super_opts.split(',') {
                        if V1_CONTROLLERS.contains(&opt) {
                            v1.insert(
                                opt.to_string(),
                                Mount {
                                    mount_point: m.mount_point.clone(),
                                    root: m.root.clone(),
                                },
                            );
                        }
                    }
                }
                _ => {}
            }
        }

        let mut own = BTreeMap::new();
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                own.insert(String::new(), PathBuf::from(path));
            } else {
                for c in ctrls.split(',') {
                    own.insert(c.to_string(), PathBuf::from(path));
                }
            }
        }

        let mode = if let Some(m) = cg2_at_root.as_ref() {
            // Something mounted cgroup2 on /sys/fs/cgroup after the v1 tmpfs (or instead of it).
            let _ = m;
            Mode::Unified
        } else if v1.is_empty() {
            bail!("no cgroup filesystem is mounted under {CGROUP_ROOT}");
        } else if cg2_unified.is_some() || cg2_other.is_some() {
            Mode::Hybrid
        } else {
            Mode::Legacy
        };
        let (v1, unified) = match mode {
            Mode::Unified => (BTreeMap::new(), cg2_at_root),
            Mode::Hybrid => (v1, cg2_unified.or(cg2_other)),
            Mode::Legacy => (v1, None),
        };
        Ok(HostLayout {
            mode,
            v1,
            unified,
            own,
        })
    }

    /// Our own cgroup for `controller`, relative to the mount of its hierarchy.
    pub fn own_relative(&self, controller: &str, mount: &Mount) -> PathBuf {
        let own = self
            .own
            .get(controller)
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/"));
        let rel = own
            .strip_prefix(&mount.root)
            .map(Path::to_path_buf)
            .unwrap_or(own);
        clean(&rel, false)
    }
}

/// The cgroup directories of process `pid` on this host: each v1 controller's directory, and the
/// cgroup2 one (the unified hierarchy on hybrid hosts). How the shim finds a running container's
/// cgroup from its init process.
pub fn process_cgroup_dirs(pid: i32) -> Result<(BTreeMap<String, PathBuf>, Option<PathBuf>)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    let file = format!("/proc/{pid}/cgroup");
    let cgroup = std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
    let l = HostLayout::parse(&mountinfo, &cgroup)?;
    let v1 =
        l.v1.iter()
            .filter(|(c, _)| l.own.contains_key(*c))
            .map(|(c, m)| (c.clone(), m.mount_point.join(l.own_relative(c, m))))
            .collect();
    let v2 = l
        .unified
        .as_ref()
        .filter(|_| l.own.contains_key(""))
        .map(|m| m.mount_point.join(l.own_relative("", m)));
    Ok((v1, v2))
}

struct MountinfoLine<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: &'a str,
    super_opts: &'a str,
}

fn parse_mountinfo_line(line: &str) -> Option<MountinfoLine<'_>> {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ');
    let root = unescape(pre.nth(3)?);
    let mount_point = unescape(pre.next()?);
    let mut post = post.split(' ');
    let fstype = post.next()?;
    let _source = post.next()?;
    let super_opts = post.next().unwrap_or("");
    Some(MountinfoLine {
        root: PathBuf::from(root),
        mount_point: PathBuf::from(mount_point),
        fstype,
        super_opts,
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lexically clean a path the way runc's utils.CleanPath does: "." and ".." are resolved and
/// ".." can never climb above the start. The result is absolute iff `absolute`.
pub(crate) fn clean(p: &Path, absolute: bool) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut out = if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    for s in parts {
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_cgroup_dirs_exist() {
        let (v1, v2) = process_cgroup_dirs(std::process::id() as i32).unwrap();
        assert!(!v1.is_empty() || v2.is_some());
        for d in v1.values().chain(v2.iter()) {
            assert!(d.is_dir(), "{} is not a directory", d.display());
        }
    }

    const HYBRID_MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CG: &str = "9:name=systemd:/\n4:memory:/sandbox/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn parse_hybrid_layout() {
        let l = HostLayout::parse(HYBRID_MI, HYBRID_CG).unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(
            l.v1.keys().cloned().collect::<Vec<_>>(),
            ["cpu", "cpuacct", "memory", "name=systemd"]
        );
        assert_eq!(
            l.unified.as_ref().unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
        let mem = &l.v1["memory"];
        assert_eq!(l.own_relative("memory", mem), Path::new("sandbox/abc"));
        assert_eq!(l.own_relative("cpu", &l.v1["cpu"]), Path::new(""));
    }

    #[test]
    fn parse_comounted_and_legacy() {
        let mi = "\
1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
2 0 0:2 /docker/x /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let l = HostLayout::parse(mi, "3:pids:/docker/x/y\n1:cpu,cpuacct:/a\n").unwrap();
        assert_eq!(l.mode, Mode::Legacy);
        assert_eq!(l.v1["cpu"].mount_point, l.v1["cpuacct"].mount_point);
        assert_eq!(l.own_relative("pids", &l.v1["pids"]), Path::new("y"));
        assert_eq!(l.own_relative("cpuacct", &l.v1["cpuacct"]), Path::new("a"));
    }

    #[test]
    fn parse_unified_over_hybrid() {
        // the v2 test view: cgroup2 bind-mounted over /sys/fs/cgroup
        let mi =
            format!("{HYBRID_MI}99 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n");
        let l = HostLayout::parse(&mi, "0::/\n").unwrap();
        assert_eq!(l.mode, Mode::Unified);
        assert!(l.v1.is_empty());
        assert_eq!(l.unified.unwrap().mount_point, Path::new(CGROUP_ROOT));
    }

    #[test]
    fn clean_like_runc() {
        assert_eq!(
            clean(Path::new("../../a/./b/../c"), false),
            Path::new("a/c")
        );
        assert_eq!(clean(Path::new("/x/../../y"), true), Path::new("/y"));
        assert_eq!(clean(Path::new(".."), false), Path::new(""));
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
