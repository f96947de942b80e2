"""The package's exceptions, and the one table that turns each into what the user is told.

Every exception a user can meet is defined here, so the table below can name them all without
importing a layer above it: the REST API (`web.handlers.translate_errors`), the terminal relay
(`terminal.handler`) and previews (`preview.base`) answer from `ANSWERS`, and the docs print it
(docs/conf.py), so the three answers and their description cannot drift apart. This module
imports nothing from the package: every layer may use it. The Auth.js token errors stay in
`auth.authjs_session`, which stands alone (usable outside Jupyter); no user sees them as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# -- backends: the Docker engine and its containers -------------------------------------------


class DockerUnavailable(RuntimeError):
    """The Docker engine cannot be reached; the request may succeed once it is back."""


class NodeUnavailable(DockerUnavailable):
    """The machine that holds this workspace cannot run it now (a swarm node down or drained).

    Its message names the node and is meant for the user; other workspaces are unaffected.
    """


class ContainerError(RuntimeError):
    """Docker refused an operation on a workspace container."""


class ContainerMissing(ContainerError):
    """The container went away between two calls."""


class ContainerNotRunning(ContainerError):
    """The container is not running (`status`: Docker's, or "missing"), so it cannot be dialled."""

    def __init__(self, status: str) -> None:
        super().__init__(f"The workspace container is {status}, not running.")
        self.status = status


class DiskFull(ContainerError):
    """A disk is full (answered 507); `limit` says whose, `reason` names it for the UI.

    "host": the Docker host's (Docker's data, or the folder of the workspaces' disk images);
    "server": the Jupyter server's (its workspace records). A workspace's own disk limit fails
    writes inside it ("No space left on device"), never a request.
    """

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.reason = f"{limit}_disk_full"


class FirewallError(ContainerError):
    """The firewall rules could not be read or written."""


class ListingUnreadable(RuntimeError):
    """The exec's output is not a whole listing (Docker lost it, or the exec failed)."""


# -- core: the rules of workspaces ------------------------------------------------------------


class WorkspaceNotFound(LookupError):
    """No such workspace, or not the caller's: the two are indistinguishable on purpose."""


class QuotaExceeded(PermissionError):
    """The owner already has as many workspaces (or running ones) as they may."""

    # The limit, for the UI (docs/openapi.yaml, Error.reason).
    reason = "owner_quota"


class ServerAtCapacity(QuotaExceeded):
    """The server runs as many workspaces as it allows, all owners together (answered 429)."""

    reason = "server_capacity"


class NetworkPoolExhausted(ServerAtCapacity):
    """Every subnet of WorkspaceNetworks.pool is taken: no new workspace network until one goes."""


class SecretKeyError(ValueError):
    """A key of personal secrets (option or file) that cannot be used: the server does not start."""


class UnreadableSecret(LookupError):
    """A stored value that none of the keys decrypts (a key was dropped, or the row altered)."""


class SecretNotFound(LookupError):
    """No personal secret of that name, or not the caller's: the two are indistinguishable."""

    field = "name"


class TooManySecrets(QuotaExceeded):
    """The owner already has as many personal secrets as the server allows."""

    field = "name"


class ProfileError(ValueError):
    """CodeWorkspacesApp.profiles is malformed; the message names the entry (stops the start)."""


class ProfileForbidden(PermissionError):
    """The caller may not use this workspace profile, or may use none (answered 403)."""


class InvalidInput(ValueError):
    """A request field that cannot be accepted; `field` names it for the UI."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# -- identity -----------------------------------------------------------------------------------


class NoIdentity(PermissionError):
    """The request carries no user that could own workspaces (answered 403, never 500)."""


class AuthJSConfigError(RuntimeError):
    """The Auth.js identity provider is configured so that nobody could (safely) sign in."""


class HubError(RuntimeError):
    """The hub's API could not be used; nothing is concluded from it."""


class ServiceUserError(ValueError):
    """configure_jupyterhub was asked for a service user the hub could not start it as."""


# -- the terminal -------------------------------------------------------------------------------


class TerminalUnavailable(Exception):
    """The workspace terminal cannot be reached; the message is shown to the user."""


class InvalidHandshake(ValueError):
    """A handshake or resize message from the browser that ttyd must not be given."""


# -- WebSocket close codes (RFC 6455 §7.4; 4000-4999 are the application's) --------------------

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
# The workspace was stopped for lack of activity: final, the browser should not reconnect by
# itself (that would start it again); 4400-4499 are final for the JupyterLab front end.
CLOSE_IDLE_STOPPED = 4408
# A stopped workspace's terminals close with a final code: reconnecting would start it again.
CLOSE_WORKSPACE_STOPPED = 4409

BACKEND_LOST_REASON = "workspace terminal closed unexpectedly (container stopped?)"
SESSION_ENDED_REASON = "workspace terminal session ended"
ENGINE_DOWN_REASON = "the Docker engine is not reachable; try again later"
SHUTDOWN_REASON = "Jupyter server is shutting down"
STOPPED_REASON = "the workspace was stopped; its files are kept"
RELAY_FAILED_REASON = "the terminal relay failed (see the server log)"
PREVIEW_NOT_FOUND_MESSAGE = "No such preview for this user (wrong key, or not your workspace)."


@dataclass(frozen=True)
class CloseCode:
    """A close code the terminal relay sends the browser, and when."""

    code: int
    when: str


# Every close code the relay itself sends (ttyd's own codes are passed on as they are).
RELAY_CLOSE_CODES: tuple[CloseCode, ...] = (
    CloseCode(CLOSE_NORMAL, f"the shell exited: {SESSION_ENDED_REASON!r}"),
    CloseCode(CLOSE_GOING_AWAY, f"the Jupyter server shuts down: {SHUTDOWN_REASON!r}"),
    CloseCode(
        CLOSE_INVALID_PAYLOAD,
        "a handshake or resize ttyd must not be given (InvalidHandshake): the reason says why",
    ),
    CloseCode(
        CLOSE_POLICY_VIOLATION,
        "more terminals than `max_connections_per_workspace` or `max_connections_per_user`",
    ),
    CloseCode(
        CLOSE_INTERNAL_ERROR,
        "the terminal could not be reached or was lost: the reason is the exception's, "
        f"or {BACKEND_LOST_REASON!r}, or {RELAY_FAILED_REASON!r}",
    ),
    CloseCode(CLOSE_IDLE_STOPPED, "idle stop: 'workspace stopped after N s without activity'"),
    CloseCode(CLOSE_WORKSPACE_STOPPED, f"`POST .../stop`: {STOPPED_REASON!r}"),
)


# -- the table ----------------------------------------------------------------------------------

Surface = Literal["rest", "preview", "terminal"]


@dataclass(frozen=True)
class ErrorAnswer:
    """How one exception is answered on each surface.

    Messages are `str.format` templates: `{error}` is the exception's text, `{args}` its
    arguments. A surface whose status (or close code) is None does not expect the exception: it
    escapes as an unexpected error (500, or 1011 with RELAY_FAILED_REASON, logged).
    """

    exception: type[Exception]
    status: int | None
    message: str = "{error}"
    # Previews answer HTTP too; None: as the REST API.
    preview_status: int | None = None
    preview_message: str | None = None
    # The terminal after the upgrade (before it, the REST status and message apply).
    close_code: int | None = None
    close_reason: str | None = None
    # Attributes of the exception copied into the JSON body (the `field` at fault).
    fields: tuple[str, ...] = ()


ANSWERS: tuple[ErrorAnswer, ...] = (
    ErrorAnswer(InvalidInput, 400, fields=("field",)),
    ErrorAnswer(NoIdentity, 403),
    ErrorAnswer(ProfileForbidden, 403),
    ErrorAnswer(QuotaExceeded, 403, close_code=CLOSE_INTERNAL_ERROR, fields=("reason",)),
    # Not the caller's quota: the server is full for now, so "too many", not 403.
    ErrorAnswer(ServerAtCapacity, 429, close_code=CLOSE_INTERNAL_ERROR, fields=("reason",)),
    # Unknown and someone else's look alike; a preview also hides which of its parts was wrong.
    ErrorAnswer(
        WorkspaceNotFound,
        404,
        "No workspace with id {args[0]!r}.",
        preview_status=403,
        preview_message=PREVIEW_NOT_FOUND_MESSAGE,
    ),
    ErrorAnswer(SecretNotFound, 404, "You have no secret named {args[0]!r}.", fields=("field",)),
    ErrorAnswer(TooManySecrets, 403, fields=("field",)),
    ErrorAnswer(
        DockerUnavailable, 503, close_code=CLOSE_INTERNAL_ERROR, close_reason=ENGINE_DOWN_REASON
    ),
    # Names the node, never the engine's URL.
    ErrorAnswer(NodeUnavailable, 503, close_code=CLOSE_INTERNAL_ERROR),
    ErrorAnswer(
        ContainerError,
        500,
        preview_status=503,
        preview_message="The workspace could not be started: {error}",
        close_code=CLOSE_INTERNAL_ERROR,
        close_reason="workspace container: {error}",
    ),
    # Whose disk is full: the message says, `reason` names it (host_disk_full, server_disk_full).
    ErrorAnswer(
        DiskFull,
        507,
        preview_status=507,
        close_code=CLOSE_INTERNAL_ERROR,
        close_reason="workspace container: {error}",
        fields=("reason",),
    ),
    ErrorAnswer(TerminalUnavailable, None, close_code=CLOSE_INTERNAL_ERROR),
    ErrorAnswer(InvalidHandshake, None, close_code=CLOSE_INVALID_PAYLOAD),
)
_BY_TYPE = {answer.exception: answer for answer in ANSWERS}
# For `except`: everything the table answers somewhere (a surface that does not re-raises).
ANSWERED: tuple[type[Exception], ...] = tuple(_BY_TYPE)


@dataclass(frozen=True)
class Answer:
    """What one surface says about one exception: an HTTP status or a close code, and a text."""

    code: int
    message: str
    fields: dict[str, object]


def answer_for(error: BaseException) -> ErrorAnswer | None:
    """The table's row for `error`: its own class's, else its nearest base class's."""
    for cls in type(error).__mro__:
        row = _BY_TYPE.get(cls)
        if row is not None:
            return row
    return None


def answer(error: BaseException, surface: Surface) -> Answer | None:
    """How `surface` answers `error`, or None when it does not expect it (re-raise it)."""
    row = answer_for(error)
    if row is None:
        return None
    if surface == "terminal":
        code, template = row.close_code, row.close_reason or row.message
    elif surface == "preview" and row.preview_status is not None:
        code, template = row.preview_status, row.preview_message or row.message
    else:
        code, template = row.status, row.message
    if code is None:
        return None
    fields = {name: getattr(error, name, None) for name in row.fields}
    return Answer(code, template.format(error=error, args=error.args), fields)
