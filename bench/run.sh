#!/bin/bash
# `make bench`: berth against runc and crun side by side, in one hyperfine run each, as ratios:
#   1. create -> start -> delete of a /bin/true busybox bundle;  2. `run` of the same bundle;
#   3. peak RSS of `create` (GNU time: the largest of the command and the helpers it reaps).
# crun 1.8 refuses hybrid cgroup hosts, so all three run inside a private mount namespace where the
# cgroup2 mount is unmounted (the host's mounts are not touched). Then the shim benchmark, if built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$here/.."
berth="${BERTH:-$top/target/release/berth}"
runs="${BENCH_RUNS:-50}"
work="$(mktemp -d /tmp/berth-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

. "$top/integration/images/rootfs.sh"
make_rootfs "$work/bundle/rootfs"
"$berth" spec --bundle "$work/bundle"
# The same config for all three (ociVersion 1.0.2: crun 1.8 knows no later one).
jq '.ociVersion = "1.0.2" | .process.terminal = false | .process.args = ["/bin/true"]' \
	"$work/bundle/config.json" >"$work/c" && mv "$work/c" "$work/bundle/config.json"

cat >"$work/inner.sh" <<INNER
set -euo pipefail
mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified
b="$work/bundle"
echo "### create -> start -> delete (/bin/true), $runs runs each"
hyperfine -N -w 5 -r $runs --export-json "$work/lifecycle.json" \\
	-n berth "$here/lifecycle.sh $berth $work/s-berth \$b lc" \\
	-n runc "$here/lifecycle.sh runc $work/s-runc \$b lc" \\
	-n crun "$here/lifecycle.sh crun $work/s-crun \$b lc"
echo "### run (/bin/true), $runs runs each"
hyperfine -N -w 5 -r $runs --export-json "$work/run.json" \\
	-n berth "$berth --root $work/s-berth run --bundle \$b rn" \\
	-n runc "runc --root $work/s-runc run --bundle \$b rn" \\
	-n crun "crun --root $work/s-crun run --bundle \$b rn"
echo "### peak RSS of create (KiB, median of 10; GNU time's own floor is about 1 MiB)"
for r in berth runc crun; do
	bin=\$r; [ \$r = berth ] && bin=$berth
	for i in \$(seq 10); do
		/usr/bin/time -f %M -o "$work/t" \$bin --root $work/s-\$r create --bundle \$b rss\$i >/dev/null
		cat "$work/t"; \$bin --root $work/s-\$r delete --force rss\$i
	done | sort -n | awk -v r=\$r '{a[NR]=\$1} END {print r, a[int((NR+1)/2)]}'
done | tee "$work/rss.txt"
INNER
unshare -m --propagation private bash "$work/inner.sh"

echo "### ratios (berth = 1.00; > 1 means slower or bigger than berth)"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
for name in ("lifecycle", "run"):
    res = {r["command"]: r["mean"] for r in json.load(open(f"{work}/{name}.json"))["results"]}
    b = res["berth"]
    print(f"{name:10} " + "  ".join(f"{k} {v*1000:6.1f} ms ({v/b:4.2f}x)" for k, v in res.items()))
rss = dict(l.split() for l in open(f"{work}/rss.txt"))
b = int(rss["berth"])
print("peak RSS   " + "  ".join(f"{k} {int(v)/1024:5.1f} MiB ({int(v)/b:4.2f}x)" for k, v in rss.items()))
PY

if [ -x "$here/shim.sh" ]; then
	"$here/shim.sh"
fi
