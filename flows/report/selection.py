"""Learning-rate selection on validation: a method trained at several rates enters the tables at its best one.

A method whose ``train.learning_rate`` is a list trains once per value, as the run methods ``<method>.lr=<value>``
(`flows.config.grid`). Per task, the value with the best mean validation score over seeds (the primary metric,
at the epoch each run kept: `train.select`) is the method's entry in every table; test scores never take part in
the choice. Ties go to the value listed first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.grid import lr_variants


@dataclass(frozen=True)
class RateChoice:
    """The learning rates one method tried on one task, and the one chosen."""

    task: str
    method: str
    candidates: dict[float, tuple[float, int]]  # learning rate -> (mean validation score, runs found)
    chosen: float | None  # None when no candidate has a result


def validation_score(record: Mapping[str, Any]) -> float:
    """The primary validation metric of the epoch a run kept (its last epoch for runs before `train.select`)."""
    key = f"validation/{record['primary_metric']}"
    kept = (record.get("selection") or {}).get("validation") or {}
    if key in kept:
        return float(kept[key])
    found = [h[key] for h in record["history"] if isinstance(h.get(key), int | float)]
    return float(found[-1]) if found else math.nan


def candidate_runs(params: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (task, `<method>.lr=<value>`, seed) run of the main methods that train at several rates."""
    return [
        (task, variant.method, seed)
        for task in params["tasks"]
        for method in params["methods"]
        for variant in lr_variants(params, method)
        for seed in params["seeds"]
    ]


def choose_rates(
    records: Sequence[dict[str, Any]], params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[RateChoice]]:
    """Replace each learning-rate candidate's records by the chosen rate's, renamed to the method.

    Args:
        records: validated result records, candidates (`<method>.lr=<value>`) included.
        params: validated parameters (`tasks`, `methods`).

    Returns:
        The records with every candidate run removed and the chosen rate's runs under the method's own name
        (copies, with ``learning_rate`` set), and one RateChoice per task and method that had candidates.
    """
    by_method: dict[str, tuple[str, float]] = {
        variant.method: (method, float(variant.value))
        for method in params["methods"]
        for variant in lr_variants(params, method)
    }
    kept = [r for r in records if r["method"] not in by_method]
    choices = []
    for task in params["tasks"]:
        for method in params["methods"]:
            variants = lr_variants(params, method)
            if not variants:
                continue
            scores: dict[float, tuple[float, int]] = {}
            for variant in variants:
                values = [
                    validation_score(r)
                    for r in records
                    if r["task"] == task and r["method"] == variant.method
                ]
                finite = [v for v in values if math.isfinite(v)]
                scores[float(variant.value)] = (
                    sum(finite) / len(finite) if finite else math.nan,
                    len(finite),
                )
            ranked = [lr for lr, (mean, n) in scores.items() if n]
            chosen = max(ranked, key=lambda lr: scores[lr][0]) if ranked else None
            choices.append(RateChoice(task, method, scores, chosen))
            for r in records:
                owner = by_method.get(r["method"])
                if r["task"] == task and owner == (method, chosen):
                    kept.append({**r, "method": method, "learning_rate": chosen, "run_method": r["method"]})
    return kept, choices


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
        "the rate in bold is the method's entry in the tables above. Test scores take no part in the choice.",
        "",
        "| Task | Method | Learning rate: mean validation score |",
        "|---|---|---|",
    ]
    for choice in choices:
        cells = []
        for lr, (mean, n) in choice.candidates.items():
            text = f"{format_rate(lr)}: " + (f"{mean * 100:.{decimals}f}" if n else "n/a")
            cells.append(f"**{text}**" if lr == choice.chosen else text)
        lines.append(f"| {choice.task} | {labels.get(choice.method, choice.method)} | {', '.join(cells)} |")
    return "\n".join(lines) + "\n"
