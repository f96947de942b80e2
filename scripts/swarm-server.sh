#!/usr/bin/env bash
# Run the Jupyter server of a swarm on a manager node, as a container (images/server) with the
# manager's Docker socket, its port published, its store on a named volume. `up` again upgrades:
# the new image replaces the container, the store volume (records, token) stays.
#
# Usage: scripts/swarm-server.sh up [-- JUPYTER-OPTIONS...] | down | token | url | logs
#   up     pull SERVER_IMAGE, make the front network and the store volume when missing, replace
#          the server container, wait until it is healthy, print its URL
#   down   remove the server container (the store volume, the workspaces and the node firewall stay)
#   token  print the server's token (made on its first start, kept on the store volume)
#   url    print the URL users open
#   logs   the server's log
# Run it where `docker` talks to a swarm manager (on the manager, or with DOCKER_HOST).
# Environment (up):
#   SERVER_IMAGE       the server image as this manager pulls it, e.g.
#                      REGISTRY:5000/jupyter-popebot-code-server:latest (required)
#   WORKSPACE_IMAGE    the workspace image as every node pulls it (required)
#   FIREWALL_IMAGE     the node firewall image as every node pulls it (required; the node
#                      firewall keeps workspaces off the nodes and the registry)
#   REGISTRY_ADDRESS   the registry as workspaces would reach it, rejected by the node firewall:
#                      its address, or ADDRESS:PORT items separated by spaces (its pull and push
#                      ports); required, '' only when the registry is on a swarm node
#   SERVER_PORT        the port published on the manager (default 8888)
#   SERVER_BIND        the manager's address it is published on (default 0.0.0.0: all)
#   SERVER_NAME        the container's name (default jupyter-popebot-code-server)
#   FRONT_NETWORK      the server's own bridge network, where Jupyter listens (default jupyter-front)
#   STORE_VOLUME       the volume of its store and token (default jupyter-popebot-code-store)
#   JUPYTER_TOKEN      a token of your own (default: one made on the first start)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=swarm-server
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

readonly NAME="${SERVER_NAME:-jupyter-popebot-code-server}"
readonly PORT="${SERVER_PORT:-8888}"
readonly BIND="${SERVER_BIND:-0.0.0.0}"
readonly FRONT="${FRONT_NETWORK:-jupyter-front}"
readonly STORE="${STORE_VOLUME:-jupyter-popebot-code-store}"
readonly WAIT_SECONDS=180

command -v docker >/dev/null || die "no docker CLI: run scripts/ensure-docker.sh"

need() { [ -n "${!1:-}" ] || die "set $1 (see $0 --help)"; }

up() {
	need SERVER_IMAGE
	need WORKSPACE_IMAGE
	need FIREWALL_IMAGE
	[ -n "${REGISTRY_ADDRESS+set}" ] || die "set REGISTRY_ADDRESS (see $0 --help)"
	[ "$(docker info -f '{{.Swarm.ControlAvailable}}')" = true ] ||
		die "this engine is not a swarm manager: run this on a manager (or point DOCKER_HOST at one)"

	log "pulling $SERVER_IMAGE ..."
	docker pull -q "$SERVER_IMAGE" >/dev/null
	# A bridge of its own: users reach Jupyter through the published port, on this network.
	docker network inspect "$FRONT" >/dev/null 2>&1 ||
		docker network create --driver bridge "$FRONT" >/dev/null
	docker volume inspect "$STORE" >/dev/null 2>&1 || docker volume create "$STORE" >/dev/null

	local options=(
		"--SwarmContainerManager.image=$WORKSPACE_IMAGE"
		"--SwarmNetworkPolicy.node_firewall_image=$FIREWALL_IMAGE"
		"--NetworkPolicy.firewall=iptables"
	)
	if [ -n "$REGISTRY_ADDRESS" ]; then
		# shellcheck disable=SC2086 # one destination per word
		options+=("--NetworkPolicy.blocked_destinations=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' $REGISTRY_ADDRESS)")
	fi
	local token_env=()
	[ -z "${JUPYTER_TOKEN:-}" ] || token_env=(-e "JUPYTER_TOKEN=$JUPYTER_TOKEN")

	if docker container inspect "$NAME" >/dev/null 2>&1; then
		# The old container goes first: one server per store. Workspaces run on meanwhile.
		log "replacing $NAME (its store volume $STORE stays)"
		docker stop -t 30 "$NAME" >/dev/null
		docker rm "$NAME" >/dev/null
	fi
	docker run -d --name "$NAME" --restart unless-stopped \
		--network "$FRONT" -p "$BIND:$PORT:8888" \
		-v /var/run/docker.sock:/var/run/docker.sock \
		-v "$STORE:/var/lib/jupyter-popebot-code" \
		-e "POPEBOT_FRONT_NETWORK=$FRONT" "${token_env[@]}" \
		--label org.jupyter.popebot-code.server=true \
		"$SERVER_IMAGE" "${options[@]}" "$@" >/dev/null
	local i health=""
	for ((i = 0; i < WAIT_SECONDS; i++)); do
		health="$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$NAME")"
		case "$health" in
		"running healthy") break ;;
		exited* | dead*) break ;;
		esac
		sleep 1
	done
	if [ "$health" != "running healthy" ]; then
		docker logs --tail 40 "$NAME" >&2 || true
		die "$NAME is not healthy ($health)"
	fi
	log "the server runs: $(url)"
}

token() { docker exec "$NAME" sh -c 'printf "%s\n" "${JUPYTER_TOKEN:-$(cat /var/lib/jupyter-popebot-code/token)}"'; }
url() { printf 'http://<this manager>:%s/lab?token=%s\n' "$PORT" "$(token)"; }

case "${1:-}" in
up)
	shift
	[ "${1:-}" != "--" ] || shift
	up "$@"
	;;
down) docker rm -f "$NAME" >/dev/null 2>&1 || true ;;
token) token ;;
url) url ;;
logs) docker logs "$NAME" ;;
-h | --help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 up [-- JUPYTER-OPTIONS...] | down | token | url | logs (see --help)" ;;
esac
