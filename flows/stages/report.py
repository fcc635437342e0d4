"""The `report` stage: collect the per-run result JSON files into tables (md, csv, tex), plots and DVC metrics.

Input: results/<task>/<method>/seed<seed>.json, one per run (written by flows.stages.evaluate), ablation variants
included. Output, in --out, every file always written (see OUTPUTS): results.md (main table, inference modes,
ablations, significance, the paper's numbers, which findings held), results.csv (tidy), summary.csv, results.tex
(booktabs), inference_modes.csv and .png, significance.csv, paper_comparison.csv, training_curves.png,
learning_curves.png (validation score against optimizer step), expert_diagnostics.png (spread between experts,
travel of the merged module), scores.png, metrics.json (for ``dvc metrics show``) and the folder ablations/
(flows.report.ablations). Tables show the primary metric x 100 as mean +- std over seeds; CSV and JSON files keep
raw values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..atomic import staging_dir
from ..config import paths
from ..config.grid import run_params
from ..config.params import ParamsError, load_params
from ..report.ablations import (
    FOLDER,
    GridResult,
    ablation_markdown,
    ablation_outputs,
    collect_ablations_and_rates,
    grid_results,
)
from ..report.collect import Collected, ReportError, collect, load_results, load_results_and_rates, main_runs
from ..report.curves import SPREAD, TRAVEL, history_curves, learning_curves, training_curves
from ..report.findings import findings, findings_section
from ..report.nlg import FOLDER as NLG_FOLDER
from ..report.nlg import nlg_outputs, nlg_section
from ..report.paper import compare, comparison_csv, comparison_section
from ..report.plots import (
    Cell,
    Table,
    format_count,
    plot_curves,
    plot_placeholder,
    plot_scores,
    plot_training_curves,
)
from ..report.selection import format_rate, selection_section
from ..report.stats import paired_tests, significance_csv, significance_section

__all__ = ["METHOD_LABELS", "OUTPUTS", "ReportError", "build_report", "load_results", "main"]

METHOD_LABELS = {
    "adamix_adapter": "AdaMix Adapter",
    "adamix_lora": "AdaMix LoRA",
    "adapter": "Adapter",
    "lora": "LoRA",
    "full": "Full fine-tuning",
}
OUTPUTS = (
    "results.md",
    "results.csv",
    "summary.csv",
    "results.tex",
    "inference_modes.csv",
    "inference_modes.png",
    "significance.csv",
    "paper_comparison.csv",
    "metrics.json",
    "training_curves.png",
    "learning_curves.png",
    "expert_diagnostics.png",
    "scores.png",
    FOLDER,
    NLG_FOLDER,
)
"""What build_report writes into the report folder, always: files, and the ablations/ folder (replaced whole)."""


# -- tables ----------------------------------------------------------------------------------------------


def _columns(tasks: list[str], data: Collected) -> list[tuple[str, str, str]]:
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
    data: Collected, rows: list[tuple[str, str]], columns: list[tuple[str, str, str]], n: int
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


def _metrics_json(data: Collected, grids: list[GridResult]) -> str:
    """task -> method -> {metric: mean, metric_std: std} in each method's reported mode (for dvc metrics);
    with ablation runs, also "ablations" -> grid -> task -> {value: mean, value_std: std} (primary metric)."""
    metrics: dict[str, Any] = {}
    for row in data.summary.itertuples(index=False):
        if row.mode == data.mode_of[row.method]:
            entry = metrics.setdefault(row.task, {}).setdefault(row.method, {})
            entry[row.metric], entry[f"{row.metric}_std"] = _finite(row.mean), _finite(row.std)
    for grid in grids:
        for task, cells in grid.cells.items():
            entry = metrics.setdefault("ablations", {}).setdefault(grid.name, {}).setdefault(task, {})
            for value, cell in cells.items():
                entry[value], entry[f"{value}_std"] = _finite(cell.mean), _finite(cell.std)
    return json.dumps(metrics, indent=2, sort_keys=True) + "\n"


def build_report(results_dir: str | Path, out_dir: str | Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Build every report file from the result JSON files.

    Args:
        results_dir: folder holding <task>/<method>/seed<seed>.json.
        out_dir: folder to write into (created if missing); nothing in it is ever left half-written.
        params: validated parameters (`tasks`, `methods`, `seeds`, `report`, `ablations`, and for the paper
            comparison `data.max_train_examples`, `data.max_eval_examples`, `train.epochs`, `fewshot.k`).

    Returns:
        A summary: files written (OUTPUTS; "ablations" is a folder), the ablations folder's files, runs read,
        runs missing (seeds without a result, left out of the means; main and ablation runs separately), and
        the main table's scores as task -> method -> {metric, mean, std, n} (raw values; None if undefined).

    Raises:
        ReportError: no results, a malformed result file, or a task/method of the params (or a value of an
            ablation grid on an ablation task) without any result.
    """
    tasks, methods, seeds = list(params["tasks"]), list(params["methods"]), list(params["seeds"])
    decimals, avg = params["report"]["decimals"], ["Avg"] if len(tasks) > 1 else []
    records, rate_choices = load_results_and_rates(results_dir, params)
    data = collect(records, main_runs(params), params["report"]["primary_mode"])
    ablations, ablation_rates = collect_ablations_and_rates(results_dir, params)
    _check_primary_metrics(data, ablations)
    grids = grid_results(ablations, params)
    columns = _columns(tasks, data)
    label = {m: METHOD_LABELS.get(m, m) for m in methods} | {
        g.base: METHOD_LABELS.get(g.base, g.base) for g in grids
    }
    counts = {
        m: sorted({format_count(r["params"]["deployed"]) for r in data.records if r["method"] == m})
        for m in methods
    }
    rates = {m: " / ".join(format_rate(lr) for lr in _rates(data.records, m, params)) for m in methods}
    main = Table(
        ["Method", "Params", "LR", *(header for _, _, header in columns), *avg],
        [[label[m], " / ".join(counts[m]), rates[m]] for m in methods],
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
        "merging. LR: the learning rate (chosen on validation where several were trained). Best mean per column "
        "in bold."
    )
    tests = paired_tests(data, tasks, methods)
    paper_rows = compare(data, params)
    markdown = f"# Results\n\n{caption}\n\n{main.markdown(decimals)}"
    if mode_rows:
        markdown += f"\n## AdaMix inference modes\n\nMerged experts vs routing at inference.\n\n{modes.markdown(decimals)}"
    if data.missing:
        markdown += f"\nMissing runs, left out of the means: {', '.join(data.missing)}.\n"
    markdown += "\n" + "\n".join(
        [
            nlg_section(data, methods, label, decimals),
            selection_section(rate_choices + ablation_rates, label, decimals),
            ablation_markdown(grids, ablations, params, label),
            significance_section(tests, methods, label, decimals),
            comparison_section(paper_rows, data, params, label),
            findings_section(findings(data, grids, ablations, params, label)),
        ]
    )
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
        "inference_modes.png": lambda path: _plot_modes(data, mode_rows, tasks, label, path),
        "significance.csv": significance_csv(tests),
        "paper_comparison.csv": comparison_csv(paper_rows),
        "metrics.json": _metrics_json(data, grids),
        "training_curves.png": lambda path: plot_training_curves(
            training_curves(data.records), tasks, methods, label, path
        ),
        "learning_curves.png": lambda path: plot_curves(
            [(learning_curves(data.records), "validation primary metric x 100")],
            tasks,
            methods,
            label,
            path,
            xlabel="optimizer step",
            empty="no validation history",
        ),
        "expert_diagnostics.png": lambda path: plot_curves(
            [
                (history_curves(data.records, SPREAD), "expert spread"),
                (history_curves(data.records, TRAVEL), "merged module travel"),
            ],
            tasks,
            methods,
            label,
            path,
            xlabel="optimizer step",
            empty="no expert diagnostics",
        ),
        "scores.png": lambda path: plot_scores(scores, tasks, methods, label, "primary metric x 100", path),
        **ablation_outputs(grids, ablations, params, label),
        **nlg_outputs(data),
    }
    _write_all(Path(out_dir), outputs)
    return {
        "out_dir": str(out_dir),
        "files": list(OUTPUTS),
        "ablation_files": sorted(name.split("/", 1)[1] for name in outputs if name.startswith(FOLDER + "/")),
        "nlg_files": sum(name.startswith(NLG_FOLDER + "/") for name in outputs),
        "runs": len(data.records) + (len(ablations.records) if ablations else 0),
        "missing_runs": data.missing,
        "missing_ablation_runs": ablations.missing if ablations else [],
        "scores": {
            t: {
                m: {"metric": data.primary[t], "mean": _finite(c.mean), "std": _finite(c.std), "n": c.n}
                for m, c in row.items()
            }
            for t, row in primary_cells.items()
        },
    }


