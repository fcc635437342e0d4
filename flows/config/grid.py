"""The run grid: every (task, method, seed) run the pipeline trains, ablation variants included.

The main grid is ``tasks x methods x seeds``. Each ablation of ``params.yaml`` (section ``ablations.grids``) varies
one key of one method over a list of values, e.g.::

    ablations:
      tasks: [rotten_tomatoes]
      grids:
        num_experts: {method: adamix_adapter, key: adamix.num_experts, values: [1, 2, 4, 8, 16]}

Each value becomes a *variant*: a run method named ``<method>.<grid>=<value>`` (``adamix_adapter.num_experts=8``)
whose parameters are the method's with that one key set. A value equal to the method's own setting is the method
itself, so the main runs are reused and never trained twice. Variants are ordinary methods everywhere else: DVC
stages, run folders, MLflow runs and results are keyed by the variant's name.

A method whose ``train.learning_rate`` is a list (``[1.0e-3, 3.0e-3, 1.0e-2]``) is swept the same way: each rate is
the run method ``<method>.lr=<value>`` in the main grid, and the report enters the method at the rate with the best
mean validation score (`flows.report.selection`). Its ablation variants inherit the list, so each variant is swept
too (``adamix_adapter.num_experts=8.lr=0.0015``) and enters its ablation table at its own best rate: a variant is
compared with the method at the rate that suits it, not at the method's.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .files import deep_merge
from .schema import KNOWN_METHODS, ParamsError

VARIANT_SEP = "."
_GRID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ABLATION_SECTIONS = ("train", "adamix")  # sections an ablation may vary
LR_GRID = "lr"  # a method's learning-rate candidates are the run methods <method>.lr=<value>
LR_MARK = f"{VARIANT_SEP}{LR_GRID}="  # what a candidate's name adds to the run method it sweeps


class GridError(ValueError):
    """An ablation grid that cannot be expanded; the message names the grid and key."""


@dataclass(frozen=True)
class Variant:
    """One value of one ablation grid, and the run method that trains it."""

    grid: str  # the grid's name in ablations.grids
    base: str  # the method varied (one of flows.config.schema.KNOWN_METHODS)
    key: tuple[str, str]  # (section, key), e.g. ("adamix", "num_experts")
    value: Any
    method: str  # run method name: `base` for its own setting, else "<base>.<grid>=<value>"

    @property
    def label(self) -> str:
        """The value as shown in tables and plots."""
        return format_value(self.value)


def format_value(value: Any) -> str:
    """A value as written in variant names: ``8``, ``0.0``, ``none``, ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return str(value)


def base_method(method: str) -> str:
    """The method a run method trains: ``adamix_adapter.num_experts=8`` -> ``adamix_adapter``."""
    return method.split(VARIANT_SEP, 1)[0]


def parse_key(grid: str, key: Any) -> tuple[str, str]:
    """Split ``"adamix.num_experts"`` into its section and key, or raise GridError naming the grid."""
    parts = key.split(".") if isinstance(key, str) else []
    if len(parts) != 2 or parts[0] not in ABLATION_SECTIONS or not parts[1]:
        sections = " or ".join(f"'{s}.<key>'" for s in ABLATION_SECTIONS)
        raise GridError(f"'ablations.grids.{grid}.key' must be {sections}, got {key!r}")
    return parts[0], parts[1]


def variants(params: Mapping[str, Any], grid: str) -> list[Variant]:
    """The variants of one ablation grid, in the order of its values.

    Args:
        params: validated parameters.
        grid: a key of ``ablations.grids``.

    Returns:
        One Variant per value; the one equal to the method's own setting has ``method == base``.
    """
    spec = params["ablations"]["grids"][grid]
    section, key = parse_key(grid, spec["key"])
    own = run_params(params, spec["method"])[section][key]
    out = []
    for value in spec["values"]:
        same = value == own and type(value) is type(own)
        name = spec["method"] if same else f"{spec['method']}{VARIANT_SEP}{grid}={format_value(value)}"
        out.append(Variant(grid, spec["method"], (section, key), value, name))
    return out


def all_variants(params: Mapping[str, Any]) -> dict[str, Variant]:
    """Every variant run method of every grid (the ones that are their base method left out), by name."""
    found: dict[str, Variant] = {}
    for grid in params["ablations"]["grids"]:
        for variant in variants(params, grid):
            if variant.method != variant.base:
                found[variant.method] = variant
    return found


def lr_variants(params: Mapping[str, Any], method: str) -> list[Variant]:
    """The learning-rate candidates of a run method trained at several rates, one run method per rate.

    A method (or an ablation variant of one) whose ``train.learning_rate``, after its `method_overrides` entry,
    is a list trains once per value, as ``<method>.lr=<value>``; the report keeps the value with the best mean
    validation score.

    Args:
        params: validated parameters.
        method: a method of KNOWN_METHODS or an ablation variant run method (``adamix_adapter.num_experts=8``).

    Returns:
        One Variant per rate (grid ``lr``, ``base`` the run method swept), or [] when the run method's rate is
        one number or `method` is no run method of `params`.
    """
    try:
        rate = run_params(params, method)["train"]["learning_rate"]
    except ParamsError:
        return []
    if not isinstance(rate, list):
        return []
    return [
        Variant(LR_GRID, method, ("train", "learning_rate"), v, f"{method}{LR_MARK}{format_value(v)}")
        for v in rate
    ]


