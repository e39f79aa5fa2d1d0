#!/bin/bash
# Make a plain OCI bundle (no image, no manager): DIR/rootfs (the same busybox tree as build-image.sh) and
# DIR/config.json with the defaults `runc spec` writes, its `sh` replaced by CMD.
#
# Usage: make-bundle.sh [--tty] DIR [CMD...]
#   CMD defaults to `sh`. process.terminal is false unless --tty is given (`runc spec` sets true; a
#   non-interactive demo needs false).
# Then:  berth run -b DIR demo   (or runc run -b DIR demo)
set -euo pipefail

usage() { echo "usage: $0 [--tty] DIR [CMD...]" >&2; exit 2; }
terminal=false
if [ "${1:-}" = "--tty" ]; then terminal=true; shift; fi
[ $# -ge 1 ] || usage
dir="$1"; shift
if [ $# -eq 0 ]; then set -- sh; fi
command -v jq >/dev/null || { echo "$0: jq is needed" >&2; exit 1; }
if [ -e "$dir/config.json" ] || [ -e "$dir/rootfs" ]; then
	echo "$0: $dir already holds a bundle" >&2
	exit 1
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=rootfs.sh
. "$here/rootfs.sh"
umask 022
make_rootfs "$dir/rootfs"

args='[]'
for arg in "$@"; do args="$(jq -c --arg a "$arg" '. + [$a]' <<<"$args")"; done
jq -n --argjson args "$args" --argjson terminal "$terminal" '
{
	ociVersion: "1.0.2-dev",
	process: {
		terminal: $terminal,
		user: {uid: 0, gid: 0},
		args: $args,
		env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
		cwd: "/",
		capabilities: {
			bounding: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			effective: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			permitted: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			ambient: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
		},
		rlimits: [{type: "RLIMIT_NOFILE", hard: 1024, soft: 1024}],
		noNewPrivileges: true
	},
	root: {path: "rootfs", readonly: true},
	hostname: "berth",
	mounts: [
		{destination: "/proc", type: "proc", source: "proc"},
		{destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]},
		{destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
		{destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		{destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]},
		{destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]},
		{destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}
	],
	linux: {
		resources: {devices: [{allow: false, access: "rwm"}]},
		namespaces: [{type: "pid"}, {type: "network"}, {type: "ipc"}, {type: "uts"}, {type: "mount"}, {type: "cgroup"}],
		maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
		readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
	}
}' >"$dir/config.json"
echo "$dir: bundle for: $*"
