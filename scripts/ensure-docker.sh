#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info` and that debootstrap (used by build-image.sh) is
# installed. Idempotent. On a fresh Debian machine (as root, no services running, as in CI) it
# installs Debian's docker.io and starts dockerd in the background.
#
# Environment:
#   DOCKERD_LOG             dockerd's log file (default ${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-popebot-code/dockerd.log)
#   DOCKER_START_TIMEOUT    seconds to wait for the engine to answer (default 60)
set -euo pipefail

readonly START_TIMEOUT="${DOCKER_START_TIMEOUT:-60}"
readonly LOG_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-popebot-code"
readonly DOCKERD_LOG="${DOCKERD_LOG:-$LOG_DIR/dockerd.log}"

LOG_TAG=ensure-docker
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

engine_up() { docker info >/dev/null 2>&1; }

# Is a dockerd process running? (/proc instead of pgrep: procps may be missing on a fresh system.)
dockerd_running() {
	local comm
	for comm in /proc/[0-9]*/comm; do
		[ "$(cat "$comm" 2>/dev/null)" = dockerd ] && return 0
	done
	return 1
}

# Wait until `docker info` answers; fail early if the dockerd we started has died.
wait_for_engine() {
	local pid="${1:-}" waited=0
	while ! engine_up; do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$DOCKERD_LOG" >&2 || true
			die "dockerd exited during start-up (log above; full log: $DOCKERD_LOG)"
		fi
		if [ "$waited" -ge "$START_TIMEOUT" ]; then
			tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
			die "the Docker engine did not answer within ${START_TIMEOUT} s (dockerd log: $DOCKERD_LOG)"
		fi
		sleep 1
		waited=$((waited + 1))
	done
}

# --- debootstrap (build-image.sh needs it) ------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
	apt_install debootstrap
fi

# --- Docker engine ------------------------------------------------------------------------------
if engine_up; then
	log "Docker engine is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	apt_install docker.io
fi
# Debian 12's docker.io carries the CLI; newer Debian releases ship it as docker-cli.
if ! command -v docker >/dev/null 2>&1; then
	apt_install docker-cli
fi

if dockerd_running; then
	# Started already (maybe still starting, or we lack access to its socket): do not start a second one.
	log "dockerd is already running; waiting up to ${START_TIMEOUT} s for it to answer ..."
	if ! (wait_for_engine ""); then
		is_root || die "dockerd runs but 'docker info' fails: is your user allowed to use the Docker socket (group 'docker')?"
		die "dockerd runs but does not answer 'docker info'; check its log or restart it"
	fi
	log "Docker engine is running"
	exit 0
fi

is_root || die "the Docker engine is not running and starting dockerd needs root"

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	log "starting docker.service with systemctl ..."
	systemctl start docker.service || die "systemctl start docker.service failed (see: journalctl -u docker.service)"
	wait_for_engine ""
	log "Docker engine is running"
	exit 0
fi

# No init system to ask (e.g. a CI container): run dockerd in the background ourselves.
mkdir -p "$(dirname "$DOCKERD_LOG")"
log "starting dockerd in the background (log: $DOCKERD_LOG) ..."
nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
dockerd_pid=$!
wait_for_engine "$dockerd_pid"
log "Docker engine is running (dockerd pid $dockerd_pid, $(docker version --format '{{.Server.Version}}'))"
