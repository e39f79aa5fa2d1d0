//! config-linux.md "Network Devices" (`linux.netDevices`, runtime-spec 1.3): host devices moved into the
//! container's network namespace, renamed, with their permanent global addresses, set up; errors for a
//! missing device, no network namespace of the container's own, a name clash, a device that cannot
//! move; nothing moved back on delete (the kernel destroys virtual devices with the namespace).
//!
//! The host's network is never touched: each test runs the runtime in a private network namespace
//! (`unshare --net`, entered with `nsenter`) and moves veth devices made there. runc 1.1 lacks
//! netDevices, so these are berth_only.

use conformance::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A network namespace of the test's own, held by a `sleep`; the runtime runs in it.
struct PrivateNet {
    holder: Unshared,
}

impl PrivateNet {
    fn new() -> PrivateNet {
        PrivateNet {
            holder: Unshared::start(&["--net"], &["net"]),
        }
    }

    fn prefix(&self) -> Vec<String> {
        ["nsenter", "-t", &self.holder.pid().to_string(), "-n"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Run a host shell script (iproute2's `ip`) in the namespace.
    fn sh(&self, script: &str) -> std::process::Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.holder.pid().to_string(),
                "-n",
                "sh",
                "-c",
                script,
            ])
            .output()
            .expect("nsenter")
    }

    #[track_caller]
    fn sh_ok(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "`{script}` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn has_link(&self, name: &str) -> bool {
        self.sh(&format!("ip link show dev {name}"))
            .status
            .success()
    }

    /// The flags of a link (`<BROADCAST,MULTICAST,UP,...>`).
    fn link_flags(&self, name: &str) -> Vec<String> {
        flags_of(&self.sh_ok(&format!("ip -o link show dev {name}")))
    }

    /// A bundle whose runtime runs in this namespace.
    fn bundle(&self, tag: &str) -> Bundle {
        let mut b = bundle(tag);
        b.runtime_prefix = self.prefix();
        b
    }
}

fn flags_of(ip_link: &str) -> Vec<String> {
    let inner = ip_link
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(f, _)| f)
        .unwrap_or_default();
    inner.split(',').map(str::to_string).collect()
}

