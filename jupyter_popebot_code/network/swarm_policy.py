"""The network policy on a Docker Swarm: an overlay per workspace, a firewall on each node.

NetworkPolicy's iptables rules guard one engine's bridge; on a swarm the tasks run on other hosts.

- **Apart.** With `isolate_workspaces` every workspace gets an attachable overlay network of its
  own (`SwarmContainerManager.network_per_workspace`), which the server's container joins until
  the workspace is deleted: no two workspaces share a network, so neither reaches the other.
- **Away from the hosts.** Whatever a workspace sends beyond its overlay leaves through its
  node's `docker_gwbridge`. A global service on the workspace nodes (`code-workspace-firewall`:
  host network, NET_ADMIN, image `node_firewall_image`, see `images/node-firewall`) writes there
  the chains `firewall_script` writes for a single engine's bridge: `block_host` (the node's own
  addresses, and every swarm node's address, which keeps workspaces off the swarm's control,
  gossip and VXLAN ports), `blocked_networks`, `allowed_destinations`. The server hands it the
  rule text. A workspace is created or started only on a node where that firewall runs and is
  healthy (its health check finds the rules in place); the rules stay when the service stops.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from typing import Any

import docker
import docker.errors
from traitlets import Float, Unicode

from ..backends.docker.manager import MANAGED_BY, MANAGED_BY_LABEL
from ..backends.swarm.manager import SwarmContainerManager
from ..errors import FirewallError, NodeUnavailable
from .firewall import Members, NetworkView, PolicySettings, firewall_script
from .policy import NetworkPolicy

FIREWALL_SERVICE = "code-workspace-firewall"
# Chains POPEBOT-FWD-gwbridge and POPEBOT-IN-gwbridge, on each workspace node.
NODE_VIEW = NetworkView("gwbridge", "docker_gwbridge")
SPEC_LABEL = "org.jupyter.popebot-code.firewall-spec"
_POLL_SECONDS = 0.5


def node_addresses(nodes: list[dict[str, Any]]) -> list[ipaddress.IPv4Network]:
    """Every swarm node's IPv4 address (as a /32), from `docker node ls`'s inspect answers."""
    found: set[ipaddress.IPv4Network] = set()
    for node in nodes:
        candidates = [
            node.get("Status", {}).get("Addr", ""),
            node.get("ManagerStatus", {}).get("Addr", "").rpartition(":")[0],
        ]
        for text in candidates:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if isinstance(address, ipaddress.IPv4Address) and not (
                address.is_unspecified or address.is_loopback
            ):
                found.add(ipaddress.IPv4Network(address))
    return sorted(found)


def node_firewall_env(
    settings: PolicySettings, nodes: list[ipaddress.IPv4Network]
) -> dict[str, str]:
    """What the node firewall program needs: the rule text, the jumps, the chain names."""
    blocked = settings.blocked + (tuple(nodes) if settings.block_host else ())
    node_settings = PolicySettings(
        # Workspaces never share docker_gwbridge traffic (Docker makes it with icc off); the
        # overlays keep them apart, so the bridge's other users (routing mesh) are left alone.
        isolate=False,
        same_owner=False,
        block_host=settings.block_host,
        blocked=tuple(dict.fromkeys(blocked)),
        allowed=settings.allowed,
        denied=settings.denied,
    )
    return {
        "POPEBOT_FIREWALL_RULES": firewall_script(NODE_VIEW, Members(), node_settings),
        "POPEBOT_FIREWALL_JUMPS": "\n".join(" ".join(jump) for jump in NODE_VIEW.jumps()),
        "POPEBOT_FIREWALL_CHAINS": f"{NODE_VIEW.forward_chain} {NODE_VIEW.input_chain}",
    }


class SwarmNetworkPolicy(NetworkPolicy):
    """NetworkPolicy's options, enforced on a swarm: one overlay per workspace, node firewalls.

    Takes every NetworkPolicy option (`c.NetworkPolicy.*` applies here too). `firewall`:
    'iptables' makes workspace starts wait for the node firewall and fail without it, 'auto'
    enforces when `node_firewall_image` is set, 'off' runs no node firewall.
    """

    node_firewall_image = Unicode(
        "",
        help=(
            "Image of the node firewall service, as every workspace node pulls it (built from "
            "images/node-firewall and pushed to your registry, e.g. "
            "'registry:5000/jupyter-popebot-code-node-firewall:latest'). '': no node firewall; "
            "with firewall='iptables' the server then refuses to start workspaces."
        ),
    ).tag(config=True)

    node_firewall_wait = Float(
        60.0,
        help=(
            "Seconds a workspace start waits for its node's firewall to be running and healthy "
            "(it is placed on a new node, or its rules are being rewritten) before it fails."
        ),
    ).tag(config=True)

    def __init__(self, containers: SwarmContainerManager, **kwargs: Any) -> None:
        super().__init__(containers, **kwargs)
        if self.same_owner_reachable:
            raise ValueError(
                "NetworkPolicy.same_owner_reachable is not available on Docker Swarm: each "
                "workspace has an overlay network of its own there."
            )
        if self.ttyd_clients:
            self.log.warning(
                "NetworkPolicy.ttyd_clients is not used on Swarm: the server's own container "
                "joins each workspace's network."
            )
        self.swarm = containers
        containers.network_per_workspace = self.isolate_workspaces
        self._enforcing = self.firewall != "off" and bool(self.node_firewall_image)
        if self._enforcing:
            # Set before the service is deployed: a start in between waits for it, unfenced never.
            containers.node_guard = self._guard
        if self.firewall == "iptables" and not self.node_firewall_image:
            raise FirewallError(
                "NetworkPolicy.firewall = 'iptables' on Swarm needs "
                "SwarmNetworkPolicy.node_firewall_image (the node firewall's image)."
            )

    # -- the server's entry points ---------------------------------------------------------------

    async def install(self) -> None:
        """Deploy (or update) the node firewall service; warn when nobody enforces the policy."""
        if not self._enforcing:
            self.log.warning(
                "Workspace firewall is OFF on the swarm (%s): workspaces reach their nodes, the "
                "other swarm nodes and %s unless you enforce that yourself.",
                "NetworkPolicy.firewall = 'off'"
                if self.firewall == "off"
                else "no SwarmNetworkPolicy.node_firewall_image",
                ", ".join(self.blocked_networks) or "any network",
            )
            return
        await self.swarm.run_with_client(self._deploy)

    async def refresh(self) -> None:
        """Nothing names addresses of workspaces on a swarm: nothing to rewrite on a start."""

    async def uninstall(self) -> None:
        """Remove the service, then the chains on every workspace node (a one-off global job)."""

        def remove_service(client: docker.DockerClient) -> str | None:
            try:
                service_id = str(client.api.inspect_service(FIREWALL_SERVICE)["ID"])
            except docker.errors.NotFound:
                return None
            client.api.remove_service(service_id)
            return service_id

        def still_running(client: docker.DockerClient, service_id: str) -> bool:
            # A removed service's tasks stay listed until their program has stopped; one still
            # running would write the rules again (its recheck) after the job deleted them.
            return any(task["ServiceID"] == service_id for task in client.api.tasks())

        service_id = await self.swarm.run_with_client(remove_service)
        deadline = time.monotonic() + self.node_firewall_wait
        while service_id is not None:
            running: bool = await self.swarm.run_with_client(still_running, service_id)
            if not running:
                break
            if time.monotonic() > deadline:
                raise FirewallError(
                    f"The node firewall's tasks still run {self.node_firewall_wait:g} s after "
                    "its service was removed; try again."
                )
            await asyncio.sleep(_POLL_SECONDS)
        template = await self.swarm.run_with_client(self._task_template, ["remove"])
        # One task per usable workspace node; a node that is down keeps its rules.
        nodes = await self.swarm.run_with_client(self.swarm.usable_nodes)
        failure = await self.swarm.run_job(
            f"{FIREWALL_SERVICE}-remove-{int(time.time())}",
            template,
            {"GlobalJob": {}},
            completions=len(nodes),
            timeout=self.node_firewall_wait,
        )
        if failure is not None:
            raise FirewallError(f"Removing the node firewall failed on a node: {failure}")
        self.log.info("Removed the node firewall from the workspace nodes")

    # -- on a Docker thread ----------------------------------------------------------------------

    def _task_template(self, client: docker.DockerClient, args: list[str]) -> dict[str, Any]:
        env = node_firewall_env(self.settings, node_addresses(client.api.nodes()))
        label = self.swarm.workspace_node_label
        return {
            "ContainerSpec": {
                "Image": self.node_firewall_image,
                "Args": args,
                "Env": [f"{key}={value}" for key, value in sorted(env.items())],
                "CapabilityAdd": ["CAP_NET_ADMIN", "CAP_NET_RAW"],
                "Labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "StopGracePeriod": 5_000_000_000,
            },
            "Networks": [{"Target": "host"}],
            "Placement": {"Constraints": [f"node.labels.{label}==true"] if label else []},
            "RestartPolicy": {"Condition": "any" if args == ["apply"] else "none"},
        }

    def _deploy(self, client: docker.DockerClient) -> None:
        """Create the service, or update it when its rules (options, swarm nodes) changed."""
        template = self._task_template(client, ["apply"])
        template["ContainerSpec"]["Healthcheck"] = {
            "Test": ["CMD", "/usr/local/bin/node-firewall", "check"],
            "Interval": 2_000_000_000,
            "Timeout": 10_000_000_000,
            "Retries": 2,
        }
        digest = hashlib.sha256(repr(sorted(template.items())).encode()).hexdigest()[:16]
        labels = {MANAGED_BY_LABEL: MANAGED_BY, SPEC_LABEL: digest}
        try:
            service = client.api.inspect_service(FIREWALL_SERVICE)
        except docker.errors.NotFound:
            client.api.create_service(
                template, name=FIREWALL_SERVICE, labels=labels, mode={"Global": {}}
            )
            self.log.info("Node firewall service %s created", FIREWALL_SERVICE)
            return
        if service["Spec"].get("Labels", {}).get(SPEC_LABEL) == digest:
            return
        client.api.update_service(
            service["ID"],
            service["Version"]["Index"],
            task_template=template,
            name=FIREWALL_SERVICE,
            labels=labels,
            mode={"Global": {}},
        )
        self.log.info("Node firewall service %s updated (new rules)", FIREWALL_SERVICE)

    def _guard(self, client: docker.DockerClient, node_id: str) -> None:
        """Wait (bounded) until the firewall runs, healthy, on the node; else refuse."""
        self._deploy(client)  # a node joined since, or the service was removed: rules follow
        deadline = time.monotonic() + self.node_firewall_wait
        while True:
            tasks = client.api.tasks(
                filters={"service": FIREWALL_SERVICE, "node": node_id, "desired-state": "running"}
            )
            # A task with a health check is "running" only once it reported healthy.
            if any(task["Status"]["State"] == "running" for task in tasks):
                return
            if time.monotonic() > deadline:
                errors = "; ".join(
                    str(t["Status"].get("Err") or t["Status"].get("State")) for t in tasks
                )
                raise NodeUnavailable(
                    f"The workspace firewall does not run on swarm node {node_id[:12]} "
                    f"({errors or 'no task there'}): no workspace starts there until it does "
                    f"(docker service ps {FIREWALL_SERVICE})."
                )
            time.sleep(_POLL_SECONDS)
