#!/usr/bin/env bash
# Build the workspace image without any container registry:
#   debootstrap (Debian sid, minbase) -> docker import (base image) -> docker build images/workspace.
# Steps whose result already exists and is current are skipped.
#
# Usage: scripts/build-image.sh [--force] [--slim]
#   --force   rebuild the base image and the workspace image even when they are current
#   --slim    leave out Node.js and the Claude Code CLI (same as WORKSPACE_IMAGE_SLIM=1)
# Environment:
#   WORKSPACE_IMAGE       tag to build (default jupyter-popebot-code-workspace:latest)
#   WORKSPACE_BASE_IMAGE  base image tag (default jupyter-popebot-code-base:sid)
#   WORKSPACE_IMAGE_SLIM  1 = slim image
#   DEBIAN_MIRROR         Debian mirror for debootstrap (default: the host's apt source, else deb.debian.org)
#   WORKSPACE_BUILD_CA_FILE  CA bundle trusted while fetching from npm (default /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONTEXT_DIR="$(cd "$SCRIPT_DIR/../images/workspace" && pwd)"
readonly SCRIPT_DIR CONTEXT_DIR
readonly IMAGE="${WORKSPACE_IMAGE:-jupyter-popebot-code-workspace:latest}"
readonly BASE_IMAGE="${WORKSPACE_BASE_IMAGE:-jupyter-popebot-code-base:sid}"
readonly SUITE="sid" # ttyd 1.7.7 is in sid; bookworm has no ttyd 1.7.x
readonly BASE_PACKAGES="ttyd,bash,git,ca-certificates,procps,tmux,openssh-client,less,curl,nano"
# Bump when the way the base root file system is prepared changes, so old base images are rebuilt.
readonly BASE_RECIPE_VERSION="1"
readonly LABEL_PREFIX="org.jupyter.popebot-code"

LOG_TAG=build-image
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
	sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

force=0
slim="${WORKSPACE_IMAGE_SLIM:-0}"
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1 ;;
	--slim) slim=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
case "$slim" in
1 | true | yes) slim=1 ;;
*) slim=0 ;;
esac

command -v docker >/dev/null 2>&1 || die "docker CLI not found; run scripts/ensure-docker.sh first"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed); run scripts/ensure-docker.sh first"

# One build at a time on this machine; a second caller waits and then finds the image current.
lock_dir="${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-popebot-code"
if command -v flock >/dev/null 2>&1 && mkdir -p "$lock_dir"; then
	exec 9>"$lock_dir/build-image.lock"
	if ! flock -n 9; then
		log "another build is running; waiting for it to finish ..."
		flock 9
	fi
fi

sha256() { sha256sum | cut -d' ' -f1; }

# The label value of an image, or empty when the image or the label does not exist.
image_label() {
	docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# First Debian (not security) mirror URI from the host's apt sources, else deb.debian.org.
debian_mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		printf '%s\n' "$DEBIAN_MIRROR"
		return
	fi
	local uri
	uri="$(
		{
			cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }'
			cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
				awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }'
		} | grep -E '^https?://' | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 || true
	)"
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

