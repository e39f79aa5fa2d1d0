//! `linux.netDevices` (runtime-spec 1.3, config-linux.md "Network Devices"): host network devices moved
//! into the container's network namespace, optionally renamed.
//!
//! What the spec asks, and how berth does it:
//! - the container needs a network namespace of its own (new, or joined by path but not the runtime's):
//!   checked by `from_spec` (validation) and `check_target` (create, before anything exists);
//! - a device of the new name already in the container's namespace is an error, unless the name is a
//!   template ending in `%d` (the kernel then picks a free name);
//! - the device keeps its attributes, among them its permanent addresses of global scope (the kernel
//!   drops every address when a device changes namespace, so berth reads them first and adds them again);
//! - the device is set up after the move;
//! - on delete berth does nothing: "the runtime MUST NOT attempt to move the interface out of the namespace
//!   before deletion". When the namespace dies the kernel moves physical devices back to the initial
//!   namespace and destroys virtual ones (veth, dummy, macvlan, ...).
//!
//! The parent (`berth create`) moves the devices once the init is in its namespaces, before the
//! prestart/createRuntime hooks. A create that fails afterwards moves them back where they were (with
//! their names, addresses and up/down state): a failed create leaves nothing behind.
//!
//! rtnetlink is spoken directly: five fixed-layout messages (RTM_GETLINK, RTM_NEWLINK with
//! IFLA_NET_NS_FD/IFLA_IFNAME, RTM_GETADDR, RTM_NEWADDR) over a NETLINK_ROUTE socket from `nix`, with the
//! kernel's extended ack messages in errors. That is less code than adopting a netlink crate family whose
//! API changes with most releases, and needs no `unsafe`.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use oci_spec::runtime::LinuxNetDevice;

use crate::namespaces::{Kind, Namespaces};
use crate::sys;

/// One entry of `linux.netDevices`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    /// The device's name in the runtime's network namespace (the entry's key).
    pub host_name: String,
    /// Its name in the container (`name`, or the host name), possibly a `%d` template.
    pub name: String,
}

impl NetDevice {
    fn field(&self) -> String {
        format!("linux.netDevices[{:?}]", self.host_name)
    }

    fn is_template(&self) -> bool {
        self.name.contains('%')
    }
}

/// Validate `linux.netDevices`: names, clashes between entries and with the loopback device of a new
/// namespace, a network namespace of the container's own, and each device present in the runtime's
/// network namespace. Entries are returned in the order of their host names.
pub fn from_spec(
    devices: Option<&HashMap<String, LinuxNetDevice>>,
    ns: &Namespaces,
) -> Result<Vec<NetDevice>> {
    let Some(devices) = devices.filter(|d| !d.is_empty()) else {
        return Ok(Vec::new());
    };
    if !ns.has(Kind::Net) {
        bail!(
            "linux.netDevices: moving network devices needs a network namespace of the container's own, \
             and linux.namespaces has no network namespace (the container would share the runtime's)"
        );
    }
    let mut out: Vec<NetDevice> = devices
        .iter()
        .map(|(host, d)| NetDevice {
            host_name: host.clone(),
            name: d
                .name()
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| host.clone()),
        })
        .collect();
    out.sort_by(|a, b| a.host_name.cmp(&b.host_name));
    for d in &out {
        let field = d.field();
        check_name(&d.host_name, false).with_context(|| format!("{field}: the device name"))?;
        check_name(&d.name, true).with_context(|| format!("{field}.name {:?}", d.name))?;
        if ns.is_new(Kind::Net) && d.name == "lo" {
            bail!("{field}.name \"lo\": a new network namespace already has a device of that name");
        }
        if let Some(other) = out
            .iter()
            .find(|o| o.host_name < d.host_name && o.name == d.name && !d.is_template())
        {
            bail!(
                "{field}.name {:?}: {} is moved into the container under the same name",
                d.name,
                other.field()
            );
        }
    }
    let mut rt = Rtnl::open_in(None).context("linux.netDevices")?;
    for d in &out {
        if rt.link_index(&d.host_name)?.is_none() {
            bail!(
                "{}: no network device {:?} in the runtime's network namespace",
                d.field(),
                d.host_name
            );
        }
    }
    Ok(out)
}

