#!/bin/bash
# Run a container from berth's built-in default bundle (`berth spec`) on a busybox root filesystem made
# on the fly: an interactive `sh` when stdin is a terminal, a short scripted one otherwise, then the same
# container detached, with state, exec, kill and delete.
set -euo pipefail
berth="${BERTH:-$(dirname "$0")/../target/release/berth}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d /tmp/berth-demo.XXXXXX)"
state="$dir/state"
trap '"$berth" --root "$state" delete --force demo-bg >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

# shellcheck source=../integration/images/rootfs.sh
. "$root/integration/images/rootfs.sh"
make_rootfs "$dir/rootfs"
"$berth" spec --bundle "$dir"
echo "== bundle $dir: busybox rootfs + \`berth spec\` (the built-in default config.json)"

if [ -t 0 ] && [ -t 1 ]; then
	echo "== berth run demo: an interactive sh in the container (exit to leave)"
	"$berth" --root "$state" run --bundle "$dir" demo || true
else
	echo "== berth run demo: (stdin is not a terminal: a scripted shell instead of an interactive one)"
	jq '.process.terminal = false | .process.args = ["sh", "-c",
		"echo \"hello from $(hostname), pid $$, as $(id -un)\"; echo \"mounts: $(wc -l < /proc/self/mountinfo)\"; ls /dev | tr \"\\n\" \" \"; echo"]' \
		"$dir/config.json" >"$dir/config.tmp" && mv "$dir/config.tmp" "$dir/config.json"
	"$berth" --root "$state" run --bundle "$dir" demo
fi

echo "== the same bundle detached: run -d, state, exec, kill, delete"
jq '.process.terminal = false | .process.args = ["sleep", "1000"]' "$dir/config.json" >"$dir/config.tmp" && mv "$dir/config.tmp" "$dir/config.json"
"$berth" --root "$state" run --detach --bundle "$dir" demo-bg
"$berth" --root "$state" state demo-bg
"$berth" --root "$state" exec demo-bg sh -c 'echo "exec: $(ps | wc -l) lines of ps inside"'
"$berth" --root "$state" kill demo-bg KILL
sleep 0.2
"$berth" --root "$state" delete demo-bg
echo "== done"
