"""Docker code workspaces for Jupyter: a server extension, a terminal relay and a JupyterLab UI."""

from __future__ import annotations

from typing import Any

from . import _compat
from .app import CodeWorkspacesApp

try:
    # Written at build time from labextension/package.json, the one version source.
    from ._version import __version__
except ImportError:  # a source tree that was never built or installed
    __version__ = "0+unknown"
__all__ = ["CodeWorkspacesApp", "__version__"]
_compat.install()


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "jupyter_popebot_code", "app": CodeWorkspacesApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-popebot-code"}]
