"""The package's imports run one way: no cycle between modules, and the layers keep their order.

Read from the source with `ast`, so imports under `if TYPE_CHECKING:` and inside functions count
as much as those at the top: a cycle hidden from the interpreter is still a tangle for readers.
A submodule's implicit import of its parent package (whose `__init__` imports `app`) is not an
edge here; nothing in the package imports a package's `__init__` for a name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "jupyter_popebot_code"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE


@dataclass(frozen=True)
class Layer:
    """Modules under `importer` never import modules under `forbidden`.

    Names are dotted paths under the package; a name covers its submodules. `allowed` are
    imports under `forbidden` that are fine after all; `exempt` are importers the rule skips.
    """

    importer: str
    forbidden: tuple[str, ...]
    why: str
    allowed: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()


# Bottom to top: errors; core and backends; network and auth; terminal and preview over web;
# app wires everything and nothing imports it. Add a rule where a new package appears.
HANDLERS = ("web", "terminal", "preview")
LAYERS = (
    Layer("errors", ("",), "every layer raises and answers from it: it imports nothing"),
    Layer("metrics", ("",), "every layer counts into it: it imports nothing of the package"),
    Layer(
        "core",
        (*HANDLERS, "auth", "hub", "app"),
        "the rules of workspaces know no HTTP, identity or UI",
    ),
    Layer(
        "backends",
        ("core.service", "core.idle", *HANDLERS, "auth", "hub", "app"),
        "a backend is driven by the service, never the other way round",
    ),
    Layer("network", ("core.service", *HANDLERS, "hub", "app"), "policies serve the backends"),
    Layer(
        "auth",
        ("core", "backends", "network", *HANDLERS, "hub", "app"),
        "identity and authorization know nothing of workspaces' machinery",
    ),
    Layer("hub", (*HANDLERS, "app"), "the JupyterHub service talks to the service only"),
    Layer("web", ("app",), "handlers reach the app through web.context.WorkspacesApp"),
    Layer("terminal", ("preview", "app"), "the relay and previews share web.websocket only"),
    Layer("preview", ("terminal", "app"), "the relay and previews share web.websocket only"),
    Layer(
        "terminal",
        ("web",),
        "the ttyd protocol modules (ttyd, ttyd_protocol, handshake, frames) are no handlers",
        exempt=("terminal.relay", "terminal.handler", "terminal.browser"),
    ),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that `path` imports anywhere (TYPE_CHECKING and functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    yield f"{target}.{alias.name}"  # `from . import disks`: the module itself
                elif target in known:
                    yield target


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: {target for target in imported(name, path, known) if target != name}
        for name, path in found.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path back to its start) in each strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is a few dozen modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(cycle_through(node, component, graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_through(start: str, component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from `start` back to itself inside its component (breadth first)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"{start} is in a component without a cycle")


def under(name: str, prefix: str) -> bool:
    full = f"{PACKAGE}.{prefix}" if prefix else PACKAGE
    return name == full or name.startswith(full + ".")


def test_no_module_imports_itself_back() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: f"{layer.importer}-{layer.why}")
def test_a_layer_never_imports_the_ones_above_it(layer: Layer) -> None:
    broken = [
        f"{name} imports {target}"
        for name, targets in sorted(import_graph().items())
        if under(name, layer.importer) and not any(under(name, e) for e in layer.exempt)
        for target in sorted(targets)
        if any(under(target, f) for f in layer.forbidden)
        and not under(target, layer.importer)
        and not any(under(target, a) for a in layer.allowed)
    ]
    assert not broken, f"{layer.why}:\n" + "\n".join(broken)


def test_only_the_package_itself_imports_the_app() -> None:
    """app wires every layer together: a module that imports it sits above everything."""
    importers = {name for name, targets in import_graph().items() if f"{PACKAGE}.app" in targets}
    assert importers == {PACKAGE}


def test_the_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_type_checking_and_function_imports_count() -> None:
    graph = import_graph()
    # web.context names the service only for the type checker; it is an edge all the same.
    assert f"{PACKAGE}.core.service" in graph[f"{PACKAGE}.web.context"]
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.web.handlers"]