def _rates(records: list[dict[str, Any]], method: str, params: Mapping[str, Any]) -> list[float]:
    """The learning rates a method's runs used (results before the rate was recorded: the params' value)."""
    found = {r["learning_rate"] for r in records if r["method"] == method and "learning_rate" in r}
    return sorted(found) if found else [run_params(params, method)["train"]["learning_rate"]]


def _check_primary_metrics(data: Collected, ablations: Collected | None) -> None:
    for task, metric in (ablations.primary if ablations else {}).items():
        if data.primary.get(task, metric) != metric:
            raise ReportError(
                f"{task}: ablation runs use primary metric {metric}, the main runs {data.primary[task]}"
            )


def _plot_modes(
    data: Collected, rows: list[tuple[str, str]], tasks: list[str], label: Mapping[str, str], path: Path
) -> None:
    """Scores of each AdaMix method in each inference mode, per task; a placeholder figure without such runs."""
    if not rows:
        plot_placeholder("no method evaluated in several inference modes", path)
        return
    keys = [f"{m}:{mode}" for m, mode in rows]
    names = {f"{m}:{mode}": f"{label[m]} ({mode})" for m, mode in rows}
    scores = {
        t: {f"{m}:{mode}": tuple(v * 100 for v in data.score(t, m, mode)[:2]) for m, mode in rows}
        for t in tasks
    }
    plot_scores(scores, tasks, keys, names, "primary metric x 100", path)


