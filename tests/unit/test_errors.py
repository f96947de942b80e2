"""One error model: every exception users meet is in errors.py, answered alike from one table.

The REST API, previews and the terminal relay are tested end to end against these answers
(tests/test_api.py, tests/test_preview.py, tests/test_relay.py, tests/test_engine_outage.py);
here the table itself, so a change to an answer is one visible change.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from tornado import web

import jupyter_popebot_code
from jupyter_popebot_code import errors
from jupyter_popebot_code.errors import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_PAYLOAD,
    ENGINE_DOWN_REASON,
    PREVIEW_NOT_FOUND_MESSAGE,
    RELAY_CLOSE_CODES,
    ContainerError,
    ContainerNotRunning,
    DockerUnavailable,
    FirewallError,
    InvalidHandshake,
    InvalidInput,
    NodeUnavailable,
    NoIdentity,
    QuotaExceeded,
    ServerAtCapacity,
    Surface,
    TerminalUnavailable,
    WorkspaceNotFound,
    answer,
)

# Exceptions that never leave the module that raises them (signals between two functions).
INTERNAL = {
    "jupyter_popebot_code.terminal.ttyd_protocol.NotReady",
    # The preview's HTTP leg catches them where they are raised and answers 502 or cuts the
    # browser's connection: signals between its own parts, never an answer of their own.
    "jupyter_popebot_code.preview.upstream.HeadTimeout",
    "jupyter_popebot_code.preview.splice.BodyCutShort",
    # The stand-alone Auth.js decoder (usable outside Jupyter) keeps its own; the identity
    # provider turns them into "not signed in", never into an answer of their own.
    "jupyter_popebot_code.auth.authjs_session.SessionTokenError",
    "jupyter_popebot_code.auth.authjs_session.NoSessionCookie",
}


def package_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(jupyter_popebot_code.__path__, "jupyter_popebot_code."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseException)
                and cls.__module__ == info.name
                and not issubclass(cls, web.HTTPError)  # an answer already, not a failure
            ):
                found.append(cls)
    return found


def test_every_exception_of_the_package_is_defined_in_errors() -> None:
    elsewhere = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in package_exceptions()
        if cls.__module__ != errors.__name__
        and f"{cls.__module__}.{cls.__qualname__}" not in INTERNAL
    ]
    assert not elsewhere, f"define these in jupyter_popebot_code/errors.py: {elsewhere}"


@pytest.mark.parametrize(
    ("error", "surface", "expected"),
    [
        (InvalidInput("Name is empty.", "name"), "rest", (400, "Name is empty.")),
        (NoIdentity("no user"), "rest", (403, "no user")),
        (QuotaExceeded("3 at most"), "rest", (403, "3 at most")),
        (ServerAtCapacity("full"), "rest", (429, "full")),
        (WorkspaceNotFound("abc"), "rest", (404, "No workspace with id 'abc'.")),
        (DockerUnavailable("engine down"), "rest", (503, "engine down")),
        (NodeUnavailable("node n1 is down"), "rest", (503, "node n1 is down")),
        (ContainerError("boom"), "rest", (500, "boom")),
        (FirewallError("iptables"), "rest", (500, "iptables")),
        (ServerAtCapacity("full"), "preview", (429, "full")),
        (QuotaExceeded("3 at most"), "preview", (403, "3 at most")),
        (WorkspaceNotFound("abc"), "preview", (403, PREVIEW_NOT_FOUND_MESSAGE)),
        (DockerUnavailable("engine down"), "preview", (503, "engine down")),
        (ContainerError("boom"), "preview", (503, "The workspace could not be started: boom")),
        (DockerUnavailable("at tcp://secret"), "terminal", (1011, ENGINE_DOWN_REASON)),
        (NodeUnavailable("node n1 is down"), "terminal", (1011, "node n1 is down")),
        (QuotaExceeded("3 at most"), "terminal", (1011, "3 at most")),
        (ServerAtCapacity("full"), "terminal", (1011, "full")),
        (
            ContainerNotRunning("exited"),
            "terminal",
            (1011, "workspace container: The workspace container is exited, not running."),
        ),
        (TerminalUnavailable("did not start"), "terminal", (1011, "did not start")),
        (InvalidHandshake("not JSON"), "terminal", (CLOSE_INVALID_PAYLOAD, "not JSON")),
    ],
)
def test_each_surface_answers_as_before(
    error: Exception, surface: Surface, expected: tuple[int, str]
) -> None:
    reply = answer(error, surface)
    assert reply is not None
    assert (reply.code, reply.message) == expected


@pytest.mark.parametrize(
    ("error", "surface"),
    [
        (WorkspaceNotFound("abc"), "terminal"),  # unexpected there: 1011, logged
        (TerminalUnavailable("x"), "rest"),
        (InvalidHandshake("x"), "preview"),
        (ValueError("not ours"), "rest"),
    ],
)
def test_a_surface_that_does_not_expect_an_exception_lets_it_escape(
    error: Exception, surface: Surface
) -> None:
    assert answer(error, surface) is None


def test_the_field_at_fault_goes_into_the_answer() -> None:
    reply = answer(InvalidInput("Name is empty.", "name"), "rest")
    assert reply is not None
    assert reply.fields == {"field": "name"}


def test_braces_in_an_exception_message_are_text() -> None:
    reply = answer(ContainerError("bad {name} {0}"), "rest")
    assert reply is not None
    assert reply.message == "bad {name} {0}"


def test_every_close_code_of_the_table_is_described() -> None:
    described = {close.code for close in RELAY_CLOSE_CODES}
    used = {row.close_code for row in errors.ANSWERS if row.close_code is not None}
    assert used <= described
    assert CLOSE_INTERNAL_ERROR in described
