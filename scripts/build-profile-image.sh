#!/usr/bin/env bash
# Build an extra workspace image for a workspace profile (CodeWorkspacesApp.profiles) from a
# Dockerfile the operator writes, on this project's workspace image, with no container registry.
# The Dockerfile starts with `ARG WORKSPACE_IMAGE` and `FROM ${WORKSPACE_IMAGE}` (the image
# scripts/build-image.sh makes, built first when missing); `ARG BASE_IMAGE` names the base image
# under it. The build is skipped when the result is current (same context, same workspace image).
#
# Usage: scripts/build-profile-image.sh [--force] TAG CONTEXT_DIR
#   TAG          the image to build, e.g. jupyter-popebot-code-python:latest
#   CONTEXT_DIR  the folder holding the Dockerfile (and what it copies)
#   --force      build even when the image is current
# Environment:
#   WORKSPACE_IMAGE       the image to build on (default jupyter-popebot-code-workspace:latest)
#   WORKSPACE_BASE_IMAGE  passed as BASE_IMAGE (default jupyter-popebot-code-base:sid)
#   PROFILE_BUILD_NETWORK the build containers' network, e.g. none (default: Docker's default)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly WORKSPACE="${WORKSPACE_IMAGE:-jupyter-popebot-code-workspace:latest}"
readonly BASE_IMAGE="${WORKSPACE_BASE_IMAGE:-jupyter-popebot-code-base:sid}"
readonly LABEL_PREFIX="org.jupyter.popebot-code"

LOG_TAG=build-profile-image
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

force=0
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	-*) die "unknown option: $1 (see --help)" ;;
	*) args+=("$1") ;;
	esac
	shift
done
[ "${#args[@]}" = 2 ] || die "expected TAG and CONTEXT_DIR (see --help)"
readonly TAG="${args[0]}"
[ -d "${args[1]}" ] || die "no such folder: ${args[1]}"
CONTEXT_DIR="$(cd "${args[1]}" && pwd)"
readonly CONTEXT_DIR
[ -f "$CONTEXT_DIR/Dockerfile" ] || die "no Dockerfile in $CONTEXT_DIR"
[ "$TAG" != "$WORKSPACE" ] || die "TAG must differ from the workspace image it builds on ($WORKSPACE)"

command -v docker >/dev/null 2>&1 || die "docker CLI not found; run scripts/ensure-docker.sh first"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed)"

if ! docker image inspect "$WORKSPACE" >/dev/null 2>&1; then
	log "$WORKSPACE is missing: building it first"
	WORKSPACE_IMAGE="$WORKSPACE" bash "$SCRIPT_DIR/build-image.sh"
fi
workspace_id="$(docker image inspect --format '{{.Id}}' "$WORKSPACE")"

# The key covers the context's files (names, modes, contents) and the exact image built on.
image_key="$(
	{
		(cd "$CONTEXT_DIR" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		(cd "$CONTEXT_DIR" && find . -type f -perm -u+x -print | LC_ALL=C sort)
		printf 'workspace=%s\nbase=%s\n' "$workspace_id" "$BASE_IMAGE"
	} | sha256sum | cut -d' ' -f1
)"
current="$(docker image inspect --format "{{ index .Config.Labels \"$LABEL_PREFIX.profile-image-key\" }}" "$TAG" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ "$current" = "$image_key" ]; then
	log "image $TAG is current; nothing to do (use --force to rebuild)"
	exit 0
fi

network=()
[ -n "${PROFILE_BUILD_NETWORK:-}" ] && network=(--network "$PROFILE_BUILD_NETWORK")
log "building $TAG on $WORKSPACE from $CONTEXT_DIR ..."
start=$SECONDS
# The classic builder sees locally built images and needs no registry (see build-image.sh).
DOCKER_BUILDKIT=0 docker build "${network[@]}" \
	--build-arg "WORKSPACE_IMAGE=$WORKSPACE" \
	--build-arg "BASE_IMAGE=$BASE_IMAGE" \
	--label "$LABEL_PREFIX.profile-image-key=$image_key" \
	--label "$LABEL_PREFIX.profile-image-of=$WORKSPACE" \
	--tag "$TAG" \
	"$CONTEXT_DIR" >&2 || die "docker build of $TAG failed (see the output above)"
log "docker build took $((SECONDS - start)) s"
docker image inspect --format "$TAG: {{.Size}} bytes" "$TAG" >&2
