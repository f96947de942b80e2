"""configure_jupyterhub: what one line adds to a hub's configuration, and what it leaves alone."""

from __future__ import annotations

import os
import pwd
import runpy
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from jupyter_popebot_code.errors import ServiceUserError
from jupyter_popebot_code.hub.service import (
    SERVICE_ARGS,
    SERVICE_NAME_ENV,
    SERVICE_SCOPES,
    SERVICE_URL_ENV,
    configure_jupyterhub,
    service_url_from_environment,
)

ROOT = Path(__file__).resolve().parent.parent
# A user the test's own process may run the service as, root or not.
ME = pwd.getpwuid(os.geteuid()).pw_name


def test_defaults_work_on_one_machine() -> None:
    c = Config()
    service = configure_jupyterhub(c)
    assert c.JupyterHub.services == [service]
    assert service["name"] == "code-workspaces"
    assert service["url"] == "http://127.0.0.1:10101"
    assert service["command"] == [sys.executable, "-m", "jupyter_popebot_code.hub"]
    assert "user" not in service  # the hub's own user
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["user"]["scopes"] == ["self", "access:services!service=code-workspaces"]
    assert roles["code-workspaces-service"] == {
        "name": "code-workspaces-service",
        "services": ["code-workspaces"],
        "scopes": SERVICE_SCOPES,
    }
    assert c.Spawner.oauth_client_allowed_scopes == ["access:services!service=code-workspaces"]
    assert c.Spawner.environment == {SERVICE_NAME_ENV: "code-workspaces"}


def test_options_and_existing_configuration_are_kept() -> None:
    c = Config()
    c.JupyterHub.services.append({"name": "idle-culler", "command": ["cull"]})
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:groups"]}]
    c.Spawner.environment = {"TZ": "UTC"}
    c.Spawner.oauth_client_allowed_scopes = ["custom:scope"]
    service = configure_jupyterhub(
        c,
        name="ws",
        user=ME,
        port=9999,
        config_file="/etc/ws.py",
        python="/opt/py/bin/python",
        environment={"DOCKER_HOST": "unix:///run/docker.sock"},
    )
    assert [s["name"] for s in c.JupyterHub.services] == ["idle-culler", "ws"]
    assert service["user"] == ME
    assert service["url"] == "http://127.0.0.1:9999"
    assert service["command"] == [
        "/opt/py/bin/python", "-m", "jupyter_popebot_code.hub", "--config=/etc/ws.py",
    ]  # fmt: skip
    assert service["environment"] == {"DOCKER_HOST": "unix:///run/docker.sock"}
    user_roles = [role for role in c.JupyterHub.load_roles if role["name"] == "user"]
    assert user_roles == [
        {"name": "user", "scopes": ["self", "read:groups", "access:services!service=ws"]}
    ]
    assert c.Spawner.environment == {"TZ": "UTC", SERVICE_NAME_ENV: "ws"}
    assert c.Spawner.oauth_client_allowed_scopes == ["custom:scope", "access:services!service=ws"]


def test_the_service_serves_only_this_extension() -> None:
    assert "--ServerApp.terminals_enabled=False" in SERVICE_ARGS
    assert (
        "--ServerApp.authorizer_class=jupyter_popebot_code.hub.CodeWorkspacesOnlyAuthorizer"
        in SERVICE_ARGS
    )


def test_the_example_configuration_loads() -> None:
    c = Config()
    runpy.run_path(str(ROOT / "examples" / "jupyterhub_config.py"), {"get_config": lambda: c})
    (service,) = c.JupyterHub.services
    assert "user" not in service  # works unchanged with the hub as root (tests/test_hub_as_root.py)
    assert c.Spawner.environment[SERVICE_NAME_ENV] == "code-workspaces"


def test_a_service_user_that_does_not_exist_is_refused_with_what_to_pass() -> None:
    c = Config()
    with pytest.raises(ServiceUserError) as refused:
        configure_jupyterhub(c, user="pbh-no-such-user")
    message = str(refused.value)
    assert "there is no unix user 'pbh-no-such-user'" in message
    assert "useradd --system --create-home --groups docker pbh-no-such-user" in message
    assert "leave user= out" in message
    assert "services" not in c.JupyterHub  # nothing half-configured


def test_a_hub_not_running_as_root_cannot_name_another_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setattr(os, "geteuid", lambda: nobody.pw_uid)
    with pytest.raises(ServiceUserError) as refused:
        configure_jupyterhub(Config(), user="root")
    assert str(refused.value) == (
        "configure_jupyterhub(user='root'): the hub runs as 'nobody', not root, so it cannot "
        "start the service as 'root'. Leave user= out (the service then runs as 'nobody', which "
        "needs access to the Docker socket), or run the hub as root."
    )
    # Its own user is fine, and so is none.
    assert configure_jupyterhub(Config(), user="nobody")["user"] == "nobody"
    assert "user" not in configure_jupyterhub(Config())


def test_a_single_user_server_finds_the_service_under_the_hubs_base_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SERVICE_URL_ENV, raising=False)
    monkeypatch.delenv(SERVICE_NAME_ENV, raising=False)
    assert service_url_from_environment() == ""
    monkeypatch.setenv(SERVICE_NAME_ENV, "code-workspaces")
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/jupyter/")
    assert service_url_from_environment() == "/jupyter/services/code-workspaces/"
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")
    assert service_url_from_environment() == "/services/code-workspaces/"
    monkeypatch.setenv(SERVICE_URL_ENV, "/elsewhere/")
    assert service_url_from_environment() == "/elsewhere/"
