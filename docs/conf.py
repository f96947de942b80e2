"""Sphinx configuration of the jupyter-popebot-code documentation.

Built by scripts/test.sh with `sphinx-build -W --keep-going -n`: a warning (a broken internal
link, an option without help, a page outside the toctree) fails the tests. Nothing here reaches
the network: no intersphinx, no linkcheck, no assets from a CDN.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from autodoc_traits import ConfigurableDocumenter, TraitDocumenter
from sphinx.application import Sphinx
from sphinx.ext.autodoc import AttributeDocumenter
from sphinx.util import logging
from traitlets import TraitType

ROOT = Path(__file__).resolve().parent.parent
# The checkout's own package, not another installed copy: the reference documents this code.
sys.path.insert(0, str(ROOT))


project = "jupyter-popebot-code"
author = "Jupyter Pope Bot Code contributors"
copyright = author
# The one version source, as for the package (hatch-nodejs-version).
version = release = json.loads((ROOT / "labextension" / "package.json").read_text())["version"]

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "autodoc_traits",
    "sphinxcontrib.openapi",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated"]
root_doc = "index"

# MyST: heading anchors so pages link to sections (`security.md#network-isolation`).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The generated option reference: the traits' help texts; no signatures or type hints.
autodoc_typehints = "none"
autodoc_member_order = "bysource"

# Help texts are plain text (the command line prints them): `name` in them reads as code.
default_role = "literal"

html_theme = "pydata_sphinx_theme"
html_title = "jupyter-popebot-code"
html_theme_options: dict[str, Any] = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []

# The package's configurable classes, each documented on reference/options.md. A trait shows up
# under the class that defines it, unless that class is not documented itself (DockerEngine's
# options appear under ContainerManager); jupyter-server's inherited options are documented there.
DOCUMENTED_CLASSES = {
    "CodeWorkspacesApp",
    "ContainerManager",
    "WorkspaceNetworks",
    "SwarmContainerManager",
    "NetworkPolicy",
    "SwarmNetworkPolicy",
    "TerminalRelay",
    "PreviewProxy",
    "HubSync",
    "PersonalSecrets",
    "AuthJSIdentityProvider",
    "WorkspaceAuthorizer",
    "NetworkPolicyApp",
}


SHOWN_UNDER = {
    "ContainerOptions": "ContainerManager",
    "StorageOptions": "ContainerManager",
    "DockerEngine": "ContainerManager",
}


def _shown_here(documented: type, trait: TraitType[Any, Any]) -> bool:
    owner = trait.this_class
    if owner is None or not owner.__module__.startswith("jupyter_popebot_code"):
        return False
    if owner is documented:
        return True
    # Bases that two documented classes share show under one (SwarmContainerManager's page says
    # it reads every ContainerManager option).
    if owner.__name__ in SHOWN_UNDER:
        return documented.__name__ == SHOWN_UNDER[owner.__name__]
    # An undocumented base's options show under its nearest documented subclass only.
    return owner.__name__ not in DOCUMENTED_CLASSES and not any(
        base.__name__ in DOCUMENTED_CLASSES and issubclass(base, owner)
        for base in documented.__mro__[1:]
    )


logger = logging.getLogger(__name__)
# autodoc-traits warns (a Python warning, which -W does not catch) about help-less options that
# jupyter-server's classes define; the package's own are checked below, as Sphinx warnings.
warnings.filterwarnings("ignore", "\\s*Documenting .* without a help string", FutureWarning)


class OwnOptionsDocumenter(ConfigurableDocumenter):  # type: ignore[misc]
    """`autoconfigurable` listing only the options this package defines for the class."""

    def get_object_members(self, want_all: bool) -> tuple[bool, list[Any]]:
        for name, trait in self.object.class_traits(config=True).items():
            if _shown_here(self.object, trait) and not (trait.help or "").strip():
                logger.warning("%s.%s has no help text", self.object.__name__, name)
        check, members = super().get_object_members(want_all)
        kept = [
            member
            for member in members
            if not isinstance(member.object, TraitType) or _shown_here(self.object, member.object)
        ]
        return check, kept


class OptionDocumenter(TraitDocumenter):  # type: ignore[misc]
    """A trait's header with its default as traitlets shows it (a list's items, a class's name)."""

    def add_directive_header(self, sig: str) -> None:
        trait = self.object
        prefix = f"c.{self.format_name()} = " if trait.metadata.get("config") else ""
        self.options.annotation = f"{prefix}{type(trait).__name__}({trait.default_value_repr()})"
        AttributeDocumenter.add_directive_header(self, sig)


