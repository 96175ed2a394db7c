"""Lower layers never import upper ones, and siblings on one layer do not import each other.

An AST walk over every module of the package, imports inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import collector

PACKAGE = Path(collector.__file__).resolve().parent

# (layer, group): a module may import its own group and any group on a lower layer
LAYERS = {
    "collector": (0, "core"),  # the package itself and its bottom modules, listed below
    "collector.settings": (0, "core"), "collector.errors": (0, "core"), "collector.files": (0, "core"),
    "collector.paths": (0, "core"), "collector.logs": (0, "core"), "collector.counts": (0, "core"),
    "collector.credentials": (0, "core"),
    "collector.storage": (1, "storage"),
    "collector.privacy": (2, "privacy"),
    "collector.pipeline": (3, "pipeline"),
    "collector.delivery": (3, "delivery"),
    "collector.metrics": (4, "process"), "collector.faults": (4, "process"), "collector.assembly": (4, "process"),
    "collector.service": (4, "process"), "collector.testing": (4, "process"), "collector.erase": (4, "process"),
    "collector.peers": (4, "process"),
    "collector.testing_clickhouse": (4, "process"),
    "collector.http": (5, "http"),
    "collector.cli": (6, "cli"),
    "collector.__main__": (7, "main"),
}


def layer_of(module: str) -> tuple[int, str]:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            # "from collector import x" names a module x
            if node.module == "collector":
                out += [(node.lineno, f"collector.{a.name}") for a in node.names]
    return [(line, name) for line, name in out if name == "collector" or name.startswith("collector.")]


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        mine = layer_of(here)
        for line, target in imports(path):
            if target == "collector":
                continue
            theirs = layer_of(target)
            if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} {mine} imports {target} {theirs}")
    return found


def test_no_module_imports_an_upper_layer_or_a_sibling():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    # the walk itself must be able to fail: a storage module importing the HTTP layer is caught
    fake = PACKAGE / "storage" / "store.py"
    text = fake.read_text() + "\nfrom collector.http.app import create_app\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == fake else Path.read_bytes(self).decode())
    assert any("collector.storage.store" in v and "collector.http.app" in v for v in violations())
