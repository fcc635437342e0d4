"""The report's tables of test scores: the main table (a row per method, a column per task) and the table of
AdaMix's inference modes, each cell the mean ± std over seeds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.grid import run_params
from .collect import Collected
from .plots import Cell, Table, format_count
from .selection import format_rate

Column = tuple[str, str, str]  # (task, metric key, header)


def table_columns(tasks: list[str], data: Collected) -> list[Column]:
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


def table_cells(
    data: Collected, rows: list[tuple[str, str]], columns: list[Column], n: int
) -> list[list[Cell]]:
    """Cells of (method, mode) rows; with several tasks, a last cell averages the task columns (not extra splits)."""
    table = []
    for method, mode in rows:
        cells = [Cell(*data.stats(task, method, mode, key), expected_n=n) for task, key, _ in columns]
        means = [cell.mean for cell, (_, key, _) in zip(cells, columns, strict=True) if "/" not in key]
        table.append(cells + ([Cell(sum(means) / len(means))] if len(means) > 1 else []))  # NaN if any is n/a
    return table


def main_table(
    data: Collected, params: Mapping[str, Any], columns: list[Column], label: Mapping[str, str]
) -> Table:
    """A row per method in its reported mode: its deployed parameter count, learning rate(s), and a cell per
    column (with several tasks, their average last)."""
    methods, seeds = list(params["methods"]), list(params["seeds"])
    counts = {
        m: sorted({format_count(r["params"]["deployed"]) for r in data.records if r["method"] == m})
        for m in methods
    }
    rates = {m: " / ".join(format_rate(lr) for lr in _rates(data.records, m, params)) for m in methods}
    return Table(
        ["Method", "Params", "LR", *(header for _, _, header in columns), *_average(params)],
        [[label[m], " / ".join(counts[m]), rates[m]] for m in methods],
        table_cells(data, [(m, data.mode_of[m]) for m in methods], columns, len(seeds)),
    )


def modes_table(
    data: Collected,
    params: Mapping[str, Any],
    rows: list[tuple[str, str]],
    columns: list[Column],
    label: Mapping[str, str],
) -> Table:
    """A row per (method, inference mode) of `rows`, a cell per task's primary metric (no extra splits)."""
    task_columns = [column for column in columns if "/" not in column[1]]
    return Table(
        ["Method", "Mode", *(header for _, _, header in task_columns), *_average(params)],
        [[label[m], mode] for m, mode in rows],
        table_cells(data, rows, task_columns, len(params["seeds"])),
    )


def _average(params: Mapping[str, Any]) -> list[str]:
    """The average column's header, with several tasks; none with one."""
    return ["Avg"] if len(params["tasks"]) > 1 else []


def _rates(records: list[dict[str, Any]], method: str, params: Mapping[str, Any]) -> list[float]:
    """The learning rates a method's runs used (results before the rate was recorded: the params' value)."""
    found = {r["learning_rate"] for r in records if r["method"] == method and "learning_rate" in r}
    return sorted(found) if found else [run_params(params, method)["train"]["learning_rate"]]