def variant_override(params: Mapping[str, Any], method: str) -> tuple[str, dict[str, Any]]:
    """The run method a variant run method is made from, and the override that makes it.

    ``<base>.<grid>=<value>`` is made from the method ``<base>``; ``<run method>.lr=<value>`` from the run method
    it sweeps, itself a method or a variant.

    Raises:
        GridError: `method` is no variant of the grids in `params`, nor a learning-rate candidate.
    """
    swept, lr_sep, _ = method.rpartition(LR_MARK)
    base, sep, rest = method.partition(VARIANT_SEP)
    grid = rest.partition("=")[0]
    grids = params.get("ablations", {}).get("grids", {})
    found = [(swept, v) for v in lr_variants(params, swept)] if lr_sep else []
    if sep and grid in grids:  # an ablation grid named "lr" varies the rate too: the same runs
        found += [(base, v) for v in variants(params, grid)]
    for parent, variant in found:
        if variant.method == method:
            section, key = variant.key
            return parent, {section: {key: variant.value}}
    raise GridError(
        f"unknown method {method!r}: neither a method, a variant of 'ablations.grids', "
        "nor a learning rate of a method's 'train.learning_rate' list"
    )


def _method_override(params: Mapping[str, Any], method: str) -> dict[str, Any]:
    if method in KNOWN_METHODS:
        return dict(params.get("method_overrides") or {}).get(method) or {}
    try:
        base, variant = variant_override(params, method)
    except GridError:
        raise ParamsError(f"unknown method {method!r}; known methods: {', '.join(KNOWN_METHODS)}") from None
    return deep_merge(_method_override(params, base), variant)


def run_params(params: Mapping[str, Any], method: str) -> dict[str, Any]:
    """Parameters of one method's runs: its `method_overrides` entry deep-merged over the sections.

    Args:
        params: validated parameters (from `load_params`).
        method: one of KNOWN_METHODS, or an ablation variant (``adamix_adapter.num_experts=8``, see below):
            its method's override with the variant's key set.

    Returns:
        A new dict; `method_overrides` keeps only this method's entry (the one applied), others are dropped.
    """
    override = _method_override(params, method)
    base = {key: value for key, value in params.items() if key != "method_overrides"}
    resolved = deep_merge(base, override)
    resolved["method_overrides"] = {method: copy.deepcopy(override)} if override else {}
    return resolved


def runs(params: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (task, run method, seed) to train: the main grid, then the ablation variants, without repeats; a run
    method trained at several rates is replaced by its learning-rate candidates."""
    found: dict[tuple[str, str, int], None] = {}
    for task in params["tasks"]:
        for method in params["methods"]:
            # A method with a list of learning rates trains once per rate (the report keeps the best on validation).
            names = [v.method for v in lr_variants(params, method)] or [method]
            for name in names:
                for seed in params["seeds"]:
                    found[(task, name, seed)] = None
    ablations = params["ablations"]
    seeds = ablations["seeds"] if ablations["seeds"] is not None else params["seeds"]
    for task in ablations["tasks"]:
        for grid in ablations["grids"]:
            for variant in variants(params, grid):
                names = [v.method for v in lr_variants(params, variant.method)] or [variant.method]
                for name in names:
                    for seed in seeds:
                        found[(task, name, seed)] = None
    return list(found)


def run_key(task: str, method: str, seed: int) -> str:
    """The name DVC gives a run's stages: ``train@<task>-<method>-<seed>``."""
    return f"{task}-{method}-{seed}"


def grid_vars(params: Mapping[str, Any]) -> dict[str, Any]:
    """What dvc.yaml expands: tasks to prepare, (task, seed) splits, and every run, keyed by stage name."""
    all_runs = runs(params)
    tasks = list(dict.fromkeys(task for task, _, _ in all_runs))
    splits = {f"{task}-{seed}": {"task": task, "seed": seed} for task, _, seed in all_runs}
    return {
        "tasks": tasks,
        "splits": dict(sorted(splits.items())),
        "runs": {run_key(t, m, s): {"task": t, "method": m, "seed": s} for t, m, s in all_runs},
    }


def check_ablations(params: Mapping[str, Any], check_value) -> None:
    """Validate ``ablations.grids`` (shape, method, key, values); `check_value(grid, section, key, value)` raises.

    Raises:
        GridError: naming the grid and the problem.
    """
    grids = params["ablations"]["grids"]
    if not isinstance(grids, Mapping):
        raise GridError(f"'ablations.grids' must be a mapping of grid name -> grid, got {grids!r}")
    for grid, spec in grids.items():
        where = f"ablations.grids.{grid}"
        if not isinstance(grid, str) or not _GRID_NAME.match(grid):
            raise GridError(f"ablation grid names are lower-case words ([a-z0-9_]), got {grid!r}")
        if grid == LR_GRID and isinstance(spec, Mapping) and spec.get("key") != "train.learning_rate":
            raise GridError(
                f"'{where}': the grid name {LR_GRID!r} names learning-rate runs (<method>.lr=<value>), so its "
                f"key must be 'train.learning_rate', got {spec.get('key')!r}"
            )
        if not isinstance(spec, Mapping) or set(spec) != {"method", "key", "values"}:
            raise GridError(
                f"'{where}' must be a mapping with exactly 'method', 'key' and 'values', got {spec!r}"
            )
        if spec["method"] not in KNOWN_METHODS:
            raise GridError(
                f"'{where}.method' must be one of {', '.join(KNOWN_METHODS)}, got {spec['method']!r}"
            )
        section, key = parse_key(grid, spec["key"])
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise GridError(f"'{where}.values' must be a non-empty list, got {values!r}")
        labels = [format_value(v) for v in values]
        if len(set(labels)) != len(labels):
            raise GridError(f"'{where}.values' has repeated values: {values!r}")
        for value in values:
            check_value(grid, section, key, value)
