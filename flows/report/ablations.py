"""The ablation part of the report: per grid of ``ablations.grids`` a table, CSV, LaTeX table and plot, and the
training-loss curves with and without expert sharing.

Each grid's values are run methods (`flows.config.grid`): ``adamix_adapter.num_experts=8``, or the method itself for its
own setting, whose results live beside the main ones in results/<task>/<run method>/seed<seed>.json; a run method
trained at several rates enters at its rate chosen on validation, as in the main table. All files go
into one folder, ``<reports>/ablations/``, that always exists (with a README.md saying why when it is empty), so
DVC can declare it as one output whatever the grids are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.grid import Variant, variants
from .collect import Collected, Run, collect, read_with_rates
from .plots import Cell, Table, plot_ablation, plot_loss_curves
from .selection import RateChoice, swept

FOLDER = "ablations"
SHARE_KEY = "adamix.share"  # the grid whose runs give the loss curves with and without sharing
NOT_RUN = "No ablation runs: set `ablations.tasks` to run the grids of `ablations.grids`."


def ablation_seeds(params: Mapping[str, Any]) -> list[int]:
    """The ablation seeds: `ablations.seeds`, or the main seeds when it is null."""
    seeds = params["ablations"]["seeds"]
    return list(params["seeds"] if seeds is None else seeds)


def ablation_runs(params: Mapping[str, Any]) -> list[Run]:
    """Every (task, run method, seed) of the grids, in grid and value order (empty when ablations are off)."""
    seeds = ablation_seeds(params)
    return list(
        dict.fromkeys(
            (task, variant.method, seed)
            for grid in params["ablations"]["grids"]
            for task in params["ablations"]["tasks"]
            for variant in variants(params, grid)
            for seed in seeds
        )
    )


def collect_ablations(results_dir: str | Path, params: Mapping[str, Any]) -> Collected | None:
    """The ablation runs aggregated over seeds; None when `ablations.tasks` or `ablations.grids` is empty.

    A grid's run method trained at several rates enters at its rate chosen on validation
    (`flows.report.selection`).

    Raises:
        ReportError: a malformed result file, or a task/run method of a grid without any result (as the main
            table: missing seeds are counted and reported, a value never run at all is an error).
    """
    return collect_ablations_and_rates(results_dir, params)[0]


def collect_ablations_and_rates(
    results_dir: str | Path, params: Mapping[str, Any]
) -> tuple[Collected | None, list[RateChoice]]:
    """`collect_ablations`, and the learning-rate choices made for the grids' run methods."""
    runs = ablation_runs(params)
    if not runs:
        return None, []
    records, choices = read_with_rates(
        results_dir,
        params,
        runs,
        swept(params, ablations=True),
        ablation_seeds(params),
        "ablation task/method",
    )
    return collect(records, runs, params["report"]["primary_mode"]), choices


@dataclass
class GridResult:
    """One grid's scores: per task and value, the primary metric (mean, std, n over the ablation seeds)."""

    name: str
    key: str  # "adamix.num_experts"
    base: str  # the method varied
    variants: list[Variant]
    tasks: list[str]
    cells: dict[str, dict[str, Cell]]  # task -> value label -> cell
    default: str | None  # label of the method's own value (the main runs), if among the values

    def label(self, variant: Variant) -> str:
        """The value's row label, "4 (default)" for the method's own value."""
        return variant.label + (" (default)" if variant.label == self.default else "")


def grid_results(data: Collected | None, params: Mapping[str, Any]) -> list[GridResult]:
    """One GridResult per grid of `ablations.grids` (empty when there are no ablation runs)."""
    if data is None:
        return []
    tasks, n = list(params["ablations"]["tasks"]), len(ablation_seeds(params))
    out = []
    for name, spec in params["ablations"]["grids"].items():
        found = variants(params, name)
        cells = {t: {v.label: Cell(*data.score(t, v.method), expected_n=n) for v in found} for t in tasks}
        default = next((v.label for v in found if v.method == v.base), None)
        out.append(GridResult(name, spec["key"], spec["method"], found, tasks, cells, default))
    return out


def find_grid(grids: list[GridResult], key: str) -> GridResult | None:
    """The first grid that varies `key` (e.g. ``train.consistency_weight``), whatever its name."""
    return next((g for g in grids if g.key == key), None)


def _table(grid: GridResult, data: Collected) -> Table:
    avg = ["Avg"] if len(grid.tasks) > 1 else []
    cells = []
    for variant in grid.variants:
        row = [grid.cells[t][variant.label] for t in grid.tasks]
        cells.append(row + ([Cell(sum(c.mean for c in row) / len(row))] if avg else []))
    header = [grid.name, *(f"{t} ({data.primary.get(t, 'n/a')})" for t in grid.tasks), *avg]
    return Table(header, [[grid.label(v)] for v in grid.variants], cells)