workdir=""
cleanup() {
	[ -n "$workdir" ] && [ -d "$workdir" ] || return 0
	# debootstrap mounts proc/sys inside the target; a failed run can leave them mounted.
	local mnt
	awk -v dir="$workdir" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
		umount -l "$mnt" || true
	done
	rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_base() {
	local base_key="$1" mirror rootfs start
	command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found; run scripts/ensure-docker.sh (it installs it) or apt-get install debootstrap"
	[ "$(id -u)" = 0 ] || die "debootstrap needs root; run this script as root"
	mirror="$(debian_mirror)"
	workdir="$(mktemp -d "${TMPDIR:-/tmp}/popebot-base.XXXXXX")"
	rootfs="$workdir/rootfs"
	log "debootstrap $SUITE (minbase, +$BASE_PACKAGES) from $mirror ..."
	start=$SECONDS
	if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1; then
		tail -n 30 "$workdir/debootstrap.log" >&2 || true
		[ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
		die "debootstrap failed (mirror $mirror; set DEBIAN_MIRROR to use another one)"
	fi
	log "debootstrap took $((SECONDS - start)) s"

	# Keep the image small: no docs/man pages/translations now or for packages installed later,
	# no recommends, no apt caches; and never start services during image builds.
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-popebot-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
	cat >"$rootfs/etc/apt/apt.conf.d/01-popebot" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Check-Valid-Until "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
	printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
	chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
	find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
		"$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
		"$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/debootstrap
	: >"$rootfs/etc/resolv.conf"
	: >"$rootfs/etc/hostname"

	log "importing the root file system as $BASE_IMAGE ..."
	start=$SECONDS
	tar --numeric-owner --xattrs -C "$rootfs" -c . |
		docker import \
			--change "LABEL $LABEL_PREFIX.base-key=$base_key" \
			--change "LABEL $LABEL_PREFIX.base-suite=$SUITE" \
			--change 'ENV LANG=C.UTF-8' \
			--change 'CMD ["/bin/bash"]' \
			- "$BASE_IMAGE" >/dev/null || die "docker import failed"
	log "import took $((SECONDS - start)) s"
	cleanup
	workdir=""
}

# --- base image ---------------------------------------------------------------------------------
base_key="$(printf '%s\n' "$SUITE" "$BASE_PACKAGES" "$BASE_RECIPE_VERSION" | sha256)"
if [ "$force" = 1 ] || [ "$(image_label "$BASE_IMAGE" "$LABEL_PREFIX.base-key")" != "$base_key" ]; then
	build_base "$base_key"
else
	log "base image $BASE_IMAGE is current; reusing it"
fi
base_id="$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")" || die "base image $BASE_IMAGE is missing after the build"

# --- workspace image ----------------------------------------------------------------------------
# The key covers every file of the build context (names, modes and contents), the build flags and
# the exact base image, so any change to one of them triggers a rebuild.
image_key="$(
	{
		(cd "$CONTEXT_DIR" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		(cd "$CONTEXT_DIR" && find . -type f -perm -u+x -print | LC_ALL=C sort)
		printf 'slim=%s\nbase=%s\n' "$slim" "$base_id"
	} | sha256
)"
if [ "$force" = 0 ] && [ "$(image_label "$IMAGE" "$LABEL_PREFIX.image-key")" = "$image_key" ]; then
	log "image $IMAGE is current (slim=$slim); nothing to do (use --force to rebuild)"
	exit 0
fi

install_claude=1
[ "$slim" = 1 ] && install_claude=0
# Build from a copy of the context plus the host's CA bundle, which the npm stage trusts (needed
# behind TLS-inspecting proxies); it is not part of the key and never reaches the final image.
workdir="$(mktemp -d "${TMPDIR:-/tmp}/popebot-image.XXXXXX")"
build_context="$workdir/context"
mkdir -p "$build_context"
cp -a "$CONTEXT_DIR/." "$build_context/"
ca_bundle="${WORKSPACE_BUILD_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -r "$ca_bundle" ]; then
	cp "$ca_bundle" "$build_context/build-ca-certificates.crt"
else
	: >"$build_context/build-ca-certificates.crt"
fi
previous_id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
log "building $IMAGE (slim=$slim) from $CONTEXT_DIR ..."
start=$SECONDS
# docker.io 20.10 on Debian ships no buildx plugin, so use the classic builder everywhere: it sees
# the locally imported base image and needs no registry.
DOCKER_BUILDKIT=0 docker build \
	--build-arg "BASE_IMAGE=$BASE_IMAGE" \
	--build-arg "INSTALL_CLAUDE_CODE=$install_claude" \
	--label "$LABEL_PREFIX.image-key=$image_key" \
	--label "$LABEL_PREFIX.image-slim=$slim" \
	--tag "$IMAGE" \
	"$build_context" >&2 || die "docker build of $IMAGE failed (see the output above)"
log "docker build took $((SECONDS - start)) s"
docker image inspect --format "$IMAGE: {{.Size}} bytes" "$IMAGE" >&2
# The image this build replaced is now untagged: remove it, unless a workspace container still
# uses it (Docker refuses then, and it goes once those containers are recreated).
if [ -n "$previous_id" ] && [ "$previous_id" != "$(docker image inspect --format '{{.Id}}' "$IMAGE")" ] &&
	[ "$(docker image inspect --format '{{len .RepoTags}}' "$previous_id" 2>/dev/null)" = 0 ]; then
	if docker image rm "$previous_id" >/dev/null 2>&1; then
		log "removed the previous image ${previous_id:7:12}"
	fi
fi
