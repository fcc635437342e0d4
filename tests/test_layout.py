"""The shape of flows/: layers that import only downwards, no import cycles, and dvc.yaml deps that cover each
stage's import closure (so editing any module a stage runs makes `dvc repro` rerun that stage)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from import_graph import ROOT, all_modules, closure, direct_imports, module_file

# Lowest first. A module may import its own package and the packages of lower layers, never a higher one; two
# packages of one layer do not import each other. `adamix` (the library) is below all of them.
LAYERS: list[tuple[str, ...]] = [
    ("adamix",),
    ("flows", "flows.errors", "flows.mlflow_store"),  # the error family every layer raises; the MLflow store
    ("flows.atomic", "flows.metrics", "flows.nlg_metrics", "flows.tracking"),
    ("flows.data",),
    ("flows.config",),
    ("flows.modeling", "flows.report"),
    ("flows.training",),  # the training loop, its state, checkpoints and data parallelism, on flows.modeling
    ("flows.stages",),
    ("flows.orchestration",),
]
MAX_LINES = 420  # "a file past ~400 lines is a sign to split by responsibility"
MAX_FUNCTION_LINES = 80  # a function longer than a screen holds several concerns: extract them, named


def _unit(module: str) -> str:
    """The layer unit a module belongs to: the longest entry of LAYERS that is it or a package above it."""
    units = [unit for layer in LAYERS for unit in layer if module == unit or module.startswith(unit + ".")]
    assert units, f"{module} is in no layer of LAYERS: add its package there"
    return max(units, key=len)


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def test_every_module_has_a_layer_and_imports_only_downwards() -> None:
    wrong = []
    for module in all_modules():
        unit = _unit(module)
        for target in direct_imports(module):
            other = _unit(target)
            if other == unit or _is_ancestor(target, module):  # own package, or the packages above it
                continue
            if _layer(other) >= _layer(unit):
                wrong.append(f"{module} (layer {_layer(unit)}) imports {target} (layer {_layer(other)})")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_adamix_never_imports_the_pipeline() -> None:
    library = [m for m in all_modules() if m.split(".")[0] == "adamix"]
    assert library and all(t.split(".")[0] == "adamix" for m in library for t in closure(m))


def _cycles() -> list[list[str]]:
    """Import cycles between modules (an edge to one's own parent package is how Python imports, not a cycle)."""
    graph = {m: {t for t in direct_imports(m) if not _is_ancestor(t, m)} for m in all_modules()}
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "flows").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by responsibility: {long}"


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """The functions and methods of `path` longer than `limit` lines, counted from the `def` line to the
    function's last line (decorators left out), by qualified name."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = f"{prefix}{getattr(child, 'name', '')}"
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if (n := child.end_lineno - child.lineno + 1) > limit:
                    found[name] = n
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def test_no_function_is_too_long() -> None:
    """Every function of flows/ and adamix/ (benchmarks and tests are not held to it) fits in 80 lines."""
    long = {
        f"{path.relative_to(ROOT)}:{name}": n
        for package in ("flows", "adamix")
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, n in long_functions(path).items()
    }
    assert not long, f"split these into named helpers (lines, at most {MAX_FUNCTION_LINES}): {long}"


def test_the_function_length_check_counts_from_def_to_end(tmp_path: Path) -> None:
    """Decorators do not count; methods and nested functions are checked too, each on its own."""

    def lines(indent: int) -> str:
        return "\n".join(f"{' ' * indent}x{i} = {i}" for i in range(8))

    path = tmp_path / "m.py"
    path.write_text(
        f"@decorator\n@another\ndef short():\n{lines(4)}\n\nclass C:\n    def method(self):\n{lines(8)}\n"
    )
    assert long_functions(path, limit=9) == {}  # def + 8 lines: 9, the 2 decorators not counted
    assert long_functions(path, limit=8) == {"short": 9, "C.method": 9}
    path.write_text(f"def outer():\n    def inner():\n{lines(8)}\n    return inner\n")
    assert long_functions(path, limit=9) == {"outer": 11}
    assert long_functions(path, limit=8) == {"outer": 11, "outer.inner": 9}


# -- dvc.yaml deps -----------------------------------------------------------------------------------------------


def _stages() -> dict[str, tuple[str, list[str]]]:
    """Each dvc.yaml stage: the module its command runs and its code deps (paths under flows/ or adamix/)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    out = {}
    for name, stage in spec.items():
        body = stage.get("do", stage)
        module = re.search(r"python -m ([\w.]+)", body["cmd"])
        assert module, f"stage {name}: its cmd runs no `python -m <module>`"
        code = [d for d in body["deps"] if d.split("/")[0] in ("flows", "adamix")]
        out[name] = (module.group(1), code)
    return out


def uncovered(module: str, deps: list[str]) -> list[str]:
    """Files of `module`'s import closure that no dep (a file, or a folder above it) names."""
    missing = []
    for name in sorted(closure(module)):
        path = module_file(name).relative_to(ROOT).as_posix()
        if not any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps):
            missing.append(path)
    return missing


STAGES = _stages()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_deps_cover_the_stage_import_closure(stage: str) -> None:
    module, deps = STAGES[stage]
    assert uncovered(module, deps) == [], f"dvc.yaml stage {stage!r} misses deps for these files"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_code_deps_exist_and_are_used(stage: str) -> None:
    module, deps = STAGES[stage]
    files = {module_file(m).relative_to(ROOT).as_posix() for m in closure(module)}
    for dep in deps:
        assert (ROOT / dep).exists(), f"stage {stage!r}: dep {dep} does not exist"
        assert any(f == dep or f.startswith(dep + "/") for f in files), (
            f"stage {stage!r}: {dep} is not imported"
        )


def test_a_dep_left_out_is_found() -> None:
    """The check itself: take `flows/modeling` from the train stage's deps and it must name the modules."""
    module, deps = STAGES["train"]
    missing = uncovered(module, [d for d in deps if d != "flows/modeling"])
    assert "flows/modeling/models.py" in missing and all(p.startswith("flows/modeling/") for p in missing)


def test_the_import_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "flows"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("def f():\n    from ..b import g\n    from . import c\n")
    (package / "b.py").write_text("import flows.sub.c\n")
    (package / "sub" / "c.py").write_text("")
    assert closure("flows.sub.a", tmp_path) == {"flows", "flows.sub", "flows.sub.a", "flows.b", "flows.sub.c"}


# What importing a stage may pull in: every DVC stage is a fresh process, so a heavy import it does not use is
# paid ~50 times by `make reproduce` (issue 27). Those it needs at run time are imported where they are used.
HEAVY = ("sklearn", "scipy", "pandas", "mlflow", "peft", "prefect", "dvc", "matplotlib", "datasets")
STAGE_IMPORTS = {
    "flows.stages.train": set(),
    "flows.stages.merge": set(),
    "flows.stages.evaluate": set(),
    "flows.stages.prepare": set(),
    "flows.stages.fewshot": set(),
    "flows.stages.report": {"scipy", "pandas", "matplotlib"},  # the report's tables, tests and plots
}


@pytest.mark.parametrize("module", sorted(STAGE_IMPORTS))
def test_a_stage_imports_no_heavy_package_it_does_not_need(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert set(out.stdout.split()) == STAGE_IMPORTS[module]