def _tidy(grid: GridResult, data: Collected) -> pd.DataFrame:
    rows = []
    for variant in grid.variants:
        for row in data.tidy[data.tidy.method == variant.method].itertuples(index=False):
            if row.mode == data.mode_of[variant.method] and row.task in grid.tasks:
                is_default = variant.label == grid.default
                rows.append(
                    (grid.name, grid.key, variant.label, is_default, row.method, row.task, row.seed)
                    + (row.mode, row.metric, row.value)
                )
    columns = ["grid", "key", "value", "default", "method", "task", "seed", "mode", "metric", "score"]
    return pd.DataFrame(rows, columns=columns)


def _caption(params: Mapping[str, Any]) -> str:
    seeds = ", ".join(map(str, ablation_seeds(params)))
    return (
        f"Each table changes one setting of one method (its other settings as in the main runs). Test scores x 100, "
        f"mean ± std over seeds {seeds} ((n=k): only k runs found); (default) marks the method's own setting, "
        "which is the main run. Best mean per column in bold."
    )


def _title(grid: GridResult, labels: Mapping[str, str]) -> str:
    return f"{grid.name}: `{grid.key}` of {labels.get(grid.base, grid.base)}"


def ablation_markdown(
    grids: list[GridResult], data: Collected | None, params: Mapping[str, Any], labels: Mapping[str, str]
) -> str:
    """The "Ablations" section of results.md: one table per grid, or why there is none."""
    return "## Ablations\n\n" + (NOT_RUN + "\n" if data is None else _body(grids, data, params, labels))


def _body(
    grids: list[GridResult], data: Collected, params: Mapping[str, Any], labels: Mapping[str, str]
) -> str:
    decimals = params["report"]["decimals"]
    parts = [f"{_caption(params)}\n"]
    for grid in grids:
        parts.append(f"### {_title(grid, labels)}\n\n{_table(grid, data).markdown(decimals)}")
    if data.missing:
        parts.append(f"Missing ablation runs, left out of the means: {', '.join(data.missing)}.\n")
    return "\n".join(parts)


def smoothed_loss(data: Collected, task: str, method: str) -> list[float]:
    """Per-step task loss averaged over seeds, then smoothed by a centred moving average (1/20 of the steps)."""
    runs = [r.get("step_loss") or [] for r in data.records if (r["task"], r["method"]) == (task, method)]
    runs = [pd.Series(steps, dtype=float) for steps in runs if steps]
    if not runs:
        return []
    mean = pd.concat(runs, axis=1).mean(axis=1)
    window = max(1, round(len(mean) / 20))
    return [float(v) for v in mean.rolling(window, center=True, min_periods=1).mean()]


def mean_step_loss(data: Collected, task: str, method: str) -> dict[int, float]:
    """seed -> the run's task loss averaged over all its steps (lower: converged faster)."""
    out = {}
    for r in data.records:
        steps = [v for v in r.get("step_loss") or [] if v is not None and math.isfinite(v)]
        if (r["task"], r["method"]) == (task, method) and steps:
            out[r["seed"]] = sum(steps) / len(steps)
    return out


def ablation_outputs(
    grids: list[GridResult], data: Collected | None, params: Mapping[str, Any], labels: Mapping[str, str]
) -> dict[str, str | Callable[[Path], None]]:
    """The files of ``ablations/`` (names relative to the report folder): README.md always; per grid run,
    ablation_<grid>.csv/.tex/.png; loss_sharing.png when a grid varies ``adamix.share``."""
    readme = "# Ablations\n\n"
    if data is None:
        return {f"{FOLDER}/README.md": readme + NOT_RUN + "\n"}
    decimals = params["report"]["decimals"]
    outputs: dict[str, str | Callable[[Path], None]] = {}
    files = []
    for grid in grids:
        stem = f"{FOLDER}/ablation_{grid.name}"
        table = _table(grid, data)
        outputs[f"{stem}.csv"] = _tidy(grid, data).to_csv(index=False, na_rep="")
        outputs[f"{stem}.tex"] = table.latex(decimals, f"{_title(grid, labels)}. {_caption(params)}")
        scores = {
            t: [(grid.label(v), row[v.label].mean * 100, row[v.label].std * 100) for v in grid.variants]
            for t, row in grid.cells.items()
        }
        outputs[f"{stem}.png"] = lambda path, g=grid, s=scores: plot_ablation(
            s, f"{g.key} of {labels.get(g.base, g.base)}", f"primary metric x 100 ({g.name})", path
        )
        files += [f"ablation_{grid.name}.{ext}" for ext in ("csv", "tex", "png")]
    share = find_grid(grids, SHARE_KEY)
    if share is not None:
        curves = {
            t: {share.label(v): smoothed_loss(data, t, v.method) for v in share.variants} for t in share.tasks
        }
        outputs[f"{FOLDER}/loss_sharing.png"] = lambda path: plot_loss_curves(
            curves, "task loss per step, smoothed, mean over seeds", path
        )
        files.append("loss_sharing.png")
    outputs[f"{FOLDER}/README.md"] = (
        readme + f"Files: {', '.join(files)}.\n\n" + _body(grids, data, params, labels)
    )
    return outputs
