"""JupyterHub service mode: one hub-managed service holds the Docker socket for every user.

`configure_jupyterhub(c)` in `jupyterhub_config.py` adds the service, the roles that let users
reach it and let it read users and report their activity, and tells single-user servers where
the service is (their JupyterLab talks to it; they need no Docker access). `python -m
jupyter_popebot_code.hub` is the service's command: jupyterhub-singleuser, authenticating users
through the hub's OAuth and tokens, with an authorizer that answers only this extension's API.
"""

from __future__ import annotations

import os
import pwd
import sys
from typing import Any

from jupyter_server.auth.authorizer import Authorizer

from ..auth.owner import AUTH_RESOURCE
from ..errors import ServiceUserError

DEFAULT_SERVICE_NAME = "code-workspaces"
DEFAULT_SERVICE_PORT = 10101
# In a single-user server's environment: the service's name (configure_jupyterhub sets it; the
# server makes the URL with the hub's base URL), or a full URL that overrides it.
SERVICE_NAME_ENV = "JUPYTER_POPEBOT_CODE_SERVICE_NAME"
SERVICE_URL_ENV = "JUPYTER_POPEBOT_CODE_SERVICE_URL"
# What the service's own token may do: see users (to clean up after deleted ones) and their
# servers (to report activity on them), and report users' activity.
SERVICE_SCOPES = ["list:users", "read:users:name", "read:servers", "users:activity"]


def service_url_from_environment() -> str:
    """The service's URL for a single-user server under the hub, or "" when there is none."""
    explicit = os.environ.get(SERVICE_URL_ENV, "")
    name = os.environ.get(SERVICE_NAME_ENV, "")
    if explicit or not name:
        return explicit
    # The spawner gives single-user servers the hub's base URL (e.g. "/" or "/jupyter/").
    base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    return f"{base.rstrip('/')}/services/{name}/"


def access_scope(service_name: str) -> str:
    """The scope that lets a user (or a token) use the service."""
    return f"access:services!service={service_name}"


def service_command(config_file: str | None = None, python: str | None = None) -> list[str]:
    """The command the hub runs for the service."""
    command = [python or sys.executable, "-m", "jupyter_popebot_code.hub"]
    if config_file:
        command.append(f"--config={config_file}")
    return command


def check_service_user(user: str | None) -> None:
    """Refuse, while the hub reads its configuration, a service user it could not become.

    Otherwise the hub starts, fails to start the service, and stops with a traceback that does
    not say which option to change.
    """
    if not user:
        return  # the hub's own user: works as root too (see main)
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ServiceUserError(
            f"configure_jupyterhub(user={user!r}): there is no unix user {user!r}. Create it "
            f"(useradd --system --create-home --groups docker {user}), or leave user= out to "
            "run the service as the hub's own user."
        ) from None
    uid = os.geteuid()
    hub_user = pwd.getpwuid(uid).pw_name
    if uid != 0 and hub_user != user:
        raise ServiceUserError(
            f"configure_jupyterhub(user={user!r}): the hub runs as {hub_user!r}, not root, so it "
            f"cannot start the service as {user!r}. Leave user= out (the service then runs as "
            f"{hub_user!r}, which needs access to the Docker socket), or run the hub as root."
        )


def _materialized(section: Any, name: str, empty: Any) -> Any:
    """The current value of a config entry as a plain list or dict (lazy values applied)."""
    value = section.get(name, empty)
    if hasattr(value, "get_value"):  # traitlets' LazyConfigValue (e.g. after an .append)
        value = value.get_value(empty)
    return type(empty)(value)


