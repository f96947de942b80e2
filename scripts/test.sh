#!/usr/bin/env bash
# Run the whole test suite against real parts: set everything up (Docker engine, workspace image,
# package, JupyterLab extension, Chromium), then lint and types, the docs, the Python tests, the
# front-end lint and unit tests, and the browser tests. Arguments are passed to pytest (e.g. -k
# ensure). CI runs this.
#
# scripts/test.sh --fast [pytest args]: the fast tier only (docs/testing.md): ruff, the docs, the
# Python tests not marked `docker` (no engine: containers are in memory) and jest. It neither
# installs nor starts Docker, builds no image and installs no browser.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
LOG_TAG=test
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
export PATH="$venv/bin:$PATH"

fast=0
if [ "${1:-}" = "--fast" ]; then
	fast=1
	shift
fi

if [ "$fast" = 1 ]; then
	POPEBOT_SETUP_ENGINE=0 bash scripts/setup.sh
	# A socket that does not exist: any Docker use in the fast tier fails instead of working.
	export DOCKER_HOST="unix:///nonexistent/popebot-fast-tier.sock"
else
	bash scripts/setup.sh
	command -v chromium >/dev/null || apt_install chromium
fi

echo "[test] ruff"
ruff check .
ruff format --check .
echo "[test] mypy --strict"
mypy
echo "[test] docs: sphinx-build, warnings as errors (generated option and REST references)"
rm -rf docs/_build
sphinx-build -q -W --keep-going -n -b html docs docs/_build/html

if [ "$fast" = 1 ]; then
	echo "[test] Python tests, fast tier (-m 'not docker': no Docker engine, no image)"
	python -m pytest -m "not docker" "$@"
else
	echo "[test] Python tests (real Docker engine, real workspace image)"
	python -m pytest "$@"
fi

echo "[test] front-end lint (prettier, eslint, stylelint, tsc, generated OpenAPI types) and unit tests (jest)"
(cd labextension && jlpm lint:check && jlpm test)

if [ "$fast" = 0 ]; then
	echo "[test] browser tests (Playwright + Debian chromium)"
	bash labextension/ui-tests/run.sh
fi
