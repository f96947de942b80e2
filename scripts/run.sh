#!/usr/bin/env bash
# Run the product: set everything up, then JupyterLab with code workspaces.
# Extra arguments go to `jupyter lab` (e.g. --port=9999 --ip=0.0.0.0).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
args=(--no-browser)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec "${VENV:-$root/.venv}/bin/jupyter" lab "${args[@]}" "$@"