def configure_jupyterhub(
    c: Any,
    *,
    name: str = DEFAULT_SERVICE_NAME,
    user: str | None = None,
    port: int = DEFAULT_SERVICE_PORT,
    config_file: str | None = None,
    python: str | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Add the code-workspaces service to a JupyterHub configuration `c`; answers its entry.

    - `name`: the service's name; it is served at /services/<name>/.
    - `user`: the unix user the service runs as (the hub must run as root to switch to it);
      only this user needs Docker access. Default: the hub's own user, root included (the
      service then allows itself to run as root: see main). A user that does not exist, or
      one a hub not running as root cannot become, is refused here with what to pass instead.
    - `port`: the loopback port the service listens on.
    - `config_file`: a jupyter_server config file for the service (CodeWorkspacesApp,
      ContainerManager, ... options).
    - `python`: the interpreter that runs the service (default: the hub's).
    - `environment`: more environment variables for the service.
    """
    check_service_user(user)
    service: dict[str, Any] = {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": service_command(config_file, python),
        "environment": dict(environment or {}),
        # Users are sent through the hub's OAuth once; asking them to confirm adds nothing.
        "oauth_no_confirm": True,
    }
    if user:
        service["user"] = user
    services = _materialized(c.JupyterHub, "services", [])
    services.append(service)
    c.JupyterHub.services = services

    # Every user may use the service: the built-in `user` role gets the access scope.
    roles = _materialized(c.JupyterHub, "load_roles", [])
    user_role = next((role for role in roles if role.get("name") == "user"), None)
    if user_role is None:
        user_role = {"name": "user", "scopes": ["self"]}
        roles.append(user_role)
    user_role["scopes"] = [*user_role.get("scopes", ["self"]), access_scope(name)]
    roles.append({"name": f"{name}-service", "services": [name], "scopes": SERVICE_SCOPES})
    c.JupyterHub.load_roles = roles

    # A user's JupyterLab page holds a token that may call the service...
    allowed = _materialized(c.Spawner, "oauth_client_allowed_scopes", [])
    allowed.append(access_scope(name))
    c.Spawner.oauth_client_allowed_scopes = allowed
    # ...and learns where it is from its server's environment (same origin, through the proxy).
    env = _materialized(c.Spawner, "environment", {})
    env[SERVICE_NAME_ENV] = name
    c.Spawner.environment = env
    return service


class CodeWorkspacesOnlyAuthorizer(Authorizer):
    """Allows hub users with access to the service this extension's API and relay, nothing else.

    The service is a Jupyter server that can reach the Docker socket: its contents, kernels and
    terminals APIs must answer no one, or any user could run commands with its rights.
    """

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if resource != AUTH_RESOURCE:
            return False
        hub_auth = getattr(self.identity_provider, "hub_auth", None)
        hub_user = getattr(user, "hub_user", None)
        if hub_auth is None or not isinstance(hub_user, dict):
            return False
        # jupyterhub's own JupyterHubAuthorizer checks the same: the access scope of the service.
        return bool(hub_auth.check_scopes(hub_auth.oauth_scopes, hub_user))


# Options the service always runs with (command-line options win over any config file): only
# this extension's API, no terminals, no JupyterLab pages.
SERVICE_ARGS = [
    "--ServerApp.authorizer_class=jupyter_popebot_code.hub.CodeWorkspacesOnlyAuthorizer",
    "--ServerApp.terminals_enabled=False",
    # The terminal is a WebSocket, which a browser cannot give an Authorization header: its
    # token comes as ?token=. JupyterHub takes that by default only with Sec-Fetch-Mode:
    # websocket, which Chromium did not send to a plain-http hub in the browser test. The service
    # serves nothing but the workspace API and relay, and jupyter-server keeps tokens out of its
    # logs.
    "--HubOAuth.allow_token_in_url=True",
    "--ServerApp.jpserver_extensions=jupyter_popebot_code=True",
    "--ServerApp.jpserver_extensions=jupyterlab=False",
    "--ServerApp.jpserver_extensions=notebook=False",
    "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    "--ServerApp.jpserver_extensions=nbclassic=False",
]


def main(argv: list[str] | None = None) -> None:
    """Run the service: jupyterhub-singleuser with the options above."""
    if not os.environ.get("JUPYTERHUB_SERVICE_NAME"):
        sys.exit("jupyter_popebot_code.hub runs as a JupyterHub service: see configure_jupyterhub.")
    from jupyterhub.singleuser import main as singleuser_main

    args = sys.argv[1:] if argv is None else argv
    singleuser_main([*SERVICE_ARGS, *_root_args(), *args])


def _root_args() -> list[str]:
    """--allow-root when the service runs as root: a hub running as root starts it so by default.

    jupyter-server refuses root to keep notebooks and terminals from running with its rights;
    the service runs neither (SERVICE_ARGS, CodeWorkspacesOnlyAuthorizer), and what it holds,
    the Docker socket, is root-equivalent under any user. A separate user (configure_jupyterhub
    user=) changes who owns its files, not what it can do.
    """
    return ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
