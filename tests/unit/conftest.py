"""The fast tier: the service and the REST API over the in-memory container manager.

Nothing here reaches a Docker engine: the server's ContainerManager is InMemoryContainerManager,
pointed at a socket that does not exist so that a stray real call fails instead of working.
The same behaviours are tested against the real engine by the `docker` tier (tests/test_*.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_popebot_code.app import CodeWorkspacesApp
from jupyter_popebot_code.core.service import WorkspaceService
from jupyter_popebot_code.core.store import WorkspaceStore
from jupyter_popebot_code.core.validation import WorkspaceValidator

from ..memory_containers import InMemoryContainerManager

NO_ENGINE = "unix:///nonexistent/popebot-fast-tier.sock"


@pytest.fixture
def jp_server_config(tmp_path: Path, server_settings: dict[str, Any]) -> dict[str, Any]:
    """A real jupyter-server with the extension, whose containers live in memory."""
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": {"jupyter_popebot_code": True}},
        "CodeWorkspacesApp": {
            "db_path": str(tmp_path / "workspaces.sqlite"),
            "container_manager_class": InMemoryContainerManager,
        },
        "ContainerManager": {"docker_host": NO_ENGINE, "network": "popebot-fast-tier"},
    }
    for section, values in server_settings.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture
def app(jp_serverapp: Any) -> CodeWorkspacesApp:
    extension: CodeWorkspacesApp = jp_serverapp.web_app.settings["jupyter_popebot_code"]
    return extension


@pytest.fixture
def service(app: CodeWorkspacesApp) -> WorkspaceService:
    """The running server's service (the top-level one also cleans the engine: not needed)."""
    return app.service


@pytest.fixture
def containers(app: CodeWorkspacesApp) -> InMemoryContainerManager:
    manager = app.container_manager
    assert isinstance(manager, InMemoryContainerManager)
    return manager


@pytest.fixture
def memory() -> Iterator[InMemoryContainerManager]:
    """A stand-alone in-memory manager for service tests without a server."""
    manager = InMemoryContainerManager(docker_host=NO_ENGINE, restart_wait_timeout=5.0)
    yield manager
    manager.close()


@pytest.fixture
def workspaces(tmp_path: Path, memory: InMemoryContainerManager) -> Iterator[WorkspaceService]:
    """A WorkspaceService on a real SQLite store and the in-memory manager."""
    store = WorkspaceStore(str(tmp_path / "workspaces.sqlite"))
    validator = WorkspaceValidator("https://github.com/{repo}.git", ("https", "ssh", "git"))
    service = WorkspaceService(
        store=store, containers=memory, validator=validator, log=logging.getLogger("fast-tier")
    )
    yield service
    store.close()
