# Helpers shared by the project's scripts; source it after setting LOG_TAG:
#   LOG_TAG=setup; . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck shell=bash

log() { printf '[%s] %s\n' "${LOG_TAG:-script}" "$*" >&2; }

die() {
	printf '[%s] ERROR: %s\n' "${LOG_TAG:-script}" "$*" >&2
	exit 1
}

is_root() { [ "$(id -u)" = 0 ]; }

# Install Debian packages, refreshing apt's lists once per script run.
_apt_updated=0
apt_install() {
	is_root || die "installing $* needs root (run this script as root, or install them yourself)"
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* with your system's package manager"
	if [ "$_apt_updated" = 0 ]; then
		log "apt-get update ..."
		DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
		_apt_updated=1
	fi
	log "apt-get install $* ..."
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
		die "apt-get install $* failed"
}