/// A valid interface name as the kernel takes it (dev_valid_name): 1..15 bytes, not `.` or `..`, no
/// `/`, `:` or white space. A template has exactly one `%`, as `%d`.
fn check_name(name: &str, template_allowed: bool) -> Result<()> {
    if name.is_empty() || name.len() > 15 {
        bail!("must be 1 to 15 bytes long");
    }
    if name == "." || name == ".." {
        bail!("is not a valid interface name");
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        bail!("must not contain {c:?}");
    }
    if name.contains('%') {
        let ok = template_allowed && name.matches('%').count() == 1 && name.contains("%d");
        if !ok {
            bail!(if template_allowed {
                "a template must hold one \"%d\" and no other \"%\""
            } else {
                "a host device name is not a template"
            });
        }
    }
    Ok(())
}

/// At create, for a network namespace joined by path: it must not be the runtime's own, and the new
/// names must be free in it.
pub fn check_target(devices: &[NetDevice], netns: BorrowedFd) -> Result<()> {
    let own = File::open("/proc/self/ns/net").context("opening /proc/self/ns/net")?;
    let (a, b) = (
        nix::sys::stat::fstat(own.as_raw_fd())?,
        nix::sys::stat::fstat(netns.as_raw_fd())?,
    );
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
        bail!(
            "linux.netDevices: the network namespace the container joins is the runtime's own: \
             the devices cannot be moved into it"
        );
    }
    let mut rt = Rtnl::open_in(Some(netns))?;
    for d in devices.iter().filter(|d| !d.is_template()) {
        if rt.link_index(&d.name)?.is_some() {
            bail!(
                "{}.name {:?}: a network device of that name already exists in the container's \
                 network namespace",
                d.field(),
                d.name
            );
        }
    }
    Ok(())
}

/// A device berth moved, with what it takes to put it back.
#[derive(Debug)]
pub struct Moved {
    host_name: String,
    /// Its index in the container's namespace.
    index: i32,
    addresses: Vec<Address>,
    was_up: bool,
}

/// The devices moved into one container, for undoing a failed create.
pub struct MovedDevices {
    runtime_ns: OwnedFd,
    container_ns: OwnedFd,
    pub devices: Vec<Moved>,
}

/// Move `devices` into the network namespace `netns` (the init's). Each device is recorded in the
/// result as soon as it moved, so that `undo` can put back the ones that did when a later one fails.
pub fn move_all(
    devices: &[NetDevice],
    netns: OwnedFd,
    moved: &mut Option<MovedDevices>,
) -> Result<()> {
    let runtime_ns =
        OwnedFd::from(File::open("/proc/self/ns/net").context("opening /proc/self/ns/net")?);
    let mut host = Rtnl::open_in(None)?;
    let mut ctr = Rtnl::open_in(Some(netns.as_fd()))?;
    let done = moved.insert(MovedDevices {
        runtime_ns,
        container_ns: netns,
        devices: Vec::new(),
    });
    for d in devices {
        move_one(d, &mut host, &mut ctr, done).with_context(|| d.field())?;
    }
    Ok(())
}

fn move_one(d: &NetDevice, host: &mut Rtnl, ctr: &mut Rtnl, done: &mut MovedDevices) -> Result<()> {
    let (index, flags) = host.link(&d.host_name)?.with_context(|| {
        format!(
            "no network device {:?} in the runtime's network namespace",
            d.host_name
        )
    })?;
    let addresses = host.permanent_global_addresses(index)?;
    let before = if d.is_template() {
        ctr.link_indices()?
    } else {
        Vec::new()
    };
    host.set_link(index, Some(done.container_ns.as_fd()), Some(&d.name), None)
        .with_context(|| {
            format!(
                "moving {:?} into the container's network namespace as {:?}",
                d.host_name, d.name
            )
        })?;
    // Its index there: the kernel keeps it unless it is taken.
    let new_index = if d.is_template() {
        let after = ctr.link_indices()?;
        let new: Vec<i32> = after.into_iter().filter(|i| !before.contains(i)).collect();
        match new.as_slice() {
            [i] => *i,
            _ => bail!("cannot tell which device of the container's namespace is the moved one"),
        }
    } else {
        ctr.link_index(&d.name)?
            .with_context(|| format!("{:?} is not in the container's namespace", d.name))?
    };
    done.devices.push(Moved {
        host_name: d.host_name.clone(),
        index: new_index,
        addresses: addresses.clone(),
        was_up: flags & IFF_UP != 0,
    });
    for a in &addresses {
        ctr.add_address(new_index, a)
            .with_context(|| format!("adding the address {} again", a.describe()))?;
    }
    ctr.set_link(new_index, None, None, Some(true))
        .context("setting the device up")?;
    crate::debug!(
        "linux.netDevices: moved {:?} into the container as index {new_index} ({} addresses)",
        d.host_name,
        addresses.len()
    );
    Ok(())
}