def _write_all(out_dir: Path, outputs: Mapping[str, str | Callable[[Path], None]]) -> None:
    """Write every output into a staging folder inside `out_dir`, then move each into place atomically.

    A name with a folder (``ablations/README.md``) puts the file in that folder, and the folder replaces the
    previous one whole, so files of grids no longer in the params do not linger.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(out_dir / "staging")  # .staging.<random> inside out_dir
    try:
        for name, content in outputs.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                (staging / name).write_text(content, encoding="utf-8")
            else:
                content(staging / name)
        for top in dict.fromkeys(name.split("/", 1)[0] for name in outputs):
            if (staging / top).is_dir() and (out_dir / top).exists():
                os.replace(out_dir / top, staging / f".previous-{top}")  # removed with the staging folder
            os.replace(staging / top, out_dir / top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.stages.report --results results --out reports [--params FILE] [--profile P]``.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        0 on success; 2 with "error: ..." on stderr for bad params or results.
    """
    root = paths.project_root()
    resolved = root / paths.RESOLVED_PARAMS
    parser = argparse.ArgumentParser(
        prog="python -m flows.stages.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--results", default="results", help="folder of result JSON files (default: results)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.add_argument(
        "--params",
        default=None,
        help="params file (default: params.yaml with --profile, else params.resolved.yaml if it exists)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="profile merged over the params file (default: $PROFILE over params.yaml; none over "
        "params.resolved.yaml, which has the profile merged in already)",
    )
    args = parser.parse_args(argv)
    # An explicit --profile goes over params.yaml: params.resolved.yaml holds the last resolve's profile already.
    use_resolved = not args.profile and resolved.is_file()
    source = args.params or (resolved if use_resolved else root / "params.yaml")
    # `make reproduce PROFILE=p` resolves p into params.resolved.yaml, then runs this stage with PROFILE still
    # set: merging p again would stack it twice (a profile's own report.dir then reads as the base's).
    profile = "" if args.profile is None and Path(source) == resolved else args.profile
    try:
        params = load_params(source, profile)
        summary = build_report(args.results, args.out, params)
    except (ReportError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for run in summary["missing_runs"] + summary["missing_ablation_runs"]:
        print(f"warning: no result for {run}; left out of the means", file=sys.stderr)
    files = len(summary["files"]) - 2  # the ablations and nlg folders are counted apart
    where = f"{summary['out_dir']} (and {len(summary['ablation_files'])} in {FOLDER}/, {summary['nlg_files']} in {NLG_FOLDER}/)"
    print(f"report: {files} files in {where} from {summary['runs']} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
