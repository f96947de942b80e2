"""JupyterHub service mode: the hub-managed service that holds the Docker socket for every user.

`from jupyter_popebot_code.hub import configure_jupyterhub` in `jupyterhub_config.py`;
`python -m jupyter_popebot_code.hub` is the service's command.
"""

from ..errors import ServiceUserError
from .service import (
    DEFAULT_SERVICE_NAME,
    DEFAULT_SERVICE_PORT,
    SERVICE_NAME_ENV,
    SERVICE_SCOPES,
    SERVICE_URL_ENV,
    CodeWorkspacesOnlyAuthorizer,
    access_scope,
    check_service_user,
    configure_jupyterhub,
    service_command,
    service_url_from_environment,
)

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_SERVICE_PORT",
    "SERVICE_NAME_ENV",
    "SERVICE_SCOPES",
    "SERVICE_URL_ENV",
    "CodeWorkspacesOnlyAuthorizer",
    "ServiceUserError",
    "access_scope",
    "check_service_user",
    "configure_jupyterhub",
    "service_command",
    "service_url_from_environment",
]
