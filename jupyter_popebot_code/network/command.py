"""`python -m jupyter_popebot_code.network.command install|remove`, as root on the host.

For deployments whose Jupyter server cannot write the firewall itself (it runs in a container, or
not as root): the same NetworkPolicy and ContainerManager options as the server's.
"""

from __future__ import annotations

import asyncio
import sys

from traitlets import Bool, Type, Unicode
from traitlets.config import Application

from ..backends.base import WorkspaceBackend
from ..backends.docker.manager import ContainerManager
from ..backends.docker.networks import WorkspaceNetworks
from ..backends.swarm.manager import SwarmContainerManager
from ..errors import ContainerError
from .policy import NetworkPolicy
from .swarm_policy import SwarmNetworkPolicy


class NetworkPolicyApp(Application):
    """Install or remove the firewall rules of the workspace network, as root on the host.

    For a server that cannot manage the firewall itself (it runs in a container): the same
    options as the server's (`--NetworkPolicy.…`, `--ContainerManager.network=…`, or
    `--config=jupyter_server_config.py`). The backend decides which policy: the config's
    `CodeWorkspacesApp.container_manager_class` (`--swarm` for SwarmContainerManager, whose
    policy is the node firewall service on a swarm manager), else ContainerManager.
    """

    name = "jupyter-popebot-code-network-policy"
    description = "Install or remove the workspace network's firewall rules on the Docker host."
    classes = [
        ContainerManager,
        WorkspaceNetworks,
        SwarmContainerManager,
        NetworkPolicy,
        SwarmNetworkPolicy,
    ]
    aliases = {
        "config": "NetworkPolicyApp.config_file",
        "log-level": "Application.log_level",
    }
    flags = {
        "swarm": (
            {"NetworkPolicyApp": {"swarm": True}},
            "Install or remove the node firewall of a Docker Swarm's workspace nodes.",
        )
    }
    config_file = Unicode("", help="A Python config file to read (e.g. the server's).").tag(
        config=True
    )
    swarm = Bool(
        False,
        help=(
            "The workspaces run on a Docker Swarm (run this on a manager): install or remove the "
            "node firewall service on the workspace nodes instead of this host's rules."
        ),
    ).tag(config=True)

    container_manager_class = Type(
        default_value=ContainerManager,
        klass=WorkspaceBackend,
        help=(
            "The workspace backend whose network policy to install or remove. Unset: the "
            "config's CodeWorkspacesApp.container_manager_class (so --config of the server's "
            "file picks it), SwarmContainerManager with --swarm, else ContainerManager."
        ),
    ).tag(config=True)

    def backend_class(self) -> type[WorkspaceBackend]:
        """The backend of the server this command serves; it names the policy."""
        if "container_manager_class" not in self.config.get("NetworkPolicyApp", {}):
            server_choice = self.config.get("CodeWorkspacesApp", {}).get("container_manager_class")
            if self.swarm:
                self.container_manager_class = SwarmContainerManager
            elif server_choice is not None:
                self.container_manager_class = server_choice  # a class or its dotted path
        return self.container_manager_class

    def start(self) -> None:
        if self.config_file:
            self.load_config_file(self.config_file)
        action = self.extra_args[0] if self.extra_args else ""
        if action not in ("install", "remove"):
            self.exit(f"usage: {sys.argv[0]} install|remove [--NetworkPolicy.option=value ...]")
        containers = self.backend_class()(parent=self, log=self.log)
        policy = containers.network_policy(parent=self, log=self.log, firewall="iptables")
        try:
            if action == "install":
                asyncio.run(policy.install())
            else:
                asyncio.run(policy.uninstall())
        except ContainerError as err:
            self.exit(str(err))
        finally:
            containers.close()


main = NetworkPolicyApp.launch_instance

if __name__ == "__main__":
    main()
