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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import staging_dir
from ..config import paths
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
from ..report.paper import Row, compare, comparison_csv, comparison_section
from ..report.plots import (
    Cell,
    Table,
    plot_curves,
    plot_placeholder,
    plot_scores,
    plot_training_curves,
)
from ..report.selection import RateChoice, selection_section
from ..report.stats import Paired, paired_tests, significance_csv, significance_section
from ..report.tables import Column, main_table, modes_table, table_columns

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
    report = _assemble(results_dir, params)
    outputs = _outputs(report)
    _write_all(Path(out_dir), outputs)
    return _summary(report, out_dir, outputs)


@dataclass(frozen=True)
class _Report:
    """What the report files are made of: the collected results, ablations, and the tables built on them."""

    params: Mapping[str, Any]
    data: Collected
    ablations: Collected | None
    grids: list[GridResult]
    rate_choices: list[RateChoice]  # learning-rate choices (main methods, then ablation variants)
    columns: list[Column]  # the main table's columns
    label: dict[str, str]  # method -> the name the tables show
    mode_rows: list[tuple[str, str]]  # (method, inference mode) of methods evaluated in several modes
    main: Table
    modes: Table
    tests: list[Paired]  # each AdaMix method against the best baseline of each task
    paper_rows: list[Row]  # the paper's published numbers beside ours

    @property
    def tasks(self) -> list[str]:
        """The params' tasks, in table order."""
        return list(self.params["tasks"])

    @property
    def methods(self) -> list[str]:
        """The params' methods, in table order."""
        return list(self.params["methods"])

    @property
    def decimals(self) -> int:
        """Decimals of the tables' scores x 100."""
        return self.params["report"]["decimals"]


def _assemble(results_dir: str | Path, params: Mapping[str, Any]) -> _Report:
    """Read the results (main runs and ablations) and build the tables and tests every output draws on."""
    tasks, methods = list(params["tasks"]), list(params["methods"])
    records, rate_choices = load_results_and_rates(results_dir, params)
    data = collect(records, main_runs(params), params["report"]["primary_mode"])
    ablations, ablation_rates = collect_ablations_and_rates(results_dir, params)
    _check_primary_metrics(data, ablations)
    grids = grid_results(ablations, params)
    columns = table_columns(tasks, data)
    label = {m: METHOD_LABELS.get(m, m) for m in methods} | {
        g.base: METHOD_LABELS.get(g.base, g.base) for g in grids
    }
    main = main_table(data, params, columns, label)
    mode_rows = [(m, mode) for m in methods if len(data.modes(m)) > 1 for mode in data.modes(m)]
    modes = modes_table(data, params, mode_rows, columns, label)
    tests, paper_rows = paired_tests(data, tasks, methods), compare(data, params)
    return _Report(
        params,
        data,
        ablations,
        grids,
        rate_choices + ablation_rates,
        columns,
        label,
        mode_rows,
        main,
        modes,
        tests,
        paper_rows,
    )


def _markdown(r: _Report) -> str:
    """results.md: the main table, inference modes, missing runs, then every section of the report."""
    params, decimals = r.params, r.decimals
    caption = _caption(params)
    markdown = f"# Results\n\n{caption}\n\n{r.main.markdown(decimals)}"
    if r.mode_rows:
        markdown += f"\n## AdaMix inference modes\n\nMerged experts vs routing at inference.\n\n{r.modes.markdown(decimals)}"
    if r.data.missing:
        markdown += f"\nMissing runs, left out of the means: {', '.join(r.data.missing)}.\n"
    return (
        markdown
        + "\n"
        + "\n".join(
            [
                nlg_section(r.data, r.methods, r.label, decimals),
                selection_section(r.rate_choices, r.label, decimals),
                ablation_markdown(r.grids, r.ablations, params, r.label),
                significance_section(r.tests, r.methods, r.label, decimals),
                comparison_section(r.paper_rows, r.data, params, r.label),
                findings_section(findings(r.data, r.grids, r.ablations, params, r.label)),
            ]
        )
    )


def _caption(params: Mapping[str, Any]) -> str:
    """The main table's caption (results.md and results.tex)."""
    seeds = ", ".join(map(str, params["seeds"]))
    return (
        f"Test scores x 100, mean ± std over seeds {seeds} ((n=k): only k runs found). "
        f"AdaMix rows use {params['report']['primary_mode']} inference. Params: tunable parameters deployed after "
        "merging. LR: the learning rate (chosen on validation where several were trained). Best mean per column "
        "in bold."
    )


def _primary_cells(r: _Report) -> dict[str, dict[str, Cell]]:
    """task -> method -> the main table's cell of the task's primary metric (extra test splits left out)."""
    return {
        t: {m: row[i] for m, row in zip(r.methods, r.main.cells, strict=True)}
        for i, (t, k, _) in enumerate(r.columns)
        if "/" not in k
    }


def _outputs(r: _Report) -> dict[str, str | Callable[[Path], None]]:
    """Every output file: its text, or a function that draws it at a path (the plots)."""
    data, tasks, methods, label, s = r.data, r.tasks, r.methods, r.label, r.data.summary
    modes_csv = s[(s.metric == s.task.map(data.primary)) & s.method.isin({m for m, _ in r.mode_rows})]
    scores = {
        t: {m: (c.mean * 100, c.std * 100) for m, c in row.items()} for t, row in _primary_cells(r).items()
    }
    return {
        "results.md": _markdown(r),
        "results.csv": data.tidy.to_csv(index=False, na_rep=""),
        "summary.csv": s.to_csv(index=False, na_rep=""),
        "results.tex": r.main.latex(r.decimals, _caption(r.params)),
        "inference_modes.csv": modes_csv[["method", "mode", "task", "metric", "mean", "std", "n"]].to_csv(
            index=False, na_rep=""
        ),
        "inference_modes.png": lambda path: _plot_modes(data, r.mode_rows, tasks, label, path),
        "significance.csv": significance_csv(r.tests),
        "paper_comparison.csv": comparison_csv(r.paper_rows),
        "metrics.json": _metrics_json(data, r.grids),
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
        **ablation_outputs(r.grids, r.ablations, r.params, label),
        **nlg_outputs(data),
    }


def _summary(r: _Report, out_dir: str | Path, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """build_report's return value: what was written and read, and the main table's primary scores."""
    data, ablations = r.data, r.ablations
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
            for t, row in _primary_cells(r).items()
        },
    }


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
