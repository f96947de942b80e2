"""Container states from Docker's event stream: seeded, followed, re-seeded after an outage."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL, STORE_LABEL

from .conftest import TEST_NETWORK, Api, wait_for
from .docker_proxy import DockerSocketProxy


async def listed_status(api: Api, workspace_id: str) -> str:
    code, listed = await api.call("GET")
    assert code == 200
    return next(w["container"]["status"] for w in listed["workspaces"] if w["id"] == workspace_id)


class TestThroughACuttableEngine:
    @pytest.fixture
    def server_settings(self, engine: DockerSocketProxy) -> dict[str, Any]:
        return {"ContainerManager": {"docker_host": engine.url}}

    async def test_a_change_while_the_stream_is_down_shows_once_it_is_back(
        self, api: Api, engine: DockerSocketProxy, docker_client: docker.DockerClient
    ) -> None:
        workspace = await api.create()
        assert await listed_status(api, workspace["id"]) == "running"
        engine.stop()
        # Behind the server's back, through the real socket, while its stream is cut.
        docker_client.containers.get(workspace["container_name"]).stop(timeout=1)
        engine.start()

        async def shows_exited() -> bool:
            return await listed_status(api, workspace["id"]) == "exited"

        await wait_for(shows_exited, timeout=10, interval=0.05)


async def test_containers_of_another_store_are_not_tracked(
    api: Api, jp_serverapp: Any, workspace_image: str, docker_client: docker.DockerClient
) -> None:
    states = jp_serverapp.web_app.settings["jupyter_popebot_code"].container_manager.states
    ours = await api.create()
    theirs = docker_client.containers.run(
        workspace_image,
        name=f"{TEST_NETWORK}-other-store",
        labels={MANAGED_BY_LABEL: "tests", STORE_LABEL: "another-store"},
        environment={"TTYD_CREDENTIAL": "coder:other"},
        network=TEST_NETWORK,
        detach=True,
    )
    try:
        theirs.pause()
        ours_container = docker_client.containers.get(ours["container_name"])
        ours_container.pause()  # an event after theirs: once it is seen, theirs was skipped
        await wait_for(lambda: states.statuses([ours["container_name"]]) == {
            ours["container_name"]: "paused"
        }, timeout=10, interval=0.05)  # fmt: skip
        assert states.statuses([theirs.name]) == {}
        assert states.get(theirs.name) is None
        ours_container.unpause()
    finally:
        theirs.remove(force=True)
