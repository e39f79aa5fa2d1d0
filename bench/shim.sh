#!/bin/bash
# `make bench`, shim part: containerd-shim-berth-v2 against containerd-shim-runc-v2 of each containerd
# found (Debian's, and $CONTAINERD_BIN_DIR's), side by side, as ratios: the shim's RSS and private memory
# with one container and with a pod of 10, and `ctr run --rm` end to end.
# See integration/src/bin/shim-bench.rs.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$top/target}"
export BERTH="${BERTH:-$target/release/berth}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
# The static release shim (make build).
export INTEG_BERTH_SHIM="${INTEG_BERTH_SHIM:-$target/$triple/release/containerd-shim-berth-v2}"
cd "$top"
cargo build --release -q -p integration --bin shim-bench
exec "$target/release/shim-bench"
