"""The backend interface: three implementations follow it, and the service sees only it.

Fast tier: no engine. The Docker and Swarm backends are made (they contact nothing until used),
the in-memory one is the fast tier's; the import check reads the source, so a concrete backend
imported into core/ or hub/ fails here whatever the tests above it exercise.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

import jupyter_popebot_code
from jupyter_popebot_code.backends.base import NoNetworkPolicy, WorkspaceBackend
from jupyter_popebot_code.backends.docker.manager import ContainerManager
from jupyter_popebot_code.backends.swarm.manager import SwarmContainerManager
from jupyter_popebot_code.network.command import NetworkPolicyApp
from jupyter_popebot_code.network.policy import NetworkPolicy
from jupyter_popebot_code.network.swarm_policy import SwarmNetworkPolicy

from ..memory_containers import InMemoryContainerManager

PACKAGE = Path(jupyter_popebot_code.__file__).parent
BACKENDS = [ContainerManager, SwarmContainerManager, InMemoryContainerManager]
ABSTRACT = sorted(WorkspaceBackend.__abstractmethods__)  # type: ignore[attr-defined]


def test_the_interface_names_every_operation_the_service_needs() -> None:
    assert set(ABSTRACT) >= {
        "watch", "known_running", "close",
        "state", "statuses", "running_names", "holding_names", "workspace_ids",
        "host_resources", "limits",
        "create", "prepare_start", "start", "unpause", "wait_while_restarting",
        "stop", "remove", "remove_volume", "unmount_volume", "release_volume",
        "connect_host", "listening_ports", "terminal_activity",
    }  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda cls: cls.__name__)
def test_each_backend_implements_every_abstract_method(backend: type[WorkspaceBackend]) -> None:
    assert issubclass(backend, WorkspaceBackend)
    assert not inspect.isabstract(backend), backend.__abstractmethods__  # type: ignore[attr-defined]
    for name in ABSTRACT:
        implementation = getattr(backend, name)
        interface = getattr(WorkspaceBackend, name)
        assert implementation is not interface, f"{backend.__name__}.{name}"
        # Same coroutine-ness as the interface: a sync `state` would break every caller.
        assert inspect.iscoroutinefunction(implementation) == inspect.iscoroutinefunction(
            interface
        ), f"{backend.__name__}.{name}"


def test_a_backend_missing_a_method_cannot_be_made() -> None:
    class Partial(WorkspaceBackend):
        def watch(self, store_id: str) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]


@pytest.mark.parametrize(
    ("backend", "policy"),
    [
        (ContainerManager, NetworkPolicy),
        (SwarmContainerManager, SwarmNetworkPolicy),
        (InMemoryContainerManager, NoNetworkPolicy),
    ],
    ids=lambda cls: cls.__name__,
)
def test_each_backend_names_its_network_policy(backend: type[Any], policy: type[Any]) -> None:
    manager = backend(config=Config({"NetworkPolicy": {"firewall": "off"}}))
    try:
        made = manager.network_policy()
        assert type(made) is policy
        for step in ("install", "refresh", "uninstall"):
            assert inspect.iscoroutinefunction(getattr(made, step))
    finally:
        manager.close()


def test_the_swarm_backend_reads_the_container_manager_section_under_its_own() -> None:
    config = Config(
        {
            "ContainerManager": {"image": "shared:1", "mem_limit": "3g"},
            "SwarmContainerManager": {"mem_limit": "4g"},
        }
    )
    swarm = SwarmContainerManager(config=config)
    docker_backend = ContainerManager(config=config)
    try:
        assert (swarm.image, swarm.mem_limit) == ("shared:1", "4g")
        assert (docker_backend.image, docker_backend.mem_limit) == ("shared:1", "3g")
    finally:
        swarm.close()
        docker_backend.close()


def _imports(path: Path) -> set[str]:
    """Absolute dotted names of what a module of the package imports (relative ones resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = module.split(".")[: -node.level] if node.level else []
            name = ".".join([*base, node.module or ""]).strip(".")
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    "path",
    sorted([*(PACKAGE / "core").glob("*.py"), *(PACKAGE / "hub").glob("*.py")]),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_the_service_idle_stop_and_hub_sync_see_only_the_interface(path: Path) -> None:
    concrete = {
        name
        for name in _imports(path)
        if name.startswith("jupyter_popebot_code.backends.")
        and not name.startswith("jupyter_popebot_code.backends.base")
    }
    assert concrete == set(), f"{path.name} imports a concrete backend"


def test_the_server_sees_its_backend_through_the_interface_only(app: Any) -> None:
    """The fast tier's server runs on the in-memory backend, which is no Docker class."""
    assert isinstance(app.container_manager, WorkspaceBackend)
    assert not isinstance(app.container_manager, ContainerManager)
    assert type(app.network_policy) is NoNetworkPolicy
    assert app.service.containers is app.container_manager


@pytest.mark.parametrize(
    ("argv", "server_config", "expected"),
    [
        ([], "", ContainerManager),
        (["--swarm"], "", SwarmContainerManager),
        ([], "jupyter_popebot_code.backends.swarm.SwarmContainerManager", SwarmContainerManager),
        (
            [
                "--NetworkPolicyApp.container_manager_class=tests.memory_containers.InMemoryContainerManager"
            ],
            "jupyter_popebot_code.backends.swarm.SwarmContainerManager",
            InMemoryContainerManager,
        ),
    ],
)
def test_the_network_command_serves_the_servers_backend(
    tmp_path: Path, argv: list[str], server_config: str, expected: type[Any]
) -> None:
    """The command asks the backend for its policy: no flag needed with the server's config."""
    command = NetworkPolicyApp()
    command.parse_command_line(argv)
    if server_config:
        config_file = tmp_path / "jupyter_server_config.py"
        config_file.write_text(f"c.CodeWorkspacesApp.container_manager_class = {server_config!r}\n")
        command.load_config_file(str(config_file))
    assert command.backend_class() is expected
