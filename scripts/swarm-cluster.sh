#!/usr/bin/env bash
# A real Docker Swarm on this machine, for the swarm tests and the benchmark: a manager engine and
# worker engines, each a Docker-in-Docker container on an internal network of their own, and the
# project's registry (Debian's docker-registry behind nginx) that serves them the workspace, node
# firewall and server images. Pulls (port 5000) need no credentials; pushes and deletes (port
# 5002) need the registry's user (made here, kept in the state directory), so no node and no
# workspace can change an image.
# This machine's own engine stays out of the swarm. Idempotent; set-up is reused between runs
# (images, the registry and its data, the engines' /var/lib/docker volumes).
#
# Usage: scripts/swarm-cluster.sh up | down | env
#   up    build what is missing, start the registry, the manager and the workers, push the
#         images, make the swarm and join the workers
#   down  remove the manager and the workers (their volumes stay); the registry keeps running
#   env   print the cluster's settings as shell assignments (after `up`)
# Environment:
#   SWARM_PREFIX         names of the cluster's containers, network and volumes (default
#                        popebot-swarm): PREFIX-registry, PREFIX-manager, PREFIX-node-N, PREFIX-nodes
#   SWARM_WORKERS        number of worker engines (default 2)
#   WORKSPACE_IMAGE      the local workspace image to publish (default jupyter-popebot-code-workspace:latest)
#   SERVER_IMAGE         the local server image to publish (default jupyter-popebot-code-server:latest;
#                        scripts/build-server-image.sh builds it when missing)
#   WORKSPACE_BASE_IMAGE base of the node, registry and firewall images (default jupyter-popebot-code-base:sid)
#   SWARM_EXTRA_IMAGES   more local images to publish, space-separated (workspace profiles' images)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=swarm-cluster
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

readonly WORKERS="${SWARM_WORKERS:-2}"
readonly IMAGE="${WORKSPACE_IMAGE:-jupyter-popebot-code-workspace:latest}"
readonly SERVER="${SERVER_IMAGE:-jupyter-popebot-code-server:latest}"
readonly BASE_IMAGE="${WORKSPACE_BASE_IMAGE:-jupyter-popebot-code-base:sid}"
readonly PREFIX="${SWARM_PREFIX:-popebot-swarm}"
readonly NODES_NETWORK="$PREFIX-nodes"
readonly REGISTRY="$PREFIX-registry"
readonly MANAGER="$PREFIX-manager"
readonly REGISTRY_USER="pusher"
readonly WORKER_LABEL="org.jupyter.popebot-code.workspaces"
readonly STATE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-popebot-code/$PREFIX"
# The manager's Docker socket, as this machine reaches it (a bind mount of the manager's).
readonly MANAGER_SOCKET_DIR="$STATE_DIR/manager"
readonly PASSWORD_FILE="$STATE_DIR/registry-password"
readonly WAIT_SECONDS=120

is_root || die "the swarm cluster needs root (privileged containers)"
command -v docker >/dev/null || die "no docker CLI: run scripts/ensure-docker.sh"
mkdir -p "$STATE_DIR" "$MANAGER_SOCKET_DIR"

# An image of ours, tagged by what it is built from (its directory and the base image): a
# changed recipe gets a new tag, and clusters of older checkouts keep theirs.
recipe_tag() {
	local name="$1" dir="$2" digest
	digest="$(
		{
			docker image inspect -f '{{.Id}}' "$BASE_IMAGE"
			(cd "$dir" && find . -type f | LC_ALL=C sort | xargs sha256sum)
		} | sha256sum | cut -c1-12
	)"
	printf '%s:%s' "$name" "$digest"
}

worker_name() { printf '%s-node-%s' "$PREFIX" "$1"; }
in_worker() { docker exec "$(worker_name "$1")" docker "${@:2}"; }
in_manager() { docker exec "$MANAGER" docker "$@"; }
address_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$NODES_NETWORK\").IPAddress}}" "$1"; }

# Wait (bounded) until a command succeeds.
wait_until() {
	local what="$1" i
	shift
	for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "$what: not ready within $WAIT_SECONDS s"
}

ref_of() { printf '%s:5000/%s' "$REGISTRY" "$1"; }

