#!/bin/bash
# Start the registry (loopback only) and nginx in front of it; stop both when either stops.
set -euo pipefail
given=/etc/docker/registry/htpasswd
# nginx's copy, readable by its workers only (the given file may be a read-only mount).
htpasswd_file=/run/registry.htpasswd
install -m 0640 -o root -g www-data /dev/null "$htpasswd_file"
if [ -n "${REGISTRY_HTPASSWD:-}" ]; then
	printf '%s\n' "$REGISTRY_HTPASSWD" >"$htpasswd_file"
elif [ -f "$given" ]; then
	cat "$given" >"$htpasswd_file"
fi
# Fail closed: without a user nginx would have nobody to allow and nothing to check against.
if ! grep -q ':' "$htpasswd_file"; then
	echo "registry: no push credentials: set REGISTRY_HTPASSWD (htpasswd -nB USER) or mount $given" >&2
	exit 1
fi
/usr/bin/docker-registry serve /etc/docker/registry/config.yml &
nginx -g 'daemon off;' &
trap 'kill -TERM $(jobs -p) 2>/dev/null || true' TERM INT
wait -n
status=$?
kill -TERM $(jobs -p) 2>/dev/null || true
wait || true
exit "$status"
