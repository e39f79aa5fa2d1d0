//! `linux.namespaces`, `linux.uidMappings`/`gidMappings` and `linux.timeOffsets`: which namespaces the
//! container gets, how its init enters them, and in which order.
//!
//! Two ways in, chosen per container:
//! - **direct** (the common case): one clone3 call creates every new namespace; the child then joins the
//!   ones given by path. A pid namespace given by path is entered by the parent setting its own
//!   `pid_for_children` around the clone, so no extra process is needed.
//! - **staged**: when a user namespace is joined, or a new one must own namespaces that are joined by path,
//!   the order matters (join first, then create the user namespace, then the rest), which clone flags cannot
//!   express: the child joins and unshares step by step and forks the init if it made a new pid namespace.
//!
//! Cgroup and time namespaces are always made by the child after it was placed in its cgroup (so the cgroup
//! namespace is rooted there) and after the time offsets are written.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType, LinuxTimeOffset};

use crate::sync::{Channel, Msg};
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

const CLONE_NEWTIME: libc::c_int = 0x80;

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::User,
        Kind::Mount,
        Kind::Pid,
        Kind::Net,
        Kind::Ipc,
        Kind::Uts,
        Kind::Cgroup,
        Kind::Time,
    ];

    pub fn from_spec(t: LinuxNamespaceType) -> Kind {
        match t {
            LinuxNamespaceType::User => Kind::User,
            LinuxNamespaceType::Mount => Kind::Mount,
            LinuxNamespaceType::Pid => Kind::Pid,
            LinuxNamespaceType::Network => Kind::Net,
            LinuxNamespaceType::Ipc => Kind::Ipc,
            LinuxNamespaceType::Uts => Kind::Uts,
            LinuxNamespaceType::Cgroup => Kind::Cgroup,
            LinuxNamespaceType::Time => Kind::Time,
        }
    }

    pub fn flag(self) -> CloneFlags {
        match self {
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Mount => CloneFlags::CLONE_NEWNS,
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            Kind::Time => CloneFlags::from_bits_retain(CLONE_NEWTIME),
        }
    }

    /// The name under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Mount => "mnt",
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }

    /// The name in config.json.
    pub fn spec_name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Mount => "mount",
            Kind::Pid => "pid",
            Kind::Net => "network",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }
}

/// The validated `linux.namespaces`, with the id maps and time offsets that go with them.
#[derive(Clone, Debug, Default)]
pub struct Namespaces {
    /// Namespaces the container gets new.
    pub new: Vec<Kind>,
    /// Namespaces joined by path.
    pub join: Vec<(Kind, PathBuf)>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// `timeOffsets`: clock name ("monotonic", "boottime") with seconds and nanoseconds.
    pub time_offsets: Vec<(String, i64, u32)>,
}

