"""What a user is told when the Docker engine cannot be used (fast tier, no engine)."""

from __future__ import annotations

from collections.abc import Iterator

import docker.errors
import pytest
import requests.exceptions
from urllib3.exceptions import ProtocolError

from jupyter_popebot_code.backends.docker.engine import redact_url
from jupyter_popebot_code.backends.docker.manager import ContainerManager
from jupyter_popebot_code.errors import DockerUnavailable


def refused_by(error: OSError) -> docker.errors.DockerException:
    """The exception docker-py raises when negotiating the API version fails with `error`."""
    aborted = ProtocolError("Connection aborted.", error)
    try:
        try:
            raise aborted
        except ProtocolError as err:
            raise requests.exceptions.ConnectionError(err) from err
    except requests.exceptions.ConnectionError as err:
        wrapped = docker.errors.DockerException(f"Error while fetching server API version: {err}")
        wrapped.__cause__ = err
        return wrapped


@pytest.fixture
def manager() -> Iterator[ContainerManager]:
    manager = ContainerManager(docker_host="tcp://ops:hunter2@127.0.0.1:2375")
    yield manager
    manager.close()


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (PermissionError(13, "Permission denied"), "may not use the Docker socket"),
        (ConnectionRefusedError(111, "Connection refused"), "is not reachable"),
    ],
)
async def test_the_message_names_the_cause_and_hides_the_urls_credentials(
    manager: ContainerManager, monkeypatch: pytest.MonkeyPatch, error: OSError, says: str
) -> None:
    def refuse() -> None:
        raise refused_by(error)

    monkeypatch.setattr(manager, "_new_client", refuse)
    with pytest.raises(DockerUnavailable) as raised:
        await manager.state("code-workspace-x")
    assert says in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert "ops" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("tcp://ops:hunter2@host:2376", "tcp://***@host:2376"),
        ("ssh://deploy@host", "ssh://***@host"),
        ("unix:///var/run/docker.sock", "unix:///var/run/docker.sock"),
        ("tcp://host:2376", "tcp://host:2376"),
    ],
)
def test_engine_urls_are_shown_without_their_user_part(url: str, shown: str) -> None:
    assert redact_url(url) == shown
