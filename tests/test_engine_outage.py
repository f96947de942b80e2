"""The Docker engine going away: clear 503s, nothing lost, everything back once it returns."""

from __future__ import annotations

import asyncio
from typing import Any

import docker
import pytest

from .conftest import Api, wait_for
from .docker_proxy import DockerSocketProxy


@pytest.fixture
def server_settings(engine: DockerSocketProxy) -> dict[str, Any]:
    return {"ContainerManager": {"docker_host": engine.url}}


def assert_engine_message(reply: dict[str, Any]) -> None:
    assert "Docker engine" in reply["message"]
    assert "not reachable" in reply["message"]


async def test_outage_answers_503_and_loses_nothing(
    api: Api, engine: DockerSocketProxy, docker_client: docker.DockerClient
) -> None:
    kept = await api.create(name="kept")
    engine.stop()

    async def listed_as_unknown() -> bool:
        # Once the event stream has noticed (moments), statuses are unknown, not remembered.
        code, listed = await api.call("GET")
        assert code == 200
        return [(w["id"], w["container"]["status"]) for w in listed["workspaces"]] == [
            (kept["id"], "unknown")
        ]

    await wait_for(listed_as_unknown, timeout=10, interval=0.05)
    code, reply = await api.call("POST", body={"name": "during outage"})
    assert code == 503
    assert_engine_message(reply)
    code, reply = await api.call("POST", f"{kept['id']}/ensure")
    assert code == 503
    assert reply["status"] == "error"
    assert_engine_message(reply)
    code, reply = await api.call("DELETE", kept["id"])
    assert code == 503
    assert_engine_message(reply)
    assert (await api.call("GET", kept["id"]))[0] == 503
    # What needs no engine keeps working.
    assert (await api.call("PATCH", kept["id"], body={"name": "renamed"}))[0] == 200

    code, listed = await api.call("GET")
    assert [w["name"] for w in listed["workspaces"]] == ["renamed"]
    assert docker_client.containers.get(kept["container_name"]).status == "running"

    engine.start()
    assert await api.call("POST", f"{kept['id']}/ensure") == (200, {"status": "running"})
    assert (await api.call("DELETE", kept["id"]))[0] == 204
    assert await api.call("GET") == (200, {"workspaces": []})


@pytest.fixture
def engine_down_at_start(engine: DockerSocketProxy) -> DockerSocketProxy:
    engine.stop()
    return engine


async def test_server_starts_without_the_engine_and_works_once_it_is_back(
    engine_down_at_start: DockerSocketProxy, api: Api
) -> None:
    assert await api.call("GET") == (200, {"workspaces": []})
    code, reply = await api.call("POST", body={"name": "too early"})
    assert code == 503
    assert_engine_message(reply)
    assert await api.call("GET") == (200, {"workspaces": []})

    engine_down_at_start.start()
    workspace = await api.create(name="on time")
    code, described = await api.call("GET", workspace["id"])
    assert (code, described["container"]["status"]) == (200, "running")


@pytest.mark.parametrize(
    "server_settings", [{"ContainerManager": {"image": "popebot-no-such-image:latest"}}]
)
async def test_create_with_a_missing_image_leaves_nothing(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    code, reply = await api.call("POST", body={"name": "no image"})
    assert code == 500
    assert "scripts/build-image.sh" in reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})
    label = f"org.jupyter.popebot-code.store={service.store.store_id}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.volumes.list(filters={"label": label}) == []


@pytest.mark.parametrize(
    "server_settings",
    # A closed port on loopback: the URL's user and password must never reach a caller.
    [{"ContainerManager": {"docker_host": "tcp://operator:s3cret-pw@127.0.0.1:9"}}],
)
async def test_engine_errors_never_show_the_engine_urls_credentials(api: Api) -> None:
    code, reply = await api.call("POST", body={"name": "anything"})
    assert code == 503
    assert_engine_message(reply)
    assert "s3cret-pw" not in reply["message"]
    assert "operator" not in reply["message"]
    assert "tcp://***@127.0.0.1:9" in reply["message"]


async def test_shutdown_never_waits_on_a_stalled_engine(
    engine: DockerSocketProxy, api: Api, jp_serverapp: Any
) -> None:
    """A Docker call stuck inside the engine client must not hold the event loop at shutdown."""
    app = jp_serverapp.web_app.settings["jupyter_popebot_code"]
    app.container_manager.docker_timeout = 20
    app.container_manager._drop_client()  # the next call negotiates the API version afresh
    engine.stalled = True
    stuck = asyncio.ensure_future(api.call("POST", body={"name": "stuck"}))
    await asyncio.sleep(1)  # the create is now waiting on the engine, holding the client lock
    loop = asyncio.get_running_loop()
    started = loop.time()
    await app.service.close()
    assert loop.time() - started < 2, "closing the service blocked the event loop"
    engine.stop()  # the stuck call fails now; the server is closed either way
    stuck.cancel()
