#!/bin/bash
# Build a reproducible busybox image tarball that `ctr images import`, `podman load` and `docker load`
# all accept, with no registry.
#
# Usage: build-image.sh [--entrypoint] OUT.tar NAME:TAG [CMD...]
#   CMD defaults to `sh`. With --entrypoint the command becomes the image's Entrypoint (and Cmd is empty),
#   e.g. the CRI pause image:  build-image.sh --entrypoint pause.tar localhost/pause:latest /bin/sleep infinity
#
# The tarball holds both
#   - an OCI image layout: oci-layout, index.json, blobs/sha256/{layer,config,manifest}; the index entry carries
#     io.containerd.image.name and org.opencontainers.image.ref.name = NAME:TAG so ctr names the image, and
#   - a `docker save` style manifest.json with RepoTags (Docker 20.10's load reads only that).
# Everything is sorted, owned by 0:0 and dated 1970-01-01, and gzip runs with -n: the same busybox gives the
# same bytes (and so the same image id) on every run.
set -euo pipefail

usage() { echo "usage: $0 [--entrypoint] OUT.tar NAME:TAG [CMD...]" >&2; exit 2; }

as_entrypoint=false
if [ "${1:-}" = "--entrypoint" ]; then as_entrypoint=true; shift; fi
[ $# -ge 2 ] || usage
out="$1"; name="$2"; shift 2
[[ "$name" == *:* ]] || { echo "$0: NAME:TAG needs a tag: $name" >&2; exit 2; }
if [ $# -eq 0 ]; then set -- sh; fi
for tool in jq tar gzip sha256sum; do
	command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=rootfs.sh
. "$here/rootfs.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/build-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
umask 022

case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	armv7l) arch=arm ;;
	ppc64le) arch=ppc64le ;;
	s390x) arch=s390x ;;
	riscv64) arch=riscv64 ;;
	*) echo "$0: unknown machine $(uname -m)" >&2; exit 1 ;;
esac

# Deterministic tar of a directory's contents (names relative, sorted, no owners, no times).
det_tar() { # DIR OUT
	local entries
	mapfile -t entries < <(cd "$1" && LC_ALL=C ls -A | LC_ALL=C sort)
	LC_ALL=C tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$1" -cf "$2" -- "${entries[@]}"
}

blob() { # FILE MEDIA: move FILE into the layout, print digest and size
	local digest size
	digest="$(sha256sum "$1" | cut -d' ' -f1)"
	size="$(stat -c %s "$1")"
	mv "$1" "$work/layout/blobs/sha256/$digest"
	echo "$digest $size"
}

make_rootfs "$work/rootfs"
mkdir -p "$work/layout/blobs/sha256"

det_tar "$work/rootfs" "$work/layer.tar"
diff_id="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
gzip -n -9 "$work/layer.tar"
read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")

cmd_json='[]'
for arg in "$@"; do cmd_json="$(jq -c --arg a "$arg" '. + [$a]' <<<"$cmd_json")"; done
if $as_entrypoint; then
	proc='{"Entrypoint": $cmd}'
else
	proc='{"Cmd": $cmd}'
fi
jq -cS -n --arg arch "$arch" --arg diff "sha256:$diff_id" --argjson cmd "$cmd_json" '
	{
		architecture: $arch,
		os: "linux",
		created: "1970-01-01T00:00:00Z",
		config: ({
			Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
			WorkingDir: "/"
		} + '"$proc"'),
		rootfs: {type: "layers", diff_ids: [$diff]},
		history: [{created: "1970-01-01T00:00:00Z", created_by: "berth integration/images/build-image.sh"}]
	}' | tr -d '\n' >"$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")

jq -cS -n --arg cd "sha256:$config_digest" --argjson cs "$config_size" \
	--arg ld "sha256:$layer_digest" --argjson ls "$layer_size" '
	{
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
		layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls}]
	}' | tr -d '\n' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
jq -cS -n --arg md "sha256:$manifest_digest" --argjson ms "$manifest_size" --arg name "$name" --arg arch "$arch" '
	{
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{
			mediaType: "application/vnd.oci.image.manifest.v1+json",
			digest: $md, size: $ms,
			platform: {architecture: $arch, os: "linux"},
			annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": $name}
		}]
	}' | tr -d '\n' >"$work/layout/index.json"
jq -cS -n --arg cfg "blobs/sha256/$config_digest" --arg layer "blobs/sha256/$layer_digest" --arg name "$name" '
	[{Config: $cfg, RepoTags: [$name], Layers: [$layer]}]' | tr -d '\n' >"$work/layout/manifest.json"

mkdir -p "$(dirname "$out")"
det_tar "$work/layout" "$work/image.tar"
mv "$work/image.tar" "$out"
echo "$out: $name sha256:$config_digest (manifest sha256:$manifest_digest)"