# Publish a local image unless the registry has this very image (same config digest = image id):
# read on the pull port (5000), written on the push port (5002) with the registry's user.
publish() {
	local image="$1" registry_ip="$2" local_id remote_id
	local_id="$(docker image inspect -f '{{.Id}}' "$image")"
	remote_id="$(skopeo inspect --tls-verify=false --raw "docker://$registry_ip:5000/$image" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true)"
	if [ "$local_id" != "$remote_id" ]; then
		log "pushing $image to the registry ..."
		skopeo copy -q --dest-tls-verify=false --dest-creds "$REGISTRY_USER:$(cat "$PASSWORD_FILE")" \
			"docker-daemon:$image" "docker://$registry_ip:5002/$image"
	fi
}

build_if_missing() {
	local tag="$1" dir="$2"
	docker image inspect "$tag" >/dev/null 2>&1 && return 0
	log "building $tag from $dir ..."
	DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$dir" >/dev/null
}

# Start (or keep) a Docker-in-Docker engine on the nodes network; extra dockerd flags follow.
engine() {
	local name="$1" node_image="$2" registry_ip="$3" mounts=() flags=("${@:5}")
	[ -z "$4" ] || mounts=(-v "$4")
	local want="true $node_image [$REGISTRY:$registry_ip]"
	# The registry by name from /etc/hosts: Docker's embedded DNS does not answer inside an
	# engine container once its own engine has rewritten the container's iptables.
	if [ "$(docker inspect -f '{{.State.Running}} {{.Config.Image}} {{.HostConfig.ExtraHosts}}' "$name" 2>/dev/null)" != "$want" ]; then
		docker rm -f "$name" >/dev/null 2>&1 || true
		log "starting engine $name"
		# Privileged but for CAP_SYS_RESOURCE, which some hosts (VM sandboxes) do not grant, so
		# --privileged itself fails there. Its cgroups go under a parent of its own name.
		docker run -d --name "$name" --hostname "$name" --network "$NODES_NETWORK" \
			--add-host "$REGISTRY:$registry_ip" \
			--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
			--security-opt apparmor=unconfined --security-opt systempaths=unconfined \
			-v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$name-docker:/var/lib/docker" "${mounts[@]}" \
			--label org.jupyter.popebot-code.managed-by=tests "$node_image" \
			"--insecure-registry=$REGISTRY:5000" "--cgroup-parent=/$name" "${flags[@]}" >/dev/null
	fi
	wait_until "$name's engine" docker exec "$name" docker info
}

