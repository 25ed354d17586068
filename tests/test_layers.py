"""The package's layers: no module imports from a layer above its own, no modules import each
other in a circle (inside a sub-package too), and the packaging config names every
sub-package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, which pyproject allows
    tomllib = None

PACKAGE = Path(__file__).resolve().parent.parent / "stylenorm"

# Bottom to top. A module may import from its own layer and from layers below it, never above.
# Modules of one layer do not import each other's sub-packages (inference and training are peers).
LAYERS = [
    {"_version", "errors", "choices"},
    {"runtime", "ranks"},
    {"io"},
    {"nn"},
    {"models"},
    {"hub"},
    {"inference", "training"},
    {"web"},
    {"cli"},
    {"__init__", "__main__"},
]


def layer_of(part: str) -> int:
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"stylenorm.{part} is in no layer; add it to LAYERS in {__file__}")


def module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts


def imported(path: Path) -> list[tuple[int, list[str]]]:
    """(line, absolute module path) of every stylenorm import in a file."""
    tree = ast.parse(path.read_text(), str(path))
    package = list(path.relative_to(PACKAGE.parent).parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "stylenorm":
                target = node.module.split(".")
            else:
                continue
            if len(target) == 1:  # from . import x: x is the module
                found += [(node.lineno, target + [alias.name]) for alias in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")) for a in node.names
                      if a.name.split(".")[0] == "stylenorm"]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in MODULES:
        layer_of(module_name(path)[1])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_a_layer(path):
    own = module_name(path)[1]
    for line, target in imported(path):
        if len(target) < 2 or target[1] == "bundled":
            continue
        other = target[1]
        if own == other:
            continue
        assert layer_of(other) < layer_of(own) or own in ("__init__", "__main__"), (
            f"{path.relative_to(PACKAGE)}:{line} imports stylenorm.{'.'.join(target[1:])}, "
            f"which is not in a layer below {own!r}"
        )


def test_the_package_init_does_not_import_itself_for_the_version():
    for path in MODULES:
        for line, target in imported(path):
            assert target[1:] != ["__version__"], f"{path}:{line}: import _version instead"


def module_of(target: list[str]) -> str | None:
    """The module file an import of ``target`` runs: its longest prefix that is a module or a
    package (``from .store import X`` -> ``stylenorm.hub.store``)."""
    for end in range(len(target), 0, -1):
        base = PACKAGE.parent.joinpath(*target[:end])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(target[:end])
    return None


def import_graph() -> dict[str, dict[str, tuple[Path, int]]]:
    """module -> {imported module: (file, line)}, for every stylenorm import anywhere in a file
    (deferred imports inside functions too: a circle of them is still two modules that each
    need the other)."""
    graph: dict[str, dict[str, tuple[Path, int]]] = {}
    for path in MODULES:
        own = ".".join(module_name(path))
        edges = graph.setdefault(own, {})
        for line, target in imported(path):
            if target[1:2] == ["bundled"]:  # the weights folder, not code
                continue
            other = module_of(target)
            if other is not None and other != own:
                edges.setdefault(other, (path, line))
    return graph


def circles(graph: dict[str, dict]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_circles_are_found():
    graph = {"a": {"b": 0}, "b": {"c": 0}, "c": {"a": 0}, "d": {"a": 0}, "e": {}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b": 0}, "b": {}}) == []


def test_no_modules_import_each_other_in_a_circle():
    graph = import_graph()
    assert "stylenorm.hub.store" in graph["stylenorm.hub.zoo"]  # the graph sees sub-modules
    messages = []
    for circle in circles(graph):
        edges = [f"{graph[a][b][0].relative_to(PACKAGE)}:{graph[a][b][1]} imports {b}"
                 for a in circle for b in circle if b in graph[a]]
        messages.append(f"{' <-> '.join(circle)}: " + "; ".join(edges))
    assert not messages, "modules import each other in a circle:\n" + "\n".join(messages)


def setuptools_packages(text: str) -> list[str]:
    """``[tool.setuptools] packages`` of a pyproject: by tomllib where Python has it, else read
    as the one array of strings it is (comments allowed)."""
    if tomllib is not None:
        return tomllib.loads(text)["tool"]["setuptools"]["packages"]
    return packages_array(text)


def packages_array(text: str) -> list[str]:
    section = text.split("[tool.setuptools]", 1)[1].split("\n[", 1)[0]
    found = re.search(r"^packages\s*=\s*(\[.*?\])", section, re.S | re.M)
    assert found, "pyproject's [tool.setuptools] has no packages array"
    body = "\n".join(line.split("#", 1)[0] for line in found[1].splitlines())
    return ast.literal_eval(body)


@pytest.mark.skipif(tomllib is None, reason="compares the fallback with tomllib")
def test_the_fallback_reads_the_packages_as_tomllib_does():
    text = (PACKAGE.parent / "pyproject.toml").read_text()
    assert packages_array(text) == tomllib.loads(text)["tool"]["setuptools"]["packages"]


def test_packaging_names_every_sub_package():
    listed = set(setuptools_packages((PACKAGE.parent / "pyproject.toml").read_text()))
    on_disk = {".".join(p.parent.relative_to(PACKAGE.parent).parts)
               for p in PACKAGE.rglob("__init__.py")}
    assert on_disk <= listed, f"pyproject's packages misses {sorted(on_disk - listed)}"
    assert listed - on_disk == {"stylenorm.bundled"}
