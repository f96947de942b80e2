#!/usr/bin/env bash
# Run the whole test suite against real parts: set everything up (Docker engine, workspace image,
# package, JupyterLab extension, Chromium), then lint, the Python tests, the front-end lint and unit
# tests and the browser tests. Arguments are passed to pytest (e.g. -k ensure).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"

bash scripts/setup.sh
if ! command -v chromium >/dev/null; then
	[ "$(id -u)" = 0 ] || { echo "[test] chromium is missing: apt-get install chromium" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi

echo "[test] ruff"
ruff check .
ruff format --check .
echo "[test] mypy --strict"
mypy

echo "[test] Python tests (real Docker engine, real workspace image)"
python -m pytest "$@"

echo "[test] front-end lint (prettier, eslint, stylelint, tsc, generated OpenAPI types) and unit tests (jest)"
(cd labextension && jlpm lint:check && jlpm test)

echo "[test] browser tests (Playwright + Debian chromium)"
bash labextension/ui-tests/run.sh