impl Namespaces {
    pub fn from_spec(
        namespaces: &[LinuxNamespace],
        uid_mappings: Option<&Vec<LinuxIdMapping>>,
        gid_mappings: Option<&Vec<LinuxIdMapping>>,
        time_offsets: Option<&std::collections::HashMap<String, LinuxTimeOffset>>,
    ) -> Result<Namespaces> {
        let mut ns = Namespaces::default();
        for (i, n) in namespaces.iter().enumerate() {
            let kind = Kind::from_spec(n.typ());
            if ns.has(kind) {
                bail!(
                    "linux.namespaces[{i}]: the {} namespace is listed twice",
                    kind.spec_name()
                );
            }
            match n.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    if !p.is_absolute() {
                        bail!(
                            "linux.namespaces[{i}].path {}: must be an absolute path",
                            p.display()
                        );
                    }
                    ns.join.push((kind, p.clone()));
                }
                _ => ns.new.push(kind),
            }
        }
        let mut uid_mappings = uid_mappings.cloned().unwrap_or_default();
        let mut gid_mappings = gid_mappings.cloned().unwrap_or_default();
        if ns.new.contains(&Kind::User) {
            if uid_mappings.is_empty() || gid_mappings.is_empty() {
                bail!("linux.uidMappings and linux.gidMappings are required with a new user namespace");
            }
        } else if !uid_mappings.is_empty() || !gid_mappings.is_empty() {
            // Nothing to map without a user namespace of the container's own: runc ignores them.
            crate::warn!("linux.uidMappings/gidMappings are not applied: the container gets no new user namespace");
            uid_mappings.clear();
            gid_mappings.clear();
        }
        for (field, maps) in [
            ("uidMappings", &uid_mappings),
            ("gidMappings", &gid_mappings),
        ] {
            for (i, m) in maps.iter().enumerate() {
                if m.size() == 0 {
                    bail!("linux.{field}[{i}]: size must not be 0");
                }
            }
        }
        ns.uid_mappings = uid_mappings;
        ns.gid_mappings = gid_mappings;
        if let Some(offsets) = time_offsets {
            if !offsets.is_empty() && !ns.new.contains(&Kind::Time) {
                bail!("linux.timeOffsets needs a new time namespace in linux.namespaces");
            }
            let mut v: Vec<_> = offsets
                .iter()
                .map(|(clock, o)| {
                    if clock != "monotonic" && clock != "boottime" {
                        bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
                    }
                    Ok((
                        clock.clone(),
                        o.secs().unwrap_or(0),
                        o.nanosecs().unwrap_or(0),
                    ))
                })
                .collect::<Result<_>>()?;
            v.sort();
            ns.time_offsets = v;
        }
        Ok(ns)
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.is_new(kind) || self.joined(kind).is_some()
    }

    pub fn is_new(&self, kind: Kind) -> bool {
        self.new.contains(&kind)
    }

    pub fn joined(&self, kind: Kind) -> Option<&Path> {
        self.join
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_path())
    }

    /// Whether the child must join and create namespaces step by step (see the module docs).
    pub fn staged(&self) -> bool {
        let joins_other_than_pid = self.join.iter().any(|(k, _)| *k != Kind::Pid);
        self.joined(Kind::User).is_some() || (self.is_new(Kind::User) && joins_other_than_pid)
    }

    /// The flags clone3 is called with.
    pub fn clone_flags(&self) -> CloneFlags {
        if self.staged() {
            return CloneFlags::empty();
        }
        let new_user = self.is_new(Kind::User);
        self.new
            .iter()
            .filter(|k| !matches!(k, Kind::Cgroup | Kind::Time))
            // An IPC namespace's mqueue filesystem belongs to its creator's credentials: made by
            // clone3 together with the user namespace, that would be the runtime's root (unmapped:
            // /dev/mqueue owned by 65534); made by the init as the namespace's root, it is root's.
            .filter(|k| !(new_user && **k == Kind::Ipc))
            .fold(CloneFlags::empty(), |acc, k| acc | k.flag())
    }
}

/// Namespace files opened by the parent before it clones (errors surface before anything exists).
pub struct JoinFds {
    pub fds: Vec<(Kind, OwnedFd)>,
}

impl JoinFds {
    /// Open every namespace given by path and check it is a namespace of the type claimed.
    pub fn open(ns: &Namespaces) -> Result<JoinFds> {
        let mut fds = Vec::with_capacity(ns.join.len());
        for (kind, path) in &ns.join {
            let f = File::open(path).with_context(|| {
                format!(
                    "linux.namespaces: opening the {} namespace {}",
                    kind.spec_name(),
                    path.display()
                )
            })?;
            let fd = OwnedFd::from(f);
            check_ns_type(&fd, *kind).with_context(|| {
                format!(
                    "linux.namespaces: {} ({} namespace)",
                    path.display(),
                    kind.spec_name()
                )
            })?;
            fds.push((*kind, fd));
        }
        Ok(JoinFds { fds })
    }

    pub fn get(&self, kind: Kind) -> Option<&OwnedFd> {
        self.fds.iter().find(|(k, _)| *k == kind).map(|(_, f)| f)
    }
}

fn check_ns_type(fd: &OwnedFd, kind: Kind) -> Result<()> {
    // NS_GET_NSTYPE = _IO(0xb7, 0x3)
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    let t = sys::ioctl_noarg(fd.as_fd(), NS_GET_NSTYPE)
        .map_err(|e| anyhow::anyhow!("not a namespace file ({e})"))?;
    if t != kind.flag().bits() {
        bail!("this is not a {} namespace", kind.spec_name());
    }
    Ok(())
}

/// In the parent: enter the pid namespace given by path for the children it makes next, and return a
/// guard that goes back to the parent's own one.
pub struct PidForChildren(Option<OwnedFd>);

