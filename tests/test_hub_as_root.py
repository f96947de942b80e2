"""configure_jupyterhub(c) as it comes, on one machine: the hub runs as root, no user= given.

The service then runs as root as well (the hub's own user); it must start, and a user must be
able to log in and make a workspace, exactly as with a dedicated service user (tests/test_hub.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .hub_fixture import ALICE, BASE_URL, SERVICE, Hub, page_config, running_hub

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def root_hub(workspace_image: str, docker_client: docker.DockerClient) -> Iterator[Hub]:
    if os.geteuid() != 0:
        pytest.fail("the hub tests create unix users and run JupyterHub as root")
    # No service user and no idle_timeout: the defaults are what is tested.
    with running_hub(workspace_image, docker_client, service_user=None, idle_timeout=None) as hub:
        yield hub


def service_uids(hub: Hub) -> list[int]:
    """The real uids of the processes running this hub's code-workspaces service."""
    config = f"--config={hub.work_dir}/service_config.py".encode()
    uids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue  # ended meanwhile
        if b"jupyter_popebot_code.hub" in argv and config in argv:
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            uids.append(int(uid_line.split()[1]))
    return uids


def test_the_service_runs_as_root_and_a_user_creates_a_workspace(
    root_hub: Hub, docker_client: docker.DockerClient
) -> None:
    assert service_uids(root_hub) == [0]
    root_hub.start_server(ALICE)
    lab = root_hub.browser_login(ALICE, f"{BASE_URL}user/{ALICE}/lab")
    config = page_config(lab.text)
    assert config["codeWorkspacesServiceUrl"] == f"{BASE_URL}services/{SERVICE}/"
    token = config["token"]

    created = root_hub.service(token, "POST", json={"name": "made as root"})
    assert created.status_code == 201, created.text
    workspace = created.json()
    assert docker_client.containers.get(workspace["container_name"]).status == "running"
    listed = root_hub.service(token, "GET")
    assert [ws["id"] for ws in listed.json()["workspaces"]] == [workspace["id"]]


def test_the_service_stops_idle_workspaces_by_default(root_hub: Hub) -> None:
    log = (root_hub.work_dir / "jupyterhub.log").read_text()
    assert "Idle stop after 3600 s without activity (the default on a multi-user server" in log
