#!/usr/bin/env bash
# Browser tests of the JupyterLab extension: Playwright driving Debian's Chromium against a real
# Jupyter server (started by global-setup.ts), the real Docker engine and the real workspace image.
# Fails (never skips) when any of those is missing. Arguments go to `playwright test`.
#
# Environment:
#   VENV           Python environment with the package installed (default: <repo>/.venv)
#   CHROMIUM_PATH  the browser (default: /usr/bin/chromium)
#   WORKSPACE_IMAGE  image the server uses (default: jupyter-popebot-code-workspace:latest)
#   POPEBOT_TEST_NETWORK  the browser tests' containers use the internal network "<this>-ui"
# Screenshots and failure traces go to <repo>/test-artifacts/ui/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ext="$(cd "$here/.." && pwd)"
root="$(cd "$ext/.." && pwd)"
venv="${VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
export JUPYTER="${JUPYTER:-$venv/bin/jupyter}"
image="${WORKSPACE_IMAGE:-jupyter-popebot-code-workspace:latest}"

LOG_TAG=ui-tests
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

[ -x "$CHROMIUM_PATH" ] || die "no browser at $CHROMIUM_PATH (apt-get install chromium)"
[ -x "$JUPYTER" ] || die "no jupyter at $JUPYTER (run scripts/setup.sh)"
command -v docker >/dev/null || die "docker CLI not found (run scripts/ensure-docker.sh)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (run scripts/ensure-docker.sh)"
docker image inspect "$image" >/dev/null 2>&1 || die "image $image is missing (run scripts/build-image.sh)"

# The server's workspace containers go on an internal network of their own: no route out of this
# machine (tests reach nothing else). Named after POPEBOT_TEST_NETWORK, so checkouts do not meet.
network="${POPEBOT_TEST_NETWORK:-popebot-code-test}-ui"
if [ "$(docker network inspect -f '{{.Internal}}' "$network" 2>/dev/null)" != true ]; then
	docker network rm "$network" >/dev/null 2>&1 || true
	docker network create --internal --label org.jupyter.popebot-code.managed-by=tests "$network" >/dev/null ||
		die "cannot create the internal network $network (is a routed one with containers in the way?)"
fi
export POPEBOT_UI_NETWORK="$network"

cd "$ext"
if [ ! -x node_modules/.bin/playwright ]; then
	echo "[ui-tests] installing node dependencies" >&2
	jlpm install
fi
built="$root/jupyter_popebot_code/labextension/package.json"
if [ ! -f "$built" ] || [ -n "$(find src style schema package.json -newer "$built" -print -quit)" ]; then
	echo "[ui-tests] building the extension" >&2
	jlpm build:prod
fi
# The browser must load this build: JupyterLab must list the extension as enabled and OK.
listing="$("$JUPYTER" labextension list 2>&1)"
if ! grep -E "jupyter-popebot-code v[^ ]+ .*enabled.*OK" <<<"$listing" >/dev/null; then
	printf '%s\n' "$listing" >&2
	die "JupyterLab does not list jupyter-popebot-code as enabled and OK (run scripts/setup.sh)"
fi

mkdir -p "$root/test-artifacts/ui"
exec node_modules/.bin/playwright test --config ui-tests/playwright.config.ts "$@"