impl PidForChildren {
    pub fn enter(fds: &JoinFds) -> Result<PidForChildren> {
        let Some(target) = fds.get(Kind::Pid) else {
            return Ok(PidForChildren(None));
        };
        let own =
            OwnedFd::from(File::open("/proc/self/ns/pid").context("opening /proc/self/ns/pid")?);
        setns(target, CloneFlags::CLONE_NEWPID).context("setns into the pid namespace to join")?;
        Ok(PidForChildren(Some(own)))
    }

    pub fn leave(mut self) -> Result<()> {
        if let Some(own) = self.0.take() {
            setns(&own, CloneFlags::CLONE_NEWPID)
                .context("setns back into berth's pid namespace")?;
        }
        Ok(())
    }
}

/// The text of a uid_map/gid_map file for `maps` ("containerID hostID size" lines).
pub fn id_map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write /proc/PID/{uid,gid}_map of a child that made a user namespace (done by the privileged parent).
pub fn write_id_maps(pid: i32, ns: &Namespaces) -> Result<()> {
    // Without CAP_SETGID (berth run by an unprivileged user) the kernel takes a gid_map only once
    // setgroups(2) is denied in the new namespace, as runc does for rootless containers.
    if !nix::unistd::geteuid().is_root() {
        crate::procfs::write_pid(pid, "setgroups", b"deny")?;
    }
    for (file, maps) in [("uid_map", &ns.uid_mappings), ("gid_map", &ns.gid_mappings)] {
        let text = id_map_text(maps);
        crate::procfs::write_pid(pid, file, text.as_bytes())
            .with_context(|| format!("the mapping {}", text.trim().replace('\n', "; ")))?;
    }
    Ok(())
}

/// In the child, after the parent said `Go`: join and create the namespaces not made by clone3.
/// Returns in the process that is the container's init (the staged path may fork it).
pub fn enter(ns: &Namespaces, fds: &JoinFds, channel: &Channel) -> Result<()> {
    if ns.staged() {
        if let Some(fd) = fds.get(Kind::User) {
            setns(fd, CloneFlags::CLONE_NEWUSER).context("setns into the user namespace")?;
            become_root_if_mapped()?;
        }
        join_all(fds)?;
        if ns.is_new(Kind::User) {
            unshare(CloneFlags::CLONE_NEWUSER).context("unshare(CLONE_NEWUSER)")?;
            channel.send(&Msg::NeedIdMaps)?;
            channel.expect(Msg::IdMapsDone)?;
            become_root_if_mapped()?;
        }
        let rest = ns
            .new
            .iter()
            .filter(|k| !matches!(k, Kind::User | Kind::Cgroup | Kind::Time))
            .fold(CloneFlags::empty(), |acc, k| acc | k.flag());
        if !rest.is_empty() {
            unshare(rest).with_context(|| format!("unshare({rest:?})"))?;
        }
        if ns.is_new(Kind::Pid) {
            // Only children enter the new pid namespace: fork the init, report it, and leave.
            match sys::fork().context("forking the init into its pid namespace")? {
                sys::Forked::Child => {}
                sys::Forked::Parent { pid, .. } => {
                    let _ = channel.send(&Msg::InitPid(pid));
                    // The intermediate process is done; the init carries on.
                    std::process::exit(0);
                }
            }
        }
    } else {
        if ns.is_new(Kind::User) {
            become_root_if_mapped()?;
            if ns.is_new(Kind::Ipc) {
                unshare(CloneFlags::CLONE_NEWIPC).context("unshare(CLONE_NEWIPC)")?;
            }
        }
        join_all(fds)?;
    }
    if ns.is_new(Kind::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare(CLONE_NEWCGROUP)")?;
    }
    if ns.is_new(Kind::Time) {
        enter_new_time_namespace(!ns.time_offsets.is_empty(), channel)?;
    }
    Ok(())
}

/// The text of /proc/PID/timens_offsets for `offsets`.
pub fn time_offsets_text(offsets: &[(String, i64, u32)]) -> String {
    offsets
        .iter()
        .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
        .collect()
}

/// In the parent: write the offsets of the time namespace the init just made (before anything
/// enters it).
pub fn write_time_offsets(pid: i32, ns: &Namespaces) -> Result<()> {
    let text = time_offsets_text(&ns.time_offsets);
    crate::procfs::write_pid(pid, "timens_offsets", text.as_bytes())
        .with_context(|| format!("linux.timeOffsets ({})", text.trim().replace('\n', "; ")))
}

