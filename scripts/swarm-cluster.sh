#!/usr/bin/env bash
# A real Docker Swarm on this machine, for the swarm tests and the benchmark: this machine's engine
# is the manager, worker engines run as Docker-in-Docker containers, and the project's own
# registry (Debian's docker-registry) serves them the workspace image and the node firewall's.
# Idempotent; set-up is reused between runs (images, registry and its data, the workers'
# /var/lib/docker volumes).
#
# Usage: scripts/swarm-cluster.sh up | down | env
#   up    build what is missing, start the registry and the workers, push the images,
#         make this engine a swarm manager (when it is not one) and join the workers
#   down  the workers leave and are removed (their volumes stay); this engine leaves the swarm
#         if `up` made it a manager; the registry keeps running
#   env   print the cluster's settings as shell assignments (after `up`)
# Environment:
#   SWARM_WORKERS        number of worker engines (default 2)
#   WORKSPACE_IMAGE      the local image to publish (default jupyter-popebot-code-workspace:latest)
#   WORKSPACE_BASE_IMAGE base of the node and registry images (default jupyter-popebot-code-base:sid)
#   SWARM_EXTRA_IMAGES   more local images to publish, space-separated (workspace profiles' images)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=swarm-cluster
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

readonly WORKERS="${SWARM_WORKERS:-2}"
readonly IMAGE="${WORKSPACE_IMAGE:-jupyter-popebot-code-workspace:latest}"
readonly BASE_IMAGE="${WORKSPACE_BASE_IMAGE:-jupyter-popebot-code-base:sid}"
readonly PREFIX="popebot-swarm"
readonly NODES_NETWORK="$PREFIX-nodes"
readonly NODE_IMAGE="jupyter-popebot-code-swarm-node:latest"
readonly REGISTRY_IMAGE="jupyter-popebot-code-registry:latest"
readonly REGISTRY="$PREFIX-registry"
readonly FIREWALL_IMAGE="jupyter-popebot-code-node-firewall:latest"
readonly REGISTRY_REF="$REGISTRY:5000/${IMAGE%%:*}:${IMAGE##*:}"
readonly FIREWALL_REF="$REGISTRY:5000/${FIREWALL_IMAGE%%:*}:${FIREWALL_IMAGE##*:}"
readonly WORKER_LABEL="org.jupyter.popebot-code.workspaces"
readonly STATE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-popebot-code"
readonly INIT_MARK="$STATE_DIR/swarm-initialized-by-tests"
readonly WAIT_SECONDS=120

is_root || die "the swarm cluster needs root (privileged containers, the host engine's swarm mode)"
command -v docker >/dev/null || die "no docker CLI: run scripts/ensure-docker.sh"
mkdir -p "$STATE_DIR"

worker_name() { printf '%s-node-%s' "$PREFIX" "$1"; }
in_worker() { docker exec "$(worker_name "$1")" docker "${@:2}"; }
registry_ip() { docker inspect -f "{{(index .NetworkSettings.Networks \"$NODES_NETWORK\").IPAddress}}" "$REGISTRY"; }
# The nodes network's gateway: the address of this host the workers reach (an internal network
# reaches no other address of the host, docker0's included).
manager_addr() { docker network inspect "$NODES_NETWORK" -f '{{(index .IPAM.Config 0).Gateway}}'; }

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

# Publish a local image unless the registry has this very image (same config digest = image id).
publish() {
	local image="$1" reg="$2" local_id remote_id
	local_id="$(docker image inspect -f '{{.Id}}' "$image")"
	remote_id="$(skopeo inspect --tls-verify=false --raw "docker://$reg/${image%%:*}:${image##*:}" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true)"
	if [ "$local_id" != "$remote_id" ]; then
		log "pushing $image to the registry ..."
		skopeo copy -q --dest-tls-verify=false "docker-daemon:$image" "docker://$reg/${image%%:*}:${image##*:}"
	fi
}

build_if_missing() {
	local tag="$1" dir="$2"
	docker image inspect "$tag" >/dev/null 2>&1 && return 0
	log "building $tag from $dir ..."
	DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$dir" >/dev/null
}

