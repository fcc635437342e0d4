"""The `report` stage: collect the per-run result JSON files into tables (md, csv, tex), plots and DVC metrics.

Input: results/<task>/<method>/seed<seed>.json, one per run (written by flows.evaluate). Output, in --out:
results.md, results.csv (tidy), summary.csv, results.tex (booktabs), inference_modes.csv, training_curves.png,
scores.png and metrics.json (for ``dvc metrics show``). Tables show the primary metric x 100 as mean +- std over
seeds; CSV and JSON files keep raw values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flows.params import INFERENCE_MODES, ParamsError, load_params
from flows.plots import Cell, Table, format_count, plot_scores, plot_training_curves

METHOD_LABELS = {
    "adamix_adapter": "AdaMix Adapter",
    "adamix_lora": "AdaMix LoRA",
    "adapter": "Adapter",
    "lora": "LoRA",
    "full": "Full fine-tuning",
}
_KEYS = ["task", "method", "seed", "mode", "metric"]


class ReportError(ValueError):
    """The results cannot be reported: none found, a malformed file (named), or runs the params expect missing."""


# -- reading ---------------------------------------------------------------------------------------------


def _check_result(path: Path, data: Any) -> dict[str, Any]:
    """Validate one result record; raise ReportError naming the file and the bad field."""

    def require(ok: bool, field: str, expected: str) -> None:
        if not ok:
            raise ReportError(f"{path}: malformed result: '{field}' must be {expected}")

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

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
            require(number(value) or value is None, f"modes.{mode}.{metric}", "a number or null")
    for index, entry in enumerate(data["history"]):
        require(
            isinstance(entry, dict) and number(entry.get("epoch")),
            f"history[{index}]",
            "an object with 'epoch'",
        )
    stored_as = f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"
    recorded = f"{data['task']}/{data['method']}/seed{data['seed']}"
    if stored_as != recorded:
        raise ReportError(f"{path}: the result is for {recorded} but is stored as {stored_as}")
    return data


def load_results(results_dir: str | Path, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Read and validate the result files of the params' tasks, methods and seeds.

    Args:
        results_dir: folder holding <task>/<method>/seed<seed>.json files.
        params: validated parameters (`tasks`, `methods`, `seeds`).

    Returns:
        The result records. Files of other tasks, methods or seeds (left from other runs) are ignored.

    Raises:
        ReportError: no result files; a file that is not JSON or not a result; a task or method without results.
    """
    results_dir = Path(results_dir)
    files = sorted(results_dir.glob("*/*/seed*.json"))
    if not files:
        raise ReportError(f"no result files in {results_dir} (expected <task>/<method>/seed<seed>.json)")
    seeds = {f"seed{seed}" for seed in params["seeds"]}
    records = []
    for path in files:
        task, method = path.parent.parent.name, path.parent.name
        if task not in params["tasks"] or method not in params["methods"] or path.stem not in seeds:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ReportError(f"{path}: not a readable JSON file ({err})") from None
        records.append(_check_result(path, data))
    found = {(r["task"], r["method"]) for r in records}
    missing = [f"{t}/{m}" for t in params["tasks"] for m in params["methods"] if (t, m) not in found]
    if missing:
        raise ReportError(f"no results in {results_dir} for task/method: {', '.join(missing)}")
    return records


# -- aggregation -----------------------------------------------------------------------------------------


@dataclass
class _Collected:
    """Everything read from the result files, aggregated over seeds."""

    records: list[dict[str, Any]]
    tidy: pd.DataFrame  # one row per task, method, seed, mode, metric
    summary: pd.DataFrame  # mean, std (ddof=1), n per task, method, mode, metric
    primary: dict[str, str]  # task -> primary metric
    mode_of: dict[str, str]  # method -> the mode its main-table row shows
    missing: list[str]  # task/method/seed<seed> the params expect but no result holds

    def stats(self, task: str, method: str, mode: str, metric: str) -> tuple[float, float, int]:
        rows = self.summary[
            (self.summary.task == task) & (self.summary.method == method)
            & (self.summary["mode"] == mode) & (self.summary.metric == metric)
        ]  # fmt: skip
        return (
            (rows["mean"].iat[0], rows["std"].iat[0], int(rows["n"].iat[0]))
            if len(rows)
            else (math.nan, math.nan, 0)
        )

    def modes(self, method: str) -> list[str]:
        """The modes a method was evaluated in, AdaMix's order (merge, random, fixed) first."""
        found = {mode for r in self.records if r["method"] == method for mode in r["modes"]}
        order = {mode: i for i, mode in enumerate(INFERENCE_MODES)}
        return sorted(found, key=lambda mode: (order.get(mode, len(order)), mode))