# reST markup that plain help text may hold by accident: `*.localhost`, `a|b`, `AUTH_SECRET_`.
_MARKUP = re.compile(r"([*|\\])|(?<=\w)_(?=\W|$)")


def _plain_help(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if isinstance(obj, TraitType):
        lines[:] = [_MARKUP.sub(lambda m: "\\" + m.group(0), line) for line in lines]


def module_map() -> str:
    """A Markdown table of the package's modules, each with its docstring's first sentence.

    Written at every build (docs/_generated/modules.md, included by architecture.md), so the
    map of the code can never leave a module out or describe one that is gone.
    """
    import importlib
    import pkgutil

    import jupyter_popebot_code

    rows = ["| module | what it is |", "| --- | --- |"]
    package = jupyter_popebot_code.__path__
    modules = pkgutil.walk_packages(package, "jupyter_popebot_code.")
    for info in sorted(modules, key=lambda info: info.name):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue  # generated (_version) or private
        module = importlib.import_module(info.name)
        doc = (module.__doc__ or "").strip()
        if not doc:
            logger.warning("module %s has no docstring", info.name)
        summary = " ".join(doc.split("\n\n", 1)[0].split()).replace("|", "\\|")
        rows.append(f"| `{info.name}` | {summary} |")
    return "\n".join(rows) + "\n"


def _message(template: str) -> str:
    """A message template of errors.ANSWERS as the docs show it."""
    if template == "{error}":
        return "its message"
    text = template.replace("{error}", "<its message>").replace("{args[0]!r}", "'<id>'")
    return f"`{text}`".replace("|", "\\|")


def errors_table() -> str:
    """A Markdown table of errors.ANSWERS: each exception's answer on every surface."""
    from jupyter_popebot_code.errors import ANSWERS

    rows = [
        "| exception | REST API | previews | terminal, after the upgrade |",
        "| --- | --- | --- | --- |",
    ]
    for row in ANSWERS:
        rest = f"{row.status}, {_message(row.message)}" if row.status else "not raised"
        if row.preview_status is None:
            preview = "as the REST API" if row.status else "not raised"
        else:
            preview = f"{row.preview_status}, {_message(row.preview_message or row.message)}"
        if row.close_code is None:
            terminal = "unexpected: 1011, logged"
        else:
            terminal = f"{row.close_code}, {_message(row.close_reason or row.message)}"
        doc = " ".join((row.exception.__doc__ or "").split("\n\n", 1)[0].split())
        name = f"`{row.exception.__name__}`: {doc}".replace("|", "\\|")
        rows.append(f"| {name} | {rest} | {preview} | {terminal} |")
    return "\n".join(rows) + "\n"


def close_codes_table() -> str:
    """A Markdown table of the close codes the terminal relay sends, and which errors lead there."""
    from jupyter_popebot_code.errors import ANSWERS, RELAY_CLOSE_CODES

    rows = ["| code | when | exceptions |", "| --- | --- | --- |"]
    for close in RELAY_CLOSE_CODES:
        raised = ", ".join(
            f"`{r.exception.__name__}`" for r in ANSWERS if r.close_code == close.code
        )
        when = close.when.replace("|", "\\|")
        rows.append(f"| {close.code} | {when} | {raised or '-'} |")
    return "\n".join(rows) + "\n"


def _write_generated(app: Sphinx) -> None:
    generated = Path(app.srcdir) / "_generated"
    generated.mkdir(exist_ok=True)
    for name, text in (
        ("modules.md", module_map()),
        ("errors.md", errors_table()),
        ("close-codes.md", close_codes_table()),
    ):
        target = generated / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def setup(app: Sphinx) -> None:
    app.connect("builder-inited", _write_generated)
    app.add_autodocumenter(OwnOptionsDocumenter, override=True)
    app.add_autodocumenter(OptionDocumenter, override=True)
    app.connect("autodoc-process-docstring", _plain_help)
