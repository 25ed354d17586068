"""The package's layers: no module imports from a layer above its own, and the packaging config
names every sub-package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib

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


def test_packaging_names_every_sub_package():
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(PACKAGE.parent).parts)
               for p in PACKAGE.rglob("__init__.py")}
    assert on_disk <= listed, f"pyproject's packages misses {sorted(on_disk - listed)}"
    assert listed - on_disk == {"stylenorm.bundled"}
