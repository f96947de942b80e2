#!/usr/bin/env bash
# Build the server image (images/server): this package's wheel, which carries the prebuilt
# JupyterLab extension, on Debian's JupyterLab, on the base image scripts/build-image.sh makes.
# No public registry, no Node.js in the image.
#
# Usage: scripts/build-server-image.sh [WHEEL]
#   WHEEL  the project's wheel to install (default: built now with `pip wheel`, which needs
#          Node.js for the extension, as a source install does)
# Environment:
#   SERVER_IMAGE          tag to build (default jupyter-popebot-code-server:latest)
#   WORKSPACE_BASE_IMAGE  base image (default jupyter-popebot-code-base:sid; scripts/build-image.sh
#                         makes it when missing)
#   PYTHON                the Python that runs `pip wheel` (default python3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=build-server-image
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

readonly IMAGE="${SERVER_IMAGE:-jupyter-popebot-code-server:latest}"
readonly BASE_IMAGE="${WORKSPACE_BASE_IMAGE:-jupyter-popebot-code-base:sid}"

command -v docker >/dev/null || die "no docker CLI: run scripts/ensure-docker.sh"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || bash "$root/scripts/build-image.sh"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp -a "$root/images/server/." "$context/"
mkdir -p "$context/wheels"
if [ $# -ge 1 ]; then
	[ -f "$1" ] || die "no wheel at $1"
	cp "$1" "$context/wheels/"
else
	log "building the project's wheel (pip wheel --no-deps) ..."
	"${PYTHON:-python3}" -m pip wheel -q --no-deps -w "$context/wheels" "$root"
fi
log "building $IMAGE on $BASE_IMAGE ..."
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$context" >/dev/null
log "built $IMAGE"