/// Undo `move_all` after a failed create (before the init is killed, which would destroy virtual
/// devices): each device goes down, back to the runtime's namespace under its host name, gets its
/// addresses again and its former up/down state. Best effort: failures are logged.
/// Bring up `lo` in the caller's network namespace (a new one starts with it down), as runc does for
/// every container with a network namespace of its own.
pub fn loopback_up() -> Result<()> {
    let mut nl = Rtnl::open_in(None).context("bringing up lo")?;
    let index = nl
        .link_index("lo")?
        .context("bringing up lo: the network namespace has no lo device")?;
    nl.set_link(index, None, None, Some(true))
        .context("bringing up lo")
}

pub fn undo(moved: MovedDevices) {
    let result = (|| -> Result<()> {
        let mut ctr = Rtnl::open_in(Some(moved.container_ns.as_fd()))?;
        let mut host = Rtnl::open_in(None)?;
        for m in moved.devices.iter().rev() {
            let back = (|| -> Result<()> {
                ctr.set_link(m.index, None, None, Some(false))?;
                ctr.set_link(
                    m.index,
                    Some(moved.runtime_ns.as_fd()),
                    Some(&m.host_name),
                    None,
                )?;
                let index = host
                    .link_index(&m.host_name)?
                    .context("not back in the runtime's namespace")?;
                for a in &m.addresses {
                    host.add_address(index, a)?;
                }
                if m.was_up {
                    host.set_link(index, None, None, Some(true))?;
                }
                Ok(())
            })();
            if let Err(e) = back {
                crate::warn!(
                    "linux.netDevices: moving {:?} back after the failed create: {e:#}",
                    m.host_name
                );
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        crate::warn!("linux.netDevices: moving the devices back after the failed create: {e:#}");
    }
}

// ---------------------------------------------------------------------------------------------------
// rtnetlink

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// On an NLMSG_ERROR: extended ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// On an NLMSG_ERROR: the original request's payload is not echoed.
const NLM_F_CAPPED: u16 = 0x100;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NETLINK_EXT_ACK: i32 = 11;
const SOL_NETLINK: i32 = 270;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_HOMEADDRESS: u32 = 0x10;
const IFA_F_PERMANENT: u32 = 0x80;
const IFA_F_MANAGETEMPADDR: u32 = 0x100;
const IFA_F_NOPREFIXROUTE: u32 = 0x200;
const RT_SCOPE_UNIVERSE: u8 = 0;
const IFF_UP: u32 = 0x1;

/// An address of a device, as RTM_GETADDR reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    family: u8,
    prefix_len: u8,
    flags: u32,
    scope: u8,
    /// IFA_ADDRESS, IFA_LOCAL and IFA_BROADCAST, as reported.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    fn describe(&self) -> String {
        let ip = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS))
            .map(|(_, v)| v.as_slice());
        let text = match ip {
            Some(v) if v.len() == 4 => {
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(v).expect("4 bytes")).to_string()
            }
            Some(v) if v.len() == 16 => {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(v).expect("16 bytes")).to_string()
            }
            _ => "?".into(),
        };
        format!("{text}/{}", self.prefix_len)
    }
}

