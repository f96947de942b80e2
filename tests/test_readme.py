"""README.md lists every option a deployment can set."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Configurable, LoggingConfigurable

from jupyter_popebot_code.app import CodeWorkspacesApp
from jupyter_popebot_code.authjs import AuthJSIdentityProvider
from jupyter_popebot_code.containers import ContainerManager
from jupyter_popebot_code.network_policy import NetworkPolicy
from jupyter_popebot_code.preview import PreviewProxy
from jupyter_popebot_code.relay import TerminalRelay
from jupyter_popebot_code.swarm import SwarmContainerManager
from jupyter_popebot_code.swarm_network_policy import SwarmNetworkPolicy

README = (Path(__file__).parent.parent / "README.md").read_text()
OWN_OPTIONS: list[tuple[type[Configurable], set[str]]] = [
    # Options inherited from jupyter_server's classes are documented there.
    (CodeWorkspacesApp, set(CodeWorkspacesApp.class_traits(config=True))
     - set(CodeWorkspacesApp.__mro__[1].class_traits(config=True))),
    (ContainerManager, set(ContainerManager.class_traits(config=True))
     - set(LoggingConfigurable.class_traits(config=True))),
    (SwarmContainerManager, set(SwarmContainerManager.class_own_traits(config=True))),
    (NetworkPolicy, set(NetworkPolicy.class_own_traits(config=True))),
    (SwarmNetworkPolicy, set(SwarmNetworkPolicy.class_own_traits(config=True))),
    (TerminalRelay, set(TerminalRelay.class_own_traits(config=True))),
    (PreviewProxy, set(PreviewProxy.class_own_traits(config=True))),
    (AuthJSIdentityProvider, set(AuthJSIdentityProvider.class_own_traits(config=True))),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "names"), OWN_OPTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_option_is_in_the_readme(cls: type[Configurable], names: set[str]) -> None:
    assert f"`{cls.__name__}`" in README
    missing = sorted(name for name in names if f"`{name}`" not in README)
    assert missing == [], f"{cls.__name__} options missing from README.md: {missing}"


def test_every_option_has_a_help_text() -> None:
    for cls, names in OWN_OPTIONS:
        for name in names:
            assert cls.class_traits()[name].help.strip(), f"{cls.__name__}.{name} has no help"