up() {
	command -v skopeo >/dev/null || apt_install skopeo
	docker image inspect "$IMAGE" >/dev/null 2>&1 || bash "$root/scripts/build-image.sh"
	docker image inspect "$SERVER" >/dev/null 2>&1 || SERVER_IMAGE="$SERVER" bash "$root/scripts/build-server-image.sh"
	local node_image registry_image firewall_image
	node_image="$(recipe_tag jupyter-popebot-code-swarm-node "$root/images/swarm-node")"
	registry_image="$(recipe_tag jupyter-popebot-code-registry "$root/images/registry")"
	firewall_image="$(recipe_tag jupyter-popebot-code-node-firewall "$root/images/node-firewall")"
	build_if_missing "$node_image" "$root/images/swarm-node"
	build_if_missing "$registry_image" "$root/images/registry"
	build_if_missing "$firewall_image" "$root/images/node-firewall"

	# The nodes' network is internal: the engines reach each other, the registry and this host,
	# nothing beyond.
	docker network inspect "$NODES_NETWORK" >/dev/null 2>&1 ||
		docker network create --internal --label org.jupyter.popebot-code.managed-by=tests "$NODES_NETWORK" >/dev/null

	# The registry's one user may push and delete; made once, kept with the registry's data.
	if [ ! -s "$PASSWORD_FILE" ]; then
		(umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$PASSWORD_FILE")
	fi
	if [ "$(docker inspect -f '{{.State.Running}} {{.Config.Image}}' "$REGISTRY" 2>/dev/null)" != "true $registry_image" ]; then
		docker rm -f "$REGISTRY" >/dev/null 2>&1 || true
		log "starting the registry $REGISTRY"
		local htpasswd
		htpasswd="$(docker run --rm -i --network none --entrypoint htpasswd "$registry_image" -inB "$REGISTRY_USER" <"$PASSWORD_FILE")"
		docker run -d --name "$REGISTRY" --network "$NODES_NETWORK" --restart unless-stopped \
			-e "REGISTRY_HTPASSWD=$htpasswd" --label org.jupyter.popebot-code.managed-by=tests \
			-v "$REGISTRY-data:/var/lib/docker-registry" "$registry_image" >/dev/null
	fi
	local registry_ip
	registry_ip="$(address_of "$REGISTRY")"
	# python3, not curl: a fresh Debian machine has the one (scripts/setup.sh) but maybe not the other.
	wait_until "registry" python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://$registry_ip:5000/v2/"

	publish "$IMAGE" "$registry_ip"
	publish "$firewall_image" "$registry_ip"
	publish "$SERVER" "$registry_ip"
	local extra
	for extra in ${SWARM_EXTRA_IMAGES:-}; do
		publish "$extra" "$registry_ip"
	done

	# The manager: its socket comes out to this machine at $MANAGER_SOCKET_DIR/docker.sock.
	engine "$MANAGER" "$node_image" "$registry_ip" "$MANAGER_SOCKET_DIR:/run/popebot-export" \
		--host=unix:///var/run/docker.sock --host=unix:///run/popebot-export/docker.sock
	local manager_ip
	manager_ip="$(address_of "$MANAGER")"
	# A swarm made before the manager's container got a new address is no use: make it anew.
	if [ "$(in_manager info -f '{{.Swarm.LocalNodeState}} {{.Swarm.NodeAddr}} {{.Swarm.ControlAvailable}}')" != "active $manager_ip true" ]; then
		in_manager swarm leave --force >/dev/null 2>&1 || true
		log "docker swarm init --advertise-addr $manager_ip (in $MANAGER)"
		in_manager swarm init --advertise-addr "$manager_ip" >/dev/null
	fi
	local token
	token="$(in_manager swarm join-token -q worker)"

	local n name node_id
	for ((n = 1; n <= WORKERS; n++)); do
		name="$(worker_name "$n")"
		engine "$name" "$node_image" "$registry_ip" ""
		node_id="$(in_worker "$n" info -f '{{.Swarm.NodeID}}')"
		if [ -z "$node_id" ] || ! in_manager node inspect "$node_id" >/dev/null 2>&1 ||
			[ "$(in_worker "$n" info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
			in_worker "$n" swarm leave --force >/dev/null 2>&1 || true
			# Entries of this worker from an earlier swarm life are gone for good.
			in_manager node ls -q --filter "name=$name" | while read -r old; do
				in_manager node rm --force "$old" >/dev/null 2>&1 || true
			done
			log "joining $name to the swarm at $manager_ip:2377"
			in_worker "$n" swarm join --token "$token" "$manager_ip:2377" >/dev/null
			node_id="$(in_worker "$n" info -f '{{.Swarm.NodeID}}')"
		fi
		in_manager node update --availability active --label-add "$WORKER_LABEL=true" "$node_id" >/dev/null
		wait_until "$name ready" sh -c "[ \"\$(docker exec $MANAGER docker node inspect -f '{{.Status.State}}' $node_id)\" = ready ]"
	done
	log "swarm ready: $(in_manager node ls --format '{{.Hostname}}:{{.Status}}:{{.Availability}}' | tr '\n' ' ')"
}

down() {
	local n name
	for ((n = 1; n <= WORKERS; n++)); do
		name="$(worker_name "$n")"
		docker inspect "$name" >/dev/null 2>&1 || continue
		in_worker "$n" swarm leave --force >/dev/null 2>&1 || true
		docker rm -f "$name" >/dev/null
	done
	docker rm -f "$MANAGER" >/dev/null 2>&1 || true
}

print_env() {
	local firewall_image registry_ip
	firewall_image="$(recipe_tag jupyter-popebot-code-node-firewall "$root/images/node-firewall")"
	registry_ip="$(address_of "$REGISTRY")"
	echo "SWARM_REGISTRY_IMAGE=$(ref_of "$IMAGE")"
	echo "SWARM_FIREWALL_IMAGE=$(ref_of "$firewall_image")"
	echo "SWARM_SERVER_IMAGE=$(ref_of "$SERVER")"
	# The registry's host: its pull (5000) and push (5002) ports, the workspaces' firewall blocks both.
	echo "SWARM_REGISTRY_ADDRESS=$registry_ip"
	echo "SWARM_REGISTRY_USER=$REGISTRY_USER"
	echo "SWARM_REGISTRY_PASSWORD_FILE=$PASSWORD_FILE"
	echo "SWARM_NODES_NETWORK=$NODES_NETWORK"
	echo "SWARM_MANAGER=$MANAGER"
	echo "SWARM_MANAGER_ADDRESS=$(address_of "$MANAGER")"
	echo "SWARM_MANAGER_HOST=unix://$MANAGER_SOCKET_DIR/docker.sock"
	echo "SWARM_WORKER_PREFIX=$PREFIX-node-"
}

case "${1:-}" in
up) up ;;
down) down ;;
env) print_env ;;
*) die "usage: $0 up|down|env" ;;
esac
