"""What the docs' Sphinx build (-W -n, in scripts/test.sh) cannot check by itself.

The build fails on a broken internal link, a page outside the toctree or a help-less option of a
class it documents; these tests check that the README's commands and links lead somewhere, that
every option of the package has a help text, and that every configurable class is documented.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest
from traitlets import HasTraits

import jupyter_popebot_code

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
PACKAGE_DIR = Path(jupyter_popebot_code.__file__).parent
# Written `.tag(config=True)`, possibly across lines, in the package's source.
CONFIG_TAG = re.compile(r"\.tag\(\s*config\s*=\s*True\s*\)")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
AUTOCONFIGURABLE = re.compile(r"^\.\. autoconfigurable:: ([\w.]+)$", re.MULTILINE)


def package_modules() -> list[ModuleType]:
    found = pkgutil.walk_packages([str(PACKAGE_DIR)], "jupyter_popebot_code.")
    # A __main__ runs its command when imported.
    names = [info.name for info in found if not info.name.endswith(".__main__")]
    return [importlib.import_module(name) for name in names]


def configurable_classes() -> list[type[HasTraits]]:
    """Every class of the package that defines options of its own."""
    found: dict[str, type[HasTraits]] = {}
    for module in package_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, HasTraits)
                and cls.__module__ == module.__name__
                and cls.class_own_traits(config=True)
            ):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return sorted(found.values(), key=lambda cls: (cls.__module__, cls.__qualname__))


def resolve(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert inspect.isclass(cls), dotted
    return cls


def docs_conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("popebot_docs_conf", DOCS / "conf.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["scripts/run.sh", "scripts/test.sh"])
def test_the_readme_commands_are_the_scripts(script: str) -> None:
    path = ROOT / script
    assert f"\n{script} " in README, f"README.md does not give the command {script}"
    assert path.is_file(), script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"


def test_the_fast_tier_the_readme_names_exists() -> None:
    assert "\nscripts/test.sh --fast " in README
    assert '"${1:-}" = "--fast"' in (ROOT / "scripts" / "test.sh").read_text()


def test_the_test_command_builds_the_docs_with_warnings_as_errors() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "sphinx-build -q -W --keep-going -n -b html docs docs/_build/html" in script
    # Before the tiers part ways, so both the full suite and --fast build them.
    assert script.index("sphinx-build") < script.index('if [ "$fast" = 1 ]; then\n\techo')


def test_every_readme_link_leads_to_a_file_and_doc_links_to_a_page() -> None:
    links = [link for link in MARKDOWN_LINK.findall(README) if "://" not in link]
    assert links
    for link in links:
        target = ROOT / link.split("#", 1)[0]
        assert target.exists(), f"README.md links to {link}, which does not exist"
        if target.suffix == ".md" and DOCS in target.parents:
            assert "_build" not in target.parts


def test_every_option_of_the_package_has_a_help_text() -> None:
    options = {
        f"{cls.__qualname__}.{name}": trait
        for cls in configurable_classes()
        for name, trait in cls.class_own_traits(config=True).items()
    }
    # Every `.tag(config=True)` in the source is one of them: no option is missed by the search.
    tags = sum(len(CONFIG_TAG.findall(path.read_text())) for path in PACKAGE_DIR.rglob("*.py"))
    assert len(options) == tags, (sorted(options), tags)
    helpless = sorted(name for name, trait in options.items() if not (trait.help or "").strip())
    assert helpless == [], f"options without a help text: {helpless}"


def test_every_configurable_class_is_in_the_option_reference() -> None:
    documented = set(AUTOCONFIGURABLE.findall((DOCS / "reference" / "options.md").read_text()))
    conf = docs_conf()
    # The reference's filter knows the same classes the page documents.
    assert {name.rsplit(".", 1)[1] for name in documented} == conf.DOCUMENTED_CLASSES
    for cls in configurable_classes():
        name = f"{cls.__module__}.{cls.__qualname__}"
        # A base whose options show under a documented subclass (DockerEngine under
        # ContainerManager) needs no entry of its own.
        shown_in_subclass = any(issubclass(resolve(path), cls) for path in documented)
        assert name in documented or shown_in_subclass, f"{name} is not in the option reference"
