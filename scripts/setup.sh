#!/usr/bin/env bash
# Everything the product and the tests need, from a fresh Debian machine: system packages, a
# running Docker engine, a Python environment with the package (and its JupyterLab extension)
# installed, and the workspace image. Idempotent: each step is skipped when already done.
#
# Environment:
#   VENV            the Python environment to use or create (default: .venv in the repository)
#   PYTHON          the interpreter that creates it (default: python3)
#   POPEBOT_EXTRAS  pip extras to install (default: lab,test,docs)
#   POPEBOT_SETUP_ENGINE  1 (default): also the Docker engine and the workspace image; 0: neither
#                   (the fast test tier, `scripts/test.sh --fast`, needs no engine)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
python="${PYTHON:-python3}"
extras="${POPEBOT_EXTRAS:-lab,test,docs}"
engine="${POPEBOT_SETUP_ENGINE:-1}"

LOG_TAG=setup
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
case "$engine" in 0 | 1) ;; *) die "POPEBOT_SETUP_ENGINE must be 0 or 1" ;; esac

# --- system packages -------------------------------------------------------------------------
command -v git >/dev/null || apt_install git ca-certificates
"$python" -m venv --help >/dev/null 2>&1 || apt_install python3-venv python3-pip
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 18 ]; then
	apt_install nodejs npm
fi

# --- Docker engine (and debootstrap for the image) -------------------------------------------
if [ "$engine" = 1 ]; then
	bash "$root/scripts/ensure-docker.sh"
else
	log "POPEBOT_SETUP_ENGINE=0: no Docker engine, no workspace image"
fi

# --- Python environment ----------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
	log "creating $venv"
	"$python" -m venv "$venv"
	"$venv/bin/pip" install -q --upgrade pip
fi
stamp="$venv/.popebot-installed"
inputs_hash="$(cat pyproject.toml labextension/package.json labextension/yarn.lock 2>/dev/null | sha256sum | cut -c1-16)-$extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs_hash" ]; then
	log "installing jupyter-popebot-code[$extras] (builds the JupyterLab extension)"
	"$venv/bin/pip" install -q -e ".[$extras]"
	echo "$inputs_hash" >"$stamp"
fi

# --- JupyterLab extension: rebuild when its sources are newer than the build -----------------
built="$root/jupyter_popebot_code/labextension/package.json"
if [ ! -f "$built" ] || [ -n "$(find labextension/src labextension/style labextension/schema labextension/package.json -newer "$built" -print -quit)" ]; then
	log "building the JupyterLab extension"
	(cd labextension && PATH="$venv/bin:$PATH" jlpm install && PATH="$venv/bin:$PATH" jlpm build:prod)
fi
PATH="$venv/bin:$PATH" jupyter labextension develop --overwrite . >/dev/null

# --- Node packages of the tests (real @auth/core mints the Auth.js tokens) --------------------
# Installed here, from the lock file, so the tests themselves never need the npm registry.
if [ ! -d tests/authjs/node_modules/@auth/core ]; then
	log "installing tests/authjs (npm ci)"
	(cd tests/authjs && npm ci --no-audit --no-fund)
fi

# --- workspace image -------------------------------------------------------------------------
if [ "$engine" = 1 ]; then
	bash "$root/scripts/build-image.sh"
fi
log "ready"
