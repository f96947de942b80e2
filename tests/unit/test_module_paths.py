"""The 0.1 module paths that operators write in their config still import, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from jupyter_popebot_code._compat import MOVED

PACKAGE = "jupyter_popebot_code"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module(old: str) -> None:
    new = importlib.import_module(f"{PACKAGE}.{MOVED[old]}")
    sys.modules.pop(f"{PACKAGE}.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"{PACKAGE}\.{MOVED[old]}"):
        moved = importlib.import_module(f"{PACKAGE}.{old}")
    assert moved is new


@pytest.mark.parametrize(
    "dotted",
    [
        "jupyter_popebot_code.swarm.SwarmContainerManager",
        "jupyter_popebot_code.authjs.AuthJSIdentityProvider",
        "jupyter_popebot_code.containers.ContainerManager",
    ],
)
def test_config_class_paths_of_0_1_resolve(dotted: str) -> None:
    from traitlets.utils.importstring import import_item

    module, _, name = dotted.rpartition(".")
    sys.modules.pop(module, None)
    with pytest.warns() as caught:
        cls = import_item(dotted)
    assert cls.__name__ == name
    assert all(issubclass(w.category, DeprecationWarning) for w in caught)


def test_the_hub_package_keeps_the_0_1_names() -> None:
    from traitlets.utils.importstring import import_item

    from jupyter_popebot_code.hub.service import CodeWorkspacesOnlyAuthorizer, configure_jupyterhub

    assert (
        import_item(f"{PACKAGE}.hub.CodeWorkspacesOnlyAuthorizer") is CodeWorkspacesOnlyAuthorizer
    )
    assert import_item(f"{PACKAGE}.hub.configure_jupyterhub") is configure_jupyterhub


def test_python_m_of_an_old_command_path_runs_the_command() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore::DeprecationWarning",
            "-m",
            f"{PACKAGE}.network_policy_command",
            "--help",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Install or remove the workspace network" in done.stdout