/// The host (the test's own network namespace) has no device of these names.
#[track_caller]
fn not_on_the_host(names: &[&str]) {
    for n in names {
        assert!(
            !std::path::Path::new("/sys/class/net").join(n).exists(),
            "{n} showed up in the host's network namespace"
        );
    }
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no linux.netDevices"
)]
fn berth_only_net_device_is_moved_renamed_with_its_addresses() {
    let net = PrivateNet::new();
    net.sh_ok(
        "ip link add bvc0 type veth peer name bvh0 && ip addr add 10.123.0.2/24 dev bvc0 && \
         ip addr add fd00:123::2/64 dev bvc0 nodad && ip link set bvh0 up",
    );
    let mut b = net.bundle("netdev");
    b.set("/linux/netDevices", json!({"bvc0": {"name": "ctr0"}}));
    b.args(&["sleep", "600"]);
    let id = b.new_id();
    b.create(&id).ok();
    // Gone from the runtime's namespace as soon as the container exists.
    assert!(
        !net.has_link("bvc0"),
        "bvc0 is still in the runtime's namespace"
    );
    assert!(!net.has_link("ctr0"));
    b.start(&id).ok();
    b.wait_status(&id, "running", T);

    let o = b.rt(&["exec", &id, "ip", "-o", "addr", "show", "dev", "ctr0"]);
    o.ok();
    assert!(o.stdout.contains("inet 10.123.0.2/24"), "{o:?}");
    assert!(o.stdout.contains("inet6 fd00:123::2/64"), "{o:?}");
    let o = b.rt(&["exec", &id, "ip", "-o", "link", "show", "ctr0"]);
    o.ok();
    assert!(
        flags_of(&o.stdout).contains(&"UP".to_string()),
        "the moved device must be up: {o:?}"
    );
    // Only the device and the namespace's loopback: nothing else was moved.
    let o = b.rt(&["exec", &id, "ls", "/sys/class/net"]);
    o.ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["ctr0", "lo"]
    );

    b.delete_force(&id).ok();
    b.assert_nothing_left(&id);
    // Not moved back: the container's namespace died with its last process, and the kernel destroyed
    // its virtual devices (the veth end, and so its peer left here).
    let deadline = Instant::now() + T;
    while net.has_link("bvh0") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !net.has_link("bvh0"),
        "the veth peer survived: the container's end was not destroyed with its namespace"
    );
    assert!(!net.has_link("bvc0") && !net.has_link("ctr0"));
    not_on_the_host(&["bvc0", "ctr0"]);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no linux.netDevices"
)]
fn berth_only_net_device_keeps_its_name_and_templates_pick_a_free_one() {
    let net = PrivateNet::new();
    net.sh_ok(
        "ip link add bva0 type veth peer name bvb0 && ip link add bvc1 type veth peer name bvd1",
    );
    let mut b = net.bundle("netdevtpl");
    b.set(
        "/linux/netDevices",
        json!({"bva0": {}, "bvc1": {"name": "net%d"}}),
    );
    b.sh("ls /sys/class/net");
    let o = b.run_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["bva0", "lo", "net0"],
        "{o:?}"
    );
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no linux.netDevices"
)]
fn berth_only_net_devices_are_put_back_when_create_fails() {
    let net = PrivateNet::new();
    net.sh_ok(
        "ip link add bvc0 type veth peer name bvh0 && ip addr add 10.124.0.2/24 dev bvc0 && \
         ip link set bvc0 up && ip link add bvc1 type veth peer name bvh1",
    );
    // A failing prestart hook, after the devices were moved.
    let mut b = net.bundle("netdevundo");
    b.set(
        "/linux/netDevices",
        json!({"bvc0": {"name": "eth7"}, "bvc1": {}}),
    );
    b.hook("prestart", "exit 3", None);
    let id = b.new_id();
    b.create(&id).fails_naming(&["prestart"]);
    b.assert_nothing_left(&id);
    // Both are back under their names; bvc0 with its address and up, as before.
    assert!(net.has_link("bvc1"));
    let addrs = net.sh_ok("ip -o addr show dev bvc0");
    assert!(addrs.contains("inet 10.124.0.2/24"), "{addrs}");
    assert!(net.link_flags("bvc0").contains(&"UP".to_string()));
    assert!(!net.link_flags("bvc1").contains(&"UP".to_string()));
    not_on_the_host(&["eth7", "bvc0", "bvc1"]);

    // A device that cannot change namespace (a bridge is netns-local): the kernel refuses the move,
    // after another was moved; both stay (or are put back) here.
    net.sh_ok("ip link add bbr0 type bridge");
    let mut b = net.bundle("netdevlocal");
    b.set("/linux/netDevices", json!({"bbr0": {}, "bvc0": {}}));
    let id = b.new_id();
    b.create(&id).fails_naming(&["linux.netDevices[\"bbr0\"]"]);
    b.assert_nothing_left(&id);
    assert!(net.has_link("bbr0"));
    assert!(net.has_link("bvc0"));
    let addrs = net.sh_ok("ip -o addr show dev bvc0");
    assert!(addrs.contains("inet 10.124.0.2/24"), "{addrs}");
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no linux.netDevices"
)]
fn berth_only_net_device_errors_name_the_entry() {
    let net = PrivateNet::new();
    net.sh_ok("ip link add bvc0 type veth peer name bvh0");

    // No such device in the runtime's namespace.
    let mut b = net.bundle("netdevmissing");
    b.set("/linux/netDevices", json!({"nosuchdev0": {}}));
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&["linux.netDevices[\"nosuchdev0\"]"]);
    b.assert_nothing_left(&id);

    // The container shares the runtime's network namespace.
    let mut b = net.bundle("netdevnons");
    b.remove_namespace("network");
    b.set("/linux/netDevices", json!({"bvc0": {}}));
    let id = b.new_id();
    b.create(&id).fails_naming(&["linux.netDevices"]);
    b.assert_nothing_left(&id);

    // A network namespace "joined" by path that is the runtime's own.
    let mut b = net.bundle("netdevjoinown");
    let own = format!("/proc/{}/ns/net", net.holder.pid());
    b.namespace("network", Some(&own));
    b.set("/linux/netDevices", json!({"bvc0": {}}));
    let id = b.new_id();
    b.create(&id).fails_naming(&["linux.netDevices"]);
    b.assert_nothing_left(&id);

    // Name clashes: with the new namespace's loopback, between two entries.
    let mut b = net.bundle("netdevlo");
    b.set("/linux/netDevices", json!({"bvc0": {"name": "lo"}}));
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&["linux.netDevices[\"bvc0\"].name"]);
    b.assert_nothing_left(&id);
    let mut b = net.bundle("netdevdup");
    b.set(
        "/linux/netDevices",
        json!({"bvc0": {"name": "same0"}, "bvh0": {"name": "same0"}}),
    );
    let id = b.new_id();
    b.create(&id).fails_naming(&["same0"]);
    b.assert_nothing_left(&id);

    // A name the kernel would refuse.
    let mut b = net.bundle("netdevbadname");
    b.set(
        "/linux/netDevices",
        json!({"bvc0": {"name": "a-name-far-too-long"}}),
    );
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&["linux.netDevices[\"bvc0\"].name"]);
    b.assert_nothing_left(&id);

    // Nothing moved by any of these.
    assert!(net.has_link("bvc0") && net.has_link("bvh0"));
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no linux.netDevices"
)]
fn berth_only_net_device_into_a_namespace_joined_by_path() {
    let net = PrivateNet::new();
    net.sh_ok("ip link add bvc0 type veth peer name bvh0 && ip addr add 10.125.0.2/24 dev bvc0");
    // The target: another namespace held by a sleep of the test's; it already has a device "taken0".
    let target = Unshared::start(&["--net"], &["net"]);
    let in_target = |script: &str| {
        Command::new("nsenter")
            .args(["-t", &target.pid().to_string(), "-n", "sh", "-c", script])
            .output()
            .expect("nsenter")
    };
    assert!(in_target("ip link add taken0 type veth peer name other0")
        .status
        .success());

    let mut b = net.bundle("netdevjoinclash");
    b.namespace("network", Some(&target.ns_path("net")));
    b.set("/linux/netDevices", json!({"bvc0": {"name": "taken0"}}));
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&["linux.netDevices[\"bvc0\"].name"]);
    b.assert_nothing_left(&id);
    assert!(net.has_link("bvc0"));

    let mut b = net.bundle("netdevjoin");
    b.namespace("network", Some(&target.ns_path("net")));
    b.set("/linux/netDevices", json!({"bvc0": {"name": "moved0"}}));
    b.args(&["true"]);
    let id = b.new_id();
    b.run_id(&id, &[]).ok();
    b.assert_nothing_left(&id);
    // The namespace outlives the container: the device stays there, as the spec has it.
    let o = in_target("ip -o addr show dev moved0");
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("inet 10.125.0.2/24"),
        "{o:?}"
    );
    assert!(!net.has_link("bvc0"));
}