up() {
	command -v skopeo >/dev/null || apt_install skopeo
	docker image inspect "$IMAGE" >/dev/null 2>&1 || bash "$root/scripts/build-image.sh"
	build_if_missing "$NODE_IMAGE" "$root/images/swarm-node"
	build_if_missing "$REGISTRY_IMAGE" "$root/images/registry"
	build_if_missing "$FIREWALL_IMAGE" "$root/images/node-firewall"

	# The nodes' network is internal: the workers reach each other, the registry and this host,
	# nothing beyond.
	docker network inspect "$NODES_NETWORK" >/dev/null 2>&1 ||
		docker network create --internal --label org.jupyter.popebot-code.managed-by=tests "$NODES_NETWORK" >/dev/null

	if [ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY" 2>/dev/null)" != true ]; then
		docker rm -f "$REGISTRY" >/dev/null 2>&1 || true
		log "starting the registry $REGISTRY"
		docker run -d --name "$REGISTRY" --network "$NODES_NETWORK" --restart unless-stopped \
			-v "$REGISTRY-data:/var/lib/docker-registry" "$REGISTRY_IMAGE" >/dev/null
	fi
	local reg
	reg="$(registry_ip):5000"
	# python3, not curl: a fresh Debian machine has the one (scripts/setup.sh) but maybe not the other.
	wait_until "registry" python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://$reg/v2/"

	publish "$IMAGE" "$reg"
	publish "$FIREWALL_IMAGE" "$reg"
	local extra
	for extra in ${SWARM_EXTRA_IMAGES:-}; do
		publish "$extra" "$reg"
	done

	# This engine is the manager; made one here only when it is in no swarm yet.
	local swarm_state
	swarm_state="$(docker info -f '{{.Swarm.LocalNodeState}}')"
	if [ "$swarm_state" = inactive ]; then
		[ -n "$(manager_addr)" ] || die "no gateway on $NODES_NETWORK to advertise"
		log "docker swarm init --advertise-addr $(manager_addr)"
		docker swarm init --advertise-addr "$(manager_addr)" >/dev/null
		touch "$INIT_MARK"
	elif [ "$(docker info -f '{{.Swarm.ControlAvailable}}')" != true ]; then
		die "this engine is in a swarm but not a manager"
	fi
	local token manager
	token="$(docker swarm join-token -q worker)"
	manager="$(docker info -f '{{(index .Swarm.RemoteManagers 0).Addr}}')"

	local n name node_id
	for ((n = 1; n <= WORKERS; n++)); do
		name="$(worker_name "$n")"
		# The registry by name from /etc/hosts: Docker's embedded DNS does not answer inside a
		# worker once its own engine has rewritten the container's iptables.
		if [ "$(docker inspect -f '{{.State.Running}} {{.HostConfig.ExtraHosts}}' "$name" 2>/dev/null)" != "true [$REGISTRY:${reg%:*}]" ]; then
			docker rm -f "$name" >/dev/null 2>&1 || true
			log "starting worker engine $name"
			# Privileged but for CAP_SYS_RESOURCE, which some hosts (VM sandboxes) do not
			# grant, so --privileged itself fails there. The worker's cgroups go under a parent
			# of its own name in this host's hierarchy.
			docker run -d --name "$name" --hostname "$name" --network "$NODES_NETWORK" \
				--add-host "$REGISTRY:${reg%:*}" \
				--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
				--security-opt apparmor=unconfined --security-opt systempaths=unconfined \
				-v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$name-docker:/var/lib/docker" "$NODE_IMAGE" \
				"--insecure-registry=$REGISTRY:5000" "--cgroup-parent=/$name" >/dev/null
		fi
		wait_until "$name's engine" in_worker "$n" info
		node_id="$(in_worker "$n" info -f '{{.Swarm.NodeID}}')"
		if [ -z "$node_id" ] || ! docker node inspect "$node_id" >/dev/null 2>&1; then
			in_worker "$n" swarm leave --force >/dev/null 2>&1 || true
			# Entries of this worker from an earlier swarm life are gone for good.
			docker node ls -q --filter "name=$name" | while read -r old; do
				docker node rm --force "$old" >/dev/null 2>&1 || true
			done
			log "joining $name to the swarm at $manager"
			in_worker "$n" swarm join --token "$token" "$manager" >/dev/null
			node_id="$(in_worker "$n" info -f '{{.Swarm.NodeID}}')"
		fi
		docker node update --availability active --label-add "$WORKER_LABEL=true" "$node_id" >/dev/null
		wait_until "$name ready" sh -c "[ \"\$(docker node inspect -f '{{.Status.State}}' $node_id)\" = ready ]"
	done
	log "swarm ready: $(docker node ls --format '{{.Hostname}}:{{.Status}}:{{.Availability}}' | tr '\n' ' ')"
}

down() {
	local n name
	for ((n = 1; n <= WORKERS; n++)); do
		name="$(worker_name "$n")"
		docker inspect "$name" >/dev/null 2>&1 || continue
		in_worker "$n" swarm leave --force >/dev/null 2>&1 || true
		docker rm -f "$name" >/dev/null
	done
	if [ -f "$INIT_MARK" ]; then
		log "this engine leaves the swarm (made a manager by 'up')"
		docker swarm leave --force >/dev/null 2>&1 || true
		rm -f "$INIT_MARK"
	else
		docker node ls -q --filter "name=$PREFIX-node-" 2>/dev/null | while read -r old; do
			docker node rm --force "$old" >/dev/null 2>&1 || true
		done
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
env)
	echo "SWARM_REGISTRY_IMAGE=$REGISTRY_REF"
	echo "SWARM_FIREWALL_IMAGE=$FIREWALL_REF"
	echo "SWARM_NODES_NETWORK=$NODES_NETWORK"
	echo "SWARM_WORKER_PREFIX=$PREFIX-node-"
	;;
*) die "usage: $0 up|down|env" ;;
esac
