"""What the report stage reads: result JSON files, validated and aggregated over seeds (mean, std, n).

Every section of the report (main table, inference modes, ablations, significance, paper comparison, findings)
works from a `Collected`: the raw per-seed values and their summary, in each method's reported mode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.schema import INFERENCE_MODES
from .selection import Owner, RateChoice, candidate_runs, choose_rates, swept

_KEYS = ["task", "method", "seed", "mode", "metric"]
Run = tuple[str, str, int]  # (task, run method, seed)


class ReportError(ValueError):
    """The results cannot be reported: none found, a malformed file (named), or runs the params expect missing."""


# -- reading ---------------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_result(path: Path, data: Any) -> dict[str, Any]:
    """Validate one result record.

    Args:
        path: the file it was read from (named in errors; its folders must match the record's task and method).
        data: the parsed JSON.

    Returns:
        `data`, unchanged.

    Raises:
        ReportError: naming the file and the bad field.
    """

    def require(ok: bool, field: str, expected: str) -> None:
        if not ok:
            raise ReportError(f"{path}: malformed result: '{field}' must be {expected}")

    require(isinstance(data, dict), "top level", "a JSON object")
    for key, kind in (
        ("task", str),
        ("method", str),
        ("primary_metric", str),
        ("params", dict),
        ("history", list),
    ):
        require(isinstance(data.get(key), kind), key, f"a {kind.__name__}")
    require(isinstance(data.get("seed"), int) and not isinstance(data["seed"], bool), "seed", "an int")
    require(isinstance(data.get("model", ""), str), "model", "a string")
    for key in ("trainable", "deployed"):
        value = data["params"].get(key)
        require(
            isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"params.{key}",
            "an int >= 0",
        )
    require(isinstance(data.get("modes"), dict) and bool(data["modes"]), "modes", "a non-empty object")
    for mode, metrics in data["modes"].items():
        primary = data["primary_metric"]
        require(
            isinstance(metrics, dict) and primary in metrics, f"modes.{mode}", f"an object with '{primary}'"
        )
        for metric, value in metrics.items():
            require(_number(value) or value is None, f"modes.{mode}.{metric}", "a number or null")
    for index, entry in enumerate(data["history"]):
        require(
            isinstance(entry, dict) and _number(entry.get("epoch")),
            f"history[{index}]",
            "an object with 'epoch'",
        )
    step_loss = data.get("step_loss", [])
    require(
        isinstance(step_loss, list) and all(_number(v) or v is None for v in step_loss),
        "step_loss",
        "a list of numbers",
    )
    stored_as = f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"
    recorded = f"{data['task']}/{data['method']}/seed{data['seed']}"
    if stored_as != recorded:
        raise ReportError(f"{path}: the result is for {recorded} but is stored as {stored_as}")
    return data


def read_runs(results_dir: str | Path, runs: Iterable[Run]) -> list[dict[str, Any]]:
    """Read and validate the result files of `runs` that exist (absent ones are skipped, not errors).

    Raises:
        ReportError: a file that is not JSON or not a valid result.
    """
    records = []
    for task, method, seed in dict.fromkeys(runs):
        path = Path(results_dir) / task / method / f"seed{seed}.json"
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ReportError(f"{path}: not a readable JSON file ({err})") from None
        records.append(check_result(path, data))
    return records


def require_pairs(
    results_dir: str | Path, runs: Iterable[Run], records: list[dict[str, Any]], what: str
) -> None:
    """Raise unless every (task, method) of `runs` has at least one result; missing seeds are allowed.

    Raises:
        ReportError: listing the task/method pairs without any result.
    """
    found = {(r["task"], r["method"]) for r in records}
    missing = [f"{t}/{m}" for t, m in dict.fromkeys((t, m) for t, m, _ in runs) if (t, m) not in found]
    if missing:
        raise ReportError(f"no results in {results_dir} for {what}: {', '.join(missing)}")


def main_runs(params: Mapping[str, Any]) -> list[Run]:
    """The runs of the main table: tasks x methods x seeds."""
    return [(t, m, s) for t in params["tasks"] for m in params["methods"] for s in params["seeds"]]


def load_results(results_dir: str | Path, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Read and validate the result files of the params' tasks, methods and seeds.

    A method trained at several learning rates is represented by its rate chosen on validation
    (`flows.report.selection`).

    Args:
        results_dir: folder holding <task>/<method>/seed<seed>.json files.
        params: validated parameters (`tasks`, `methods`, `seeds`).

    Returns:
        The result records. Files of other tasks, methods or seeds (left from other runs) are ignored.

    Raises:
        ReportError: no result files; a file that is not JSON or not a result; a task or method without results.
    """
    return load_results_and_rates(results_dir, params)[0]


def load_results_and_rates(
    results_dir: str | Path, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[RateChoice]]:
    """`load_results`, and the learning-rate choices made (one per task and method trained at several rates)."""
    if not any(Path(results_dir).glob("*/*/seed*.json")):
        raise ReportError(f"no result files in {results_dir} (expected <task>/<method>/seed<seed>.json)")
    return read_with_rates(
        results_dir, params, main_runs(params), swept(params), params["seeds"], "task/method"
    )


def read_with_rates(
    results_dir: str | Path,
    params: Mapping[str, Any],
    runs: list[Run],
    owners: list[Owner],
    seeds: Iterable[int],
    what: str,
) -> tuple[list[dict[str, Any]], list[RateChoice]]:
    """The records of `runs`, each of `owners` (task, run method) read from its learning-rate candidates over
    `seeds` and replaced by the rate chosen on validation; every run must have a result (`what` names them in
    the error)."""
    owned = set(owners)
    direct = [run for run in runs if (run[0], run[1]) not in owned]
    candidates = candidate_runs(params, owners, list(seeds))
    records, choices = choose_rates(read_runs(results_dir, direct + candidates), params, owners)
    require_pairs(results_dir, runs, records, what)
    return records, choices


# -- aggregation -----------------------------------------------------------------------------------------


@dataclass
class Collected:
    """Result records aggregated over seeds."""

    records: list[dict[str, Any]]
    tidy: pd.DataFrame  # one row per task, method, seed, mode, metric
    summary: pd.DataFrame  # mean, std (ddof=1), n per task, method, mode, metric
    primary: dict[str, str]  # task -> primary metric
    mode_of: dict[str, str]  # method -> the mode its tables show
    missing: list[str]  # task/method/seed<seed> expected but without a result

    def stats(self, task: str, method: str, mode: str, metric: str) -> tuple[float, float, int]:
        """(mean, std, n) of one metric; (nan, nan, 0) when there is no such result."""
        rows = self.summary[
            (self.summary.task == task) & (self.summary.method == method)
            & (self.summary["mode"] == mode) & (self.summary.metric == metric)
        ]  # fmt: skip
        return (
            (rows["mean"].iat[0], rows["std"].iat[0], int(rows["n"].iat[0]))
            if len(rows)
            else (math.nan, math.nan, 0)
        )

    def score(self, task: str, method: str, mode: str | None = None) -> tuple[float, float, int]:
        """(mean, std, n) of the task's primary metric, in the method's reported mode unless `mode` is given."""
        if task not in self.primary or method not in self.mode_of:
            return math.nan, math.nan, 0
        return self.stats(task, method, mode or self.mode_of[method], self.primary[task])

    def per_seed(self, task: str, method: str, metric: str | None = None) -> dict[int, float]:
        """seed -> value of a metric (default: the primary one) in the method's reported mode; NaNs left out."""
        if task not in self.primary or method not in self.mode_of:
            return {}
        t = self.tidy
        rows = t[
            (t.task == task) & (t.method == method) & (t["mode"] == self.mode_of[method])
            & (t.metric == (metric or self.primary[task])) & t.value.notna()
        ]  # fmt: skip
        return {int(seed): float(value) for seed, value in zip(rows.seed, rows.value, strict=True)}

    def modes(self, method: str) -> list[str]:
        """The modes a method was evaluated in, AdaMix's order (merge, random, fixed) first."""
        found = {mode for r in self.records if r["method"] == method for mode in r["modes"]}
        order = {mode: i for i, mode in enumerate(INFERENCE_MODES)}
        return sorted(found, key=lambda mode: (order.get(mode, len(order)), mode))


def collect(records: list[dict[str, Any]], expected: Iterable[Run], primary_mode: str) -> Collected:
    """Aggregate records over seeds.

    Args:
        records: validated result records.
        expected: the runs the params ask for (those without a record are listed as missing).
        primary_mode: the AdaMix inference mode tables show (`report.primary_mode`); single-mode runs use theirs.

    Raises:
        ReportError: runs of one task with different primary metrics, or of one method in different modes.
    """
    primary: dict[str, str] = {}
    mode_of: dict[str, str] = {}
    for r in records:
        run = f"{r['task']}/{r['method']}/seed{r['seed']}"
        if primary.setdefault(r["task"], r["primary_metric"]) != r["primary_metric"]:
            raise ReportError(
                f"{run}: primary metric {r['primary_metric']}, other runs of the task use {primary[r['task']]}"
            )
        modes = list(r["modes"])
        mode = primary_mode if primary_mode in modes else modes[0] if len(modes) == 1 else None
        if mode is None:
            raise ReportError(
                f"{run}: report.primary_mode '{primary_mode}' is not among its modes ({', '.join(modes)})"
            )
        if mode_of.setdefault(r["method"], mode) != mode:
            raise ReportError(
                f"{run}: reported in mode {mode}, other runs of the method in {mode_of[r['method']]}"
            )
    tidy = pd.DataFrame(
        [
            (r["task"], r["method"], r["seed"], mode, metric, math.nan if value is None else float(value))
            for r in records
            for mode, metrics in r["modes"].items()
            for metric, value in metrics.items()
        ],
        columns=[*_KEYS, "value"],
    ).sort_values(_KEYS, ignore_index=True)
    grouped = tidy.groupby(["task", "method", "mode", "metric"], sort=False)["value"]
    summary = grouped.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else math.nan, n="count")
    found = {(r["task"], r["method"], r["seed"]) for r in records}
    missing = [f"{t}/{m}/seed{s}" for t, m, s in dict.fromkeys(expected) if (t, m, s) not in found]
    return Collected(records, tidy, summary.reset_index(), primary, mode_of, missing)