def _collect(results_dir: str | Path, params: Mapping[str, Any]) -> _Collected:
    records = load_results(results_dir, params)
    primary: dict[str, str] = {}
    mode_of: dict[str, str] = {}
    for r in records:
        run = f"{r['task']}/{r['method']}/seed{r['seed']}"
        if primary.setdefault(r["task"], r["primary_metric"]) != r["primary_metric"]:
            raise ReportError(
                f"{run}: primary metric {r['primary_metric']}, other runs of the task use {primary[r['task']]}"
            )
        wanted = params["report"]["primary_mode"]
        modes = list(r["modes"])
        mode = wanted if wanted in modes else modes[0] if len(modes) == 1 else None
        if mode is None:
            raise ReportError(
                f"{run}: report.primary_mode '{wanted}' is not among its modes ({', '.join(modes)})"
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
    expected = [(t, m, s) for t in params["tasks"] for m in params["methods"] for s in params["seeds"]]
    missing = [f"{t}/{m}/seed{s}" for t, m, s in expected if (t, m, s) not in found]
    return _Collected(records, tidy, summary.reset_index(), primary, mode_of, missing)


# -- tables ----------------------------------------------------------------------------------------------


def _columns(tasks: list[str], data: _Collected) -> list[tuple[str, str, str]]:
    """(task, metric key, header) per column: each task's primary metric, then e.g. MNLI's mismatched split."""
    columns = []
    for task in tasks:
        metric = data.primary[task]
        columns.append((task, metric, f"{task} ({metric})"))
        extra = sorted(
            set(
                data.summary.metric[
                    (data.summary.task == task) & data.summary.metric.str.endswith("/" + metric)
                ]
            )
        )
        columns += [(task, key, f"{task} ({key.split('/')[0].removeprefix('test_')})") for key in extra]
    return columns


def _cells(
    data: _Collected, rows: list[tuple[str, str]], columns: list[tuple[str, str, str]], n: int
) -> list[list[Cell]]:
    """Cells of (method, mode) rows; with several tasks, a last cell averages the task columns (not extra splits)."""
    table = []
    for method, mode in rows:
        cells = [Cell(*data.stats(task, method, mode, key), expected_n=n) for task, key, _ in columns]
        means = [cell.mean for cell, (_, key, _) in zip(cells, columns, strict=True) if "/" not in key]
        table.append(cells + ([Cell(sum(means) / len(means))] if len(means) > 1 else []))  # NaN if any is n/a
    return table


# -- the stage -------------------------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _metrics_json(data: _Collected) -> str:
    """task -> method -> {metric: mean, metric_std: std} in each method's reported mode (for dvc metrics)."""
    metrics: dict[str, dict[str, dict[str, float | None]]] = {}
    for row in data.summary.itertuples(index=False):
        if row.mode == data.mode_of[row.method]:
            entry = metrics.setdefault(row.task, {}).setdefault(row.method, {})
            entry[row.metric], entry[f"{row.metric}_std"] = _finite(row.mean), _finite(row.std)
    return json.dumps(metrics, indent=2, sort_keys=True) + "\n"


def _curves(records: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """task -> method -> [(epoch, train loss averaged over seeds)]."""
    losses = pd.DataFrame(
        [(r["task"], r["method"], h["epoch"], h.get("train_loss")) for r in records for h in r["history"]],
        columns=["task", "method", "epoch", "loss"],
    )
    losses["loss"] = pd.to_numeric(losses["loss"], errors="coerce")
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for (task, method), group in losses.groupby(["task", "method"], sort=False):
        means = group.groupby("epoch")["loss"].mean()
        curves.setdefault(task, {})[method] = [(epoch, float(loss)) for epoch, loss in means.items()]
    return curves


def build_report(results_dir: str | Path, out_dir: str | Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Build every report file from the result JSON files.

    Args:
        results_dir: folder holding <task>/<method>/seed<seed>.json.
        out_dir: folder to write into (created if missing); nothing in it is ever left half-written.
        params: validated parameters (`tasks`, `methods`, `seeds`, `report.primary_mode`, `report.decimals`).

    Returns:
        A summary: files written, runs read, runs missing (seeds without a result, left out of the means), and
        the main table's scores as task -> method -> {metric, mean, std, n} (raw values; None if undefined).

    Raises:
        ReportError: no results, a malformed result file, or a task/method of the params without results.
    """
    tasks, methods, seeds = list(params["tasks"]), list(params["methods"]), list(params["seeds"])
    decimals, avg = params["report"]["decimals"], ["Avg"] if len(tasks) > 1 else []
    data = _collect(results_dir, params)
    columns = _columns(tasks, data)
    label = {m: METHOD_LABELS.get(m, m) for m in methods}
    counts = {
        m: sorted({format_count(r["params"]["deployed"]) for r in data.records if r["method"] == m})
        for m in methods
    }
    main = Table(
        ["Method", "Params", *(header for _, _, header in columns), *avg],
        [[label[m], " / ".join(counts[m])] for m in methods],
        _cells(data, [(m, data.mode_of[m]) for m in methods], columns, len(seeds)),
    )
    task_columns = [column for column in columns if "/" not in column[1]]
    mode_rows = [(m, mode) for m in methods if len(data.modes(m)) > 1 for mode in data.modes(m)]
    modes = Table(
        ["Method", "Mode", *(header for _, _, header in task_columns), *avg],
        [[label[m], mode] for m, mode in mode_rows],
        _cells(data, mode_rows, task_columns, len(seeds)),
    )
    caption = (
        f"Test scores x 100, mean ± std over seeds {', '.join(map(str, seeds))} ((n=k): only k runs found). "
        f"AdaMix rows use {params['report']['primary_mode']} inference. Params: tunable parameters deployed after "
        "merging. Best mean per column in bold."
    )
    markdown = f"# Results\n\n{caption}\n\n{main.markdown(decimals)}"
    if mode_rows:
        markdown += f"\n## AdaMix inference modes\n\nMerged experts vs routing at inference.\n\n{modes.markdown(decimals)}"
    if data.missing:
        markdown += f"\nMissing runs, left out of the means: {', '.join(data.missing)}.\n"
    s = data.summary
    modes_csv = s[(s.metric == s.task.map(data.primary)) & s.method.isin({m for m, _ in mode_rows})]
    primary_cells = {
        t: {m: row[i] for m, row in zip(methods, main.cells, strict=True)}
        for i, (t, k, _) in enumerate(columns)
        if "/" not in k
    }
    scores = {t: {m: (c.mean * 100, c.std * 100) for m, c in row.items()} for t, row in primary_cells.items()}
    outputs: dict[str, str | Callable[[Path], None]] = {
        "results.md": markdown,
        "results.csv": data.tidy.to_csv(index=False, na_rep=""),
        "summary.csv": s.to_csv(index=False, na_rep=""),
        "results.tex": main.latex(decimals, caption),
        "inference_modes.csv": modes_csv[["method", "mode", "task", "metric", "mean", "std", "n"]].to_csv(
            index=False, na_rep=""
        ),
        "metrics.json": _metrics_json(data),
        "training_curves.png": lambda path: plot_training_curves(
            _curves(data.records), tasks, methods, label, path
        ),
        "scores.png": lambda path: plot_scores(scores, tasks, methods, label, "primary metric x 100", path),
    }
    _write_all(Path(out_dir), outputs)
    return {
        "out_dir": str(out_dir),
        "files": list(outputs),
        "runs": len(data.records),
        "missing_runs": data.missing,
        "scores": {
            t: {
                m: {"metric": data.primary[t], "mean": _finite(c.mean), "std": _finite(c.std), "n": c.n}
                for m, c in row.items()
            }
            for t, row in primary_cells.items()
        },
    }


def _write_all(out_dir: Path, outputs: Mapping[str, str | Callable[[Path], None]]) -> None:
    """Write every file into a staging folder inside `out_dir`, then move each into place atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    try:
        for name, content in outputs.items():
            if isinstance(content, str):
                (staging / name).write_text(content, encoding="utf-8")
            else:
                content(staging / name)
        for name in outputs:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.report --results results --out reports [--params FILE] [--profile P]``.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        0 on success; 2 with "error: ..." on stderr for bad params or results.
    """
    root = Path(__file__).resolve().parents[1]
    resolved = root / "params.resolved.yaml"
    parser = argparse.ArgumentParser(prog="python -m flows.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="folder of result JSON files (default: results)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.add_argument(
        "--params", default=None, help="params file (default: params.resolved.yaml, else params.yaml)"
    )
    parser.add_argument(
        "--profile", default=None, help="profile merged over the params file (default: $PROFILE)"
    )
    args = parser.parse_args(argv)
    try:
        params = load_params(
            args.params or (resolved if resolved.is_file() else root / "params.yaml"), args.profile
        )
        summary = build_report(args.results, args.out, params)
    except (ReportError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for run in summary["missing_runs"]:
        print(f"warning: no result for {run}; left out of the means", file=sys.stderr)
    print(f"report: {len(summary['files'])} files in {summary['out_dir']} from {summary['runs']} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