/// A NETLINK_ROUTE socket bound to one network namespace.
struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    /// A socket in `netns` (None: the caller's own). The calling thread enters `netns` just long enough
    /// to create the socket, which stays in it.
    fn open_in(netns: Option<BorrowedFd>) -> Result<Rtnl> {
        let open = || -> Result<OwnedFd> {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkRoute,
            )
            .context("socket(AF_NETLINK, NETLINK_ROUTE)")?;
            bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).context("binding the netlink socket")?;
            // Kernel error messages with the errors (best effort: old kernels lack it).
            let _ = sys::setsockopt_int(fd.as_fd(), SOL_NETLINK, NETLINK_EXT_ACK, 1);
            Ok(fd)
        };
        let fd = match netns {
            None => open()?,
            Some(ns) => {
                let own = File::open("/proc/thread-self/ns/net")
                    .context("opening /proc/thread-self/ns/net")?;
                setns(ns, CloneFlags::CLONE_NEWNET)
                    .context("setns into the container's network namespace")?;
                let fd = open();
                setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
                    .context("setns back into the runtime's network namespace")?;
                fd?
            }
        };
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Send one request; return the payloads of the replies (with their types). Dumps read until
    /// NLMSG_DONE, other requests ask for an ack and read until it.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8]) -> Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty()).context("sending to rtnetlink")?;

        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .context("receiving from rtnetlink")?;
            let mut rest = &buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let mtype = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                let mflags = u16::from_ne_bytes(rest[6..8].try_into().expect("2 bytes"));
                let mseq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                if len < NLMSG_HDRLEN || len > rest.len() {
                    bail!("rtnetlink: malformed reply");
                }
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = &rest[align(len).min(rest.len())..];
                if mseq != seq {
                    continue;
                }
                match mtype {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .context("rtnetlink: short error message")?;
                        if code == 0 {
                            return Ok(replies);
                        }
                        let err = std::io::Error::from_raw_os_error(-code);
                        return Err(match ext_ack_message(payload, mflags) {
                            Some(m) => anyhow!("{err} ({m})"),
                            None => anyhow!(err),
                        });
                    }
                    _ => replies.push((mtype, payload.to_vec())),
                }
            }
        }
    }

    /// Index and flags of the device named `name`, if there is one.
    fn link(&mut self, name: &str) -> Result<Option<(i32, u32)>> {
        let mut body = ifinfomsg(0, 0, 0);
        push_attr(&mut body, IFLA_IFNAME, &c_string(name));
        match self.request(RTM_GETLINK, 0, &body) {
            Ok(replies) => {
                let (_, p) = replies
                    .iter()
                    .find(|(t, _)| *t == RTM_NEWLINK)
                    .context("rtnetlink: no link in the reply")?;
                if p.len() < 16 {
                    bail!("rtnetlink: short link message");
                }
                let index = i32::from_ne_bytes(p[4..8].try_into().expect("4 bytes"));
                let flags = u32::from_ne_bytes(p[8..12].try_into().expect("4 bytes"));
                Ok(Some((index, flags)))
            }
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(e.context(format!("looking up the network device {name:?}"))),
        }
    }

    fn link_index(&mut self, name: &str) -> Result<Option<i32>> {
        Ok(self.link(name)?.map(|(i, _)| i))
    }

    /// The indices of every device.
    fn link_indices(&mut self) -> Result<Vec<i32>> {
        let replies = self
            .request(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0))
            .context("listing the network devices")?;
        Ok(replies
            .iter()
            .filter(|(t, p)| *t == RTM_NEWLINK && p.len() >= 16)
            .map(|(_, p)| i32::from_ne_bytes(p[4..8].try_into().expect("4 bytes")))
            .collect())
    }

    /// RTM_NEWLINK on device `index`: move it to `netns`, rename it, set it up or down.
    fn set_link(
        &mut self,
        index: i32,
        netns: Option<BorrowedFd>,
        name: Option<&str>,
        up: Option<bool>,
    ) -> Result<()> {
        let (flags, change) = match up {
            Some(true) => (IFF_UP, IFF_UP),
            Some(false) => (0, IFF_UP),
            None => (0, 0),
        };
        let mut body = ifinfomsg(index, flags, change);
        if let Some(ns) = netns {
            push_attr(
                &mut body,
                IFLA_NET_NS_FD,
                &(ns.as_raw_fd() as u32).to_ne_bytes(),
            );
        }
        if let Some(n) = name {
            push_attr(&mut body, IFLA_IFNAME, &c_string(n));
        }
        self.request(RTM_NEWLINK, 0, &body)?;
        Ok(())
    }

    /// The permanent addresses of global scope of device `index`: what the spec requires to be kept.
    fn permanent_global_addresses(&mut self, index: i32) -> Result<Vec<Address>> {
        let body = ifaddrmsg(libc::AF_UNSPEC as u8, 0, 0, 0, 0);
        let replies = self
            .request(RTM_GETADDR, NLM_F_DUMP, &body)
            .context("listing the addresses")?;
        let mut out = Vec::new();
        for (t, p) in replies {
            if t != RTM_NEWADDR || p.len() < 8 {
                continue;
            }
            let ifindex = u32::from_ne_bytes(p[4..8].try_into().expect("4 bytes")) as i32;
            if ifindex != index {
                continue;
            }
            let mut a = Address {
                family: p[0],
                prefix_len: p[1],
                flags: p[2] as u32,
                scope: p[3],
                attrs: Vec::new(),
            };
            for (ty, v) in attrs(&p[8..]) {
                match ty {
                    IFA_FLAGS if v.len() == 4 => {
                        a.flags = u32::from_ne_bytes(v.try_into().expect("4 bytes"))
                    }
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((ty, v.to_vec())),
                    _ => {}
                }
            }
            if a.flags & IFA_F_PERMANENT != 0 && a.scope == RT_SCOPE_UNIVERSE {
                out.push(a);
            }
        }
        Ok(out)
    }

    fn add_address(&mut self, index: i32, a: &Address) -> Result<()> {
        // Only the flags a user may set; the kernel's own (tentative, secondary, ...) are its business.
        let flags = a.flags
            & (IFA_F_PERMANENT
                | IFA_F_NODAD
                | IFA_F_HOMEADDRESS
                | IFA_F_MANAGETEMPADDR
                | IFA_F_NOPREFIXROUTE);
        let mut body = ifaddrmsg(a.family, a.prefix_len, (flags & 0xff) as u8, a.scope, index);
        for (ty, v) in &a.attrs {
            push_attr(&mut body, *ty, v);
        }
        push_attr(&mut body, IFA_FLAGS, &flags.to_ne_bytes());
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body)?;
        Ok(())
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// `struct ifinfomsg`.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; 4]; // family (AF_UNSPEC), pad, type
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// `struct ifaddrmsg`.
fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, scope: u8, index: i32) -> Vec<u8> {
    let mut b = vec![family, prefix_len, flags, scope];
    b.extend_from_slice(&(index as u32).to_ne_bytes());
    b
}

