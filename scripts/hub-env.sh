#!/usr/bin/env bash
# A JupyterHub environment for the hub tests (and for trying the hub service by hand): a virtual
# environment that every unix user can run, with JupyterHub, JupyterLab, jupyterhub-idle-culler,
# this package's server code, and configurable-http-proxy from npm.
#
# Why not .venv: LocalProcessSpawner runs single-user servers as other unix users, who cannot read
# a Python under /root (pyenv) nor, often, the repository. So the environment is built on Debian's
# /usr/bin/python3 in a world-readable folder, and the package's Python files are copied into it on
# every run (cheap, and the copy is always the checkout's current code).
#
# Idempotent: the pip and npm installs are skipped when their inputs did not change.
#
# Environment:
#   POPEBOT_HUB_ENV  the folder to create or update (default: /opt/jupyter-popebot-code-hub)
#   HUB_PYTHON       the interpreter that creates it (default: /usr/bin/python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_dir="${POPEBOT_HUB_ENV:-/opt/jupyter-popebot-code-hub}"
python="${HUB_PYTHON:-/usr/bin/python3}"
venv="$env_dir/venv"
# Versions the hub tests were written against; the package itself needs no pin.
requirements=(
	"jupyterhub==6.1.1"
	"jupyterhub-idle-culler"
	"jupyterlab>=4,<5"
	"jupyter_server>=2.10,<3"
	"docker>=7.1"
	"jwcrypto>=1.5"
	"requests"
)
proxy_version="5.3.0"

log() { printf '[hub-env] %s\n' "$*" >&2; }

if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
	log "installing python3-venv"
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
fi
mkdir -p "$env_dir"
chmod 755 "$env_dir"
if [ ! -x "$venv/bin/python" ]; then
	log "creating $venv on $python"
	"$python" -m venv "$venv"
fi

stamp="$venv/.popebot-hub-requirements"
wanted="$(printf '%s\n' "${requirements[@]}" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
	log "installing ${requirements[*]}"
	# pip's output goes to a log (it warns about every local index it skips); shown on failure.
	if ! { "$venv/bin/pip" install -q --upgrade pip && "$venv/bin/pip" install -q "${requirements[@]}"; } >"$env_dir/pip.log" 2>&1; then
		cat "$env_dir/pip.log" >&2
		exit 1
	fi
	echo "$wanted" >"$stamp"
fi

# The package: its Python files and the config that enables the server extension.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
target="$site/jupyter_popebot_code"
rm -rf "$target.new"
mkdir -p "$target.new"
# Every subpackage's Python files; the built extension goes where the wheel puts it (below).
tar -C "$root/jupyter_popebot_code" --exclude=./labextension --exclude=__pycache__ -cf - . |
	tar -C "$target.new" -xf -
rm -rf "$target"
mv "$target.new" "$target"
# The prebuilt JupyterLab extension, where the wheel puts it, so users' JupyterLab has the UI.
built="$root/jupyter_popebot_code/labextension"
if [ -f "$built/package.json" ]; then
	extension="$venv/share/jupyter/labextensions/jupyter-popebot-code"
	rm -rf "$extension"
	mkdir -p "$extension"
	cp -R "$built/." "$extension/"
	cp "$root/labextension/install.json" "$extension/"
fi
mkdir -p "$venv/etc/jupyter/jupyter_server_config.d"
cp "$root/jupyter-config/jupyter_server_config.d/jupyter_popebot_code.json" \
	"$venv/etc/jupyter/jupyter_server_config.d/"

proxy="$env_dir/proxy"
if [ ! -x "$proxy/node_modules/.bin/configurable-http-proxy" ]; then
	log "installing configurable-http-proxy $proxy_version"
	mkdir -p "$proxy"
	npm install --silent --no-audit --no-fund --prefix "$proxy" "configurable-http-proxy@$proxy_version"
fi

chmod -R a+rX "$env_dir"
echo "$env_dir"
