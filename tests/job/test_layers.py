"""The package's layers, as accounts_job/__init__.py lists them, hold in its imports.

Every import statement of every module counts, those inside functions too: a function-level
import is a dependency all the same, only a later one. A module may import its own layer
and the layers below it; peers (state and distributed; cli and explore) not each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import accounts_job
import pytest

PACKAGE = Path(accounts_job.__file__).parent

# Lowest first. Each module belongs to the group named by its first part.
LAYERS: list[set[str]] = [
    {"_version", "codes", "errors", "faults"},
    {"kernels"},
    {"io"},
    {"engine"},
    {"state", "distributed"},
    {"job"},
    {"warmup"},  # runs the job over samples to compile every kernel; cli and Dask use it
    {"cli", "explore"},
]
# What the compiled kernels may import from outside the package. The standard library
# modules are for kernels/_cache.py, which tells numba where the kernels' cache lives.
KERNEL_LIBRARIES = {"__future__", "numpy", "numba", "llvmlite"} | {
    "collections",
    "contextlib",
    "functools",
    "hashlib",
    "itertools",
    "os",
    "pickle",
    "platform",
    "stat",
    "sys",
    "tempfile",
    "uuid",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py" if name in MODULES else False


def imports(name: str) -> list[tuple[str, int]]:
    """(what, line) for every import in module `name`: package modules by their dotted
    name inside the package ("" is the package itself), others as "ext:TOP"."""
    path = MODULES[name]
    here = name.split(".") if name else []
    if not is_package(name):
        here = here[:-1]  # a module's relative imports start from its package
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((_absolute(alias.name), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = _absolute(node.module or "")
                if not base.startswith("ext:"):
                    found += [(_member(base, a.name), node.lineno) for a in node.names]
                else:
                    found.append((base, node.lineno))
                continue
            parent = here[: len(here) - (node.level - 1)]
            base = ".".join([*parent, *(node.module.split(".") if node.module else [])])
            found += [(_member(base, a.name), node.lineno) for a in node.names]
    return found


def _absolute(dotted: str) -> str:
    top, _, rest = dotted.partition(".")
    return rest if top == "accounts_job" else f"ext:{top}"


def _member(base: str, name: str) -> str:
    """`from base import name`: the module base.name if there is one, else base."""
    candidate = f"{base}.{name}" if base else name
    return candidate if candidate in MODULES else base


def layer(name: str) -> int:
    group = name.split(".")[0]
    for index, groups in enumerate(LAYERS):
        if group in groups:
            return index
    raise AssertionError(f"module accounts_job.{name} belongs to no layer: add it to LAYERS")


@pytest.mark.parametrize("name", [m for m in MODULES if m], ids=lambda m: m)
def test_no_module_imports_a_layer_above_or_a_peer(name: str) -> None:
    mine, group = layer(name), name.split(".")[0]
    wrong = []
    for target, line in imports(name):
        if target.startswith("ext:"):
            continue
        if target == "":
            wrong.append(f"line {line}: the package itself (import what you need from its layer)")
            continue
        theirs, their_group = layer(target), target.split(".")[0]
        if theirs > mine or (theirs == mine and their_group != group and mine != 0):
            wrong.append(f"line {line}: {target}")
    assert not wrong, f"accounts_job.{name} imports above its layer: {wrong}"


def test_kernels_import_only_numpy_numba_and_the_codes() -> None:
    for name in (m for m in MODULES if m.startswith("kernels")):
        for target, line in imports(name):
            if target.startswith("ext:"):
                assert target[4:] in KERNEL_LIBRARIES, f"{name} line {line}: {target[4:]}"
            else:
                assert target == "codes" or target.startswith("kernels"), (name, line, target)


def test_no_import_cycles() -> None:
    graph = {
        name: {t for t, _ in imports(name) if not t.startswith("ext:") and t and t != name}
        for name in MODULES
        if name
    }
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_the_layers_cover_every_module_and_the_check_sees_imports() -> None:
    assert all(layer(m) >= 0 for m in MODULES if m)
    # The parser above must see function-level and relative imports, or it checks nothing.
    targets = {t for t, _ in imports("job")}
    assert "distributed.cluster" in targets  # imported inside process()
    assert "engine.run" in targets


def test_polars_and_dask_stay_out_of_the_plain_run() -> None:
    """Polars is for the API's frames and the notebook, Dask for cluster runs: the modules
    a plain command-line run imports must not import either at module level."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                top = {n.split(".")[0] for n in names}
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    top.add(node.module.split(".")[0])
                if "polars" in top:
                    assert name == "io.frames" or name.startswith("explore"), name
                if top & {"dask", "distributed"}:
                    raise AssertionError(f"{name} imports Dask at module level")