fn push_attr(b: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = 4 + value.len();
    b.extend_from_slice(&(len as u16).to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(value);
    b.resize(align(b.len()), 0);
}

fn c_string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The (type, value) attributes in `b`.
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff; // without NLA_F_NESTED / NET_BYTEORDER
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[align(len).min(b.len())..];
    }
    out
}

/// The kernel's message in an NLMSG_ERROR's extended ack, if any.
fn ext_ack_message(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < 4 + NLMSG_HDRLEN {
        return None;
    }
    // error code, then the request's header (and its payload unless capped), then the attributes.
    let orig_len = u32::from_ne_bytes(payload[4..8].try_into().ok()?) as usize;
    let skip = 4 + if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        align(orig_len)
    };
    let tlvs = payload.get(skip..)?;
    attrs(tlvs)
        .into_iter()
        .find(|(t, _)| *t == NLMSGERR_ATTR_MSG)
        .map(|(_, v)| String::from_utf8_lossy(v).trim_end_matches('\0').to_owned())
        .filter(|m| !m.is_empty())
}

fn is_errno(e: &anyhow::Error, errno: i32) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error())
            == Some(errno)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("eth0", false).is_ok());
        assert!(check_name("ctr%d", true).is_ok());
        assert!(check_name("ctr%d", false).is_err());
        assert!(check_name("a%d%d", true).is_err());
        assert!(check_name("a%s", true).is_err());
        assert!(check_name("", true).is_err());
        assert!(check_name("sixteen-bytes-xx", true).is_err());
        assert!(check_name("a/b", true).is_err());
        assert!(check_name("a b", true).is_err());
        assert!(check_name("..", true).is_err());
    }

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        push_attr(&mut b, IFLA_IFNAME, &c_string("eth0"));
        push_attr(&mut b, IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let a = attrs(&b);
        assert_eq!(a[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(a[1], (IFLA_NET_NS_FD, &7u32.to_ne_bytes()[..]));
    }

    fn spec(entries: &[(&str, Option<&str>)]) -> HashMap<String, LinuxNetDevice> {
        entries
            .iter()
            .map(|(k, n)| {
                let mut b = oci_spec::runtime::LinuxNetDeviceBuilder::default();
                if let Some(n) = n {
                    b = b.name(n.to_string());
                }
                (k.to_string(), b.build().unwrap())
            })
            .collect()
    }

    #[test]
    fn validation_names_the_entry() {
        let net = Namespaces {
            new: vec![Kind::Net],
            ..Default::default()
        };
        let none = Namespaces::default();
        let e = from_spec(Some(&spec(&[("lo", None)])), &none).unwrap_err();
        assert!(format!("{e:#}").contains("network namespace"), "{e:#}");
        let e = from_spec(Some(&spec(&[("dummy9", Some("lo"))])), &net).unwrap_err();
        assert!(
            format!("{e:#}").contains("linux.netDevices[\"dummy9\"]"),
            "{e:#}"
        );
        let e = from_spec(
            Some(&spec(&[("a0", Some("same")), ("b0", Some("same"))])),
            &net,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("linux.netDevices[\"b0\"]"),
            "{e:#}"
        );
        let e = from_spec(Some(&spec(&[("no-such-dev-x", None)])), &net).unwrap_err();
        assert!(format!("{e:#}").contains("no network device"), "{e:#}");
        assert!(from_spec(Some(&spec(&[])), &none).unwrap().is_empty());
    }
}
