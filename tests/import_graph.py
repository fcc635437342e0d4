"""The project's own import graph, read from the source (no module is imported): what each module imports.

Every ``import`` and ``from ... import`` counts, at module level or inside a function (a lazy import still runs
when the stage does). Only modules of the project's packages (``flows``, ``adamix``) are kept.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "adamix")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of a dotted module name (a package's ``__init__.py``), or None if it is not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _with_parents(name: str, root: Path) -> set[str]:
    """A module and the packages above it: importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i]), root)}


@cache
def direct_imports(name: str, root: Path = ROOT) -> frozenset[str]:
    """The project modules `name` imports itself (resolving relative imports and ``from pkg import module``)."""
    path = module_file(name, root)
    if path is None:
        raise ValueError(f"{name} is not a module of {PACKAGES} under {root}")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                target = ".".join([*parts, node.module] if node.module else parts)
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        else:
            continue
        for candidate in candidates:
            if module_file(candidate, root):
                found |= _with_parents(candidate, root)
    found.discard(name)
    return frozenset(found)


def closure(name: str, root: Path = ROOT) -> set[str]:
    """`name` and every project module it imports, transitively."""
    seen: set[str] = set()
    todo = [name, *_with_parents(name, root)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(direct_imports(module, root))
    return seen


def all_modules(root: Path = ROOT) -> list[str]:
    """Every module of the project's packages, as dotted names."""
    names = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names
