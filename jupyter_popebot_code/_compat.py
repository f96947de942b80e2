"""The module paths of 0.1, before the package was split by concern, kept importable.

Operators name classes by dotted path in their config (`container_manager_class`,
`identity_provider_class`, `jupyter_popebot_code.swarm.SwarmContainerManager`). An import of an
old path gets the module at its new place, under both names, with a DeprecationWarning that says
the new path. Two old names are packages now and need no alias: `hub` re-exports what it had,
and `preview` (never a config path) holds the proxy in `preview.proxy`. Remove in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import CodeType, ModuleType

PACKAGE = __name__.rpartition(".")[0]
# Old module name (under the package) -> its new dotted path (under the package).
MOVED = {
    "base": "web.base",
    "handlers": "web.handlers",
    "service": "core.service",
    "store": "core.store",
    "validation": "core.validation",
    "idle": "core.idle",
    "capacity": "core.capacity",
    "single_flight": "core.single_flight",
    "owner": "auth.owner",
    "authorizer": "auth.authorizer",
    "authjs": "auth.authjs",
    "authjs_session": "auth.authjs_session",
    "containers": "backends.docker.manager",
    "container_states": "backends.docker.states",
    "engine": "backends.docker.engine",
    "ports": "backends.docker.ports",
    "disks": "backends.docker.disks",
    "swarm": "backends.swarm.manager",
    "network_policy": "network.policy",
    "firewall": "network.firewall",
    "swarm_network_policy": "network.swarm_policy",
    "network_policy_command": "network.command",
    "relay": "terminal.relay",
    "ttyd": "terminal.ttyd",
    "preview_host": "preview.host",
    "preview_rules": "preview.rules",
    "hub_sync": "hub.sync",
}


class _MovedModuleLoader(importlib.abc.Loader):
    """Hands out the module at its new path; `python -m` of an old path runs the new one's code."""

    def __init__(self, new_name: str) -> None:
        self.new_name = new_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new_name} in jupyter-popebot-code 0.2; "
            "update the dotted path in your configuration",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.new_name)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: create_module returned the module, already executed."""

    def get_code(self, fullname: str) -> CodeType:
        # `python -m <old path>`: run the new module as __main__, under its own name, so its
        # relative imports resolve.
        source = f"import runpy; runpy.run_module({self.new_name!r}, run_name='__main__')"
        return compile(source, f"<{fullname} moved to {self.new_name}>", "exec")


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds `jupyter_popebot_code.<old name>` for every module that moved."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package != PACKAGE or leaf not in MOVED:
            return None
        return importlib.util.spec_from_loader(
            fullname, _MovedModuleLoader(f"{PACKAGE}.{MOVED[leaf]}")
        )


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