/// setns into every namespace given by path, except user (first, by the caller) and pid (done by the
/// parent). Mount goes last so the paths of the others still resolve.
fn join_all(fds: &JoinFds) -> Result<()> {
    let mut order: Vec<&(Kind, OwnedFd)> = fds
        .fds
        .iter()
        .filter(|(k, _)| !matches!(k, Kind::User | Kind::Pid))
        .collect();
    order.sort_by_key(|(k, _)| matches!(k, Kind::Mount));
    for (kind, fd) in order {
        setns(fd, kind.flag())
            .with_context(|| format!("setns into the {} namespace", kind.spec_name()))?;
    }
    Ok(())
}

/// After entering a user namespace, act as its root when 0 is mapped (files the container's set-up creates
/// are then owned by the container's root).
fn become_root_if_mapped() -> Result<()> {
    let map = crate::procfs::read_self("uid_map")?.unwrap_or_default();
    let zero_mapped = map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && f[0] == 0
    });
    if zero_mapped {
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .context("setresgid(0) in the user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .context("setresuid(0) in the user namespace")?;
    }
    Ok(())
}

/// unshare a time namespace, have the parent write its offsets, and move the calling process into it
/// (time namespaces otherwise apply only to children).
fn enter_new_time_namespace(offsets: bool, channel: &Channel) -> Result<()> {
    unshare(Kind::Time.flag()).context("unshare(CLONE_NEWTIME)")?;
    if offsets {
        channel.send(&Msg::NeedTimeOffsets)?;
        channel.expect(Msg::TimeOffsetsDone)?;
    }
    let f = File::open("/proc/self/ns/time_for_children")
        .context("opening /proc/self/ns/time_for_children")?;
    setns(f.as_fd(), Kind::Time.flag()).context("setns into the new time namespace")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder};

    fn ns(spec: &[(LinuxNamespaceType, Option<&str>)], maps: bool) -> Result<Namespaces> {
        let list: Vec<LinuxNamespace> = spec
            .iter()
            .map(|(t, p)| {
                let mut b = LinuxNamespaceBuilder::default().typ(*t);
                if let Some(p) = p {
                    b = b.path(*p);
                }
                b.build().unwrap()
            })
            .collect();
        let m = vec![LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(1000u32)
            .size(1u32)
            .build()
            .unwrap()];
        Namespaces::from_spec(&list, maps.then_some(&m), maps.then_some(&m), None)
    }

    use LinuxNamespaceType::*;

    #[test]
    fn all_new_namespaces_take_one_clone() {
        let n = ns(
            &[
                (Pid, None),
                (Network, None),
                (Mount, None),
                (Cgroup, None),
                (User, None),
            ],
            true,
        )
        .unwrap();
        assert!(!n.staged());
        let f = n.clone_flags();
        assert!(f.contains(
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS
        ));
        // The cgroup namespace is made after the init joined its cgroup.
        assert!(!f.contains(CloneFlags::CLONE_NEWCGROUP));
    }

    #[test]
    fn a_joined_pid_namespace_still_takes_one_clone() {
        let n = ns(&[(Pid, Some("/proc/1/ns/pid")), (Mount, None)], false).unwrap();
        assert!(!n.staged());
        assert!(!n.clone_flags().contains(CloneFlags::CLONE_NEWPID));
    }

    #[test]
    fn joins_under_a_new_user_namespace_are_staged() {
        let n = ns(
            &[(User, None), (Network, Some("/run/netns/x")), (Pid, None)],
            true,
        )
        .unwrap();
        assert!(n.staged());
        assert!(n.clone_flags().is_empty());
        let n = ns(&[(User, Some("/proc/1/ns/user")), (Mount, None)], false).unwrap();
        assert!(n.staged());
    }

    #[test]
    fn bad_namespace_lists_are_refused() {
        assert!(ns(&[(Pid, None), (Pid, None)], false).is_err(), "duplicate");
        assert!(
            ns(&[(User, None)], false).is_err(),
            "user namespace without mappings"
        );
        // Mappings without a user namespace are ignored (with a warning), as runc ignores them.
        assert!(ns(&[(Pid, None)], true).unwrap().uid_mappings.is_empty());
        assert!(
            ns(&[(Network, Some("relative/path"))], false).is_err(),
            "relative path"
        );
    }
}
