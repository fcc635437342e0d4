"""Learning-rate selection on validation: a method trained at several rates enters the tables at its best one.

A method whose ``train.learning_rate`` is a list trains once per value, as the run methods ``<method>.lr=<value>``
(`flows.config.grid`), and so does each of its ablation variants. Per task, the value with the best mean validation
score over seeds (the primary metric, at the epoch each run kept: `train.select`) is the run method's entry in
every table, main or ablation; test scores never take part in the choice. Ties go to the value listed first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.grid import lr_variants, variants


@dataclass(frozen=True)
class RateChoice:
    """The learning rates one method tried on one task, and the one chosen."""

    task: str
    method: str
    candidates: dict[float, tuple[float, int]]  # learning rate -> (mean validation score, runs found)
    chosen: float | None  # None when no candidate has a result
    tied: tuple[float, ...] = ()  # the rates sharing the best mean when several do (the smallest is chosen)


def validation_score(record: Mapping[str, Any]) -> float:
    """The primary validation metric of the epoch a run kept (its last epoch for runs before `train.select`)."""
    key = f"validation/{record['primary_metric']}"
    kept = (record.get("selection") or {}).get("validation") or {}
    if key in kept:
        return float(kept[key])
    found = [h[key] for h in record["history"] if isinstance(h.get(key), int | float)]
    return float(found[-1]) if found else math.nan


def mean_validation(records: Sequence[Mapping[str, Any]], task: str, method: str) -> tuple[float, int]:
    """(mean validation score, runs with one) of a run method's records on a task; NaN when none has one."""
    values = [validation_score(r) for r in records if r["task"] == task and r["method"] == method]
    finite = [v for v in values if math.isfinite(v)]
    return (sum(finite) / len(finite) if finite else math.nan), len(finite)


Owner = tuple[str, str]  # (task, run method trained at several rates)


def swept(params: Mapping[str, Any], ablations: bool = False) -> list[Owner]:
    """The (task, run method) pairs that train at several rates: the main methods on the main tasks, or with
    `ablations`, the grids' run methods (their variants and the method itself) on the ablation tasks."""
    if not ablations:
        pairs = [(task, method) for task in params["tasks"] for method in params["methods"]]
    else:
        pairs = [
            (task, variant.method)
            for grid in params["ablations"]["grids"]
            for task in params["ablations"]["tasks"]
            for variant in variants(params, grid)
        ]
    return [pair for pair in dict.fromkeys(pairs) if lr_variants(params, pair[1])]


def candidate_runs(
    params: Mapping[str, Any], owners: Sequence[Owner] | None = None, seeds: Sequence[int] | None = None
) -> list[tuple[str, str, int]]:
    """Every (task, `<run method>.lr=<value>`, seed) run of `owners` (default: `swept(params)`, the main
    methods), over `seeds` (default: the main seeds)."""
    owners = swept(params) if owners is None else owners
    seeds = params["seeds"] if seeds is None else seeds
    return [
        (task, variant.method, seed)
        for task, method in owners
        for variant in lr_variants(params, method)
        for seed in seeds
    ]


def choose_rates(
    records: Sequence[dict[str, Any]], params: Mapping[str, Any], owners: Sequence[Owner] | None = None
) -> tuple[list[dict[str, Any]], list[RateChoice]]:
    """Replace each learning-rate candidate's records by the chosen rate's, renamed to the run method it sweeps.

    Args:
        records: validated result records, candidates (`<method>.lr=<value>`) included.
        params: validated parameters.
        owners: the (task, run method) pairs to choose for; default `swept(params)`, the main methods.

    Returns:
        The records with every candidate run removed and the chosen rate's runs under the run method's own name
        (copies, with ``learning_rate`` set), and one RateChoice per owner.
    """
    owners = swept(params) if owners is None else owners
    candidates = {
        (task, v.method): (method, float(v.value))
        for task, method in owners
        for v in lr_variants(params, method)
    }
    kept = [r for r in records if (r["task"], r["method"]) not in candidates]
    choices = []
    for task, method in owners:
        scores: dict[float, tuple[float, int]] = {}
        for variant in lr_variants(params, method):
            scores[float(variant.value)] = mean_validation(records, task, variant.method)
        chosen, tied = _best_rate(scores)
        choices.append(RateChoice(task, method, scores, chosen, tied))
        for r in records:
            if candidates.get((task, r["method"])) == (method, chosen) and r["task"] == task:
                kept.append({**r, "method": method, "learning_rate": chosen, "run_method": r["method"]})
    return kept, choices


def _best_rate(scores: Mapping[float, tuple[float, int]]) -> tuple[float | None, tuple[float, ...]]:
    """(the rate with the best mean validation score, the rates tied with it). A tie (means within 1e-9) goes to
    the smallest rate, whatever order the grid lists them in: the choice must not depend on how it was written."""
    ranked = {lr: mean for lr, (mean, n) in scores.items() if n}
    if not ranked:
        return None, ()
    best = max(ranked.values())
    tied = tuple(sorted(lr for lr, mean in ranked.items() if best - mean <= 1e-9))
    return tied[0], tied if len(tied) > 1 else ()


def format_rate(value: float) -> str:
    """A learning rate as tables show it: ``5e-03``, ``1.5e-03`` (two significant digits, no trailing ``.0``)."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{exponent}"


def selection_section(choices: Sequence[RateChoice], labels: Mapping[str, str], decimals: int) -> str:
    """Markdown: per task and method, the mean validation score at each rate, the chosen one in bold."""
    if not choices:
        return ""
    lines = [
        "## Learning rates chosen on validation",
        "",
        "Mean validation score x 100 over seeds (primary metric, at the epoch each run kept) per learning rate; "
        "the rate in bold is the run method's entry in its table (main or ablation). Test scores take no part in the "
        "choice.",
        "",
        "| Task | Method | Learning rate: mean validation score |",
        "|---|---|---|",
    ]
    for choice in choices:
        cells = []
        for lr, (mean, n) in choice.candidates.items():
            text = f"{format_rate(lr)}: " + (f"{mean * 100:.{decimals}f}" if n else "n/a")
            cells.append(f"**{text}**" if lr == choice.chosen else text)
        tie = " (a tie, the smallest rate kept)" if choice.tied else ""
        lines.append(
            f"| {choice.task} | {labels.get(choice.method, choice.method)} | {', '.join(cells)}{tie} |"
        )
    return "\n".join(lines) + "\n"
