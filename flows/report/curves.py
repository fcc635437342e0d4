"""Curves over training from the per-epoch history in each result: loss, validation score, expert diagnostics.

Every curve is task -> method -> [(x, mean over seeds)], x in order: the epoch for the training loss, the optimizer
step (`history[].step`, recorded by the train stage) for the validation score and the expert diagnostics, so
methods with different batch sizes or budgets share an axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

Curves = dict[str, dict[str, list[tuple[float, float]]]]

SPREAD, TRAVEL = "experts/expert_spread", "experts/merged_travel"
"""The history keys of the expert diagnostics (adamix.expert_diagnostics, prefixed by the train stage)."""


def _mean_curves(rows: list[tuple[str, str, Any, Any]]) -> Curves:
    frame = pd.DataFrame(rows, columns=["task", "method", "x", "y"])
    frame["y"] = pd.to_numeric(frame["y"], errors="coerce")
    frame = frame.dropna(subset=["x", "y"])
    curves: Curves = {}
    for (task, method), group in frame.groupby(["task", "method"], sort=False):
        means = group.groupby("x")["y"].mean().sort_index()
        curves.setdefault(task, {})[method] = [(float(x), float(y)) for x, y in means.items()]
    return curves


def training_curves(records: Sequence[Mapping[str, Any]]) -> Curves:
    """task -> method -> [(epoch, train loss averaged over seeds)]."""
    return _mean_curves(
        [(r["task"], r["method"], h["epoch"], h.get("train_loss")) for r in records for h in r["history"]]
    )


def learning_curves(records: Sequence[Mapping[str, Any]]) -> Curves:
    """task -> method -> [(optimizer step, validation primary metric x 100 averaged over seeds)]."""
    return _mean_curves(
        [
            (r["task"], r["method"], h.get("step"), _times_100(h.get(f"validation/{r['primary_metric']}")))
            for r in records
            for h in r["history"]
        ]
    )


def history_curves(records: Sequence[Mapping[str, Any]], key: str) -> Curves:
    """task -> method -> [(optimizer step, history[key] averaged over seeds)]; methods without the key left out."""
    return _mean_curves(
        [(r["task"], r["method"], h.get("step"), h.get(key)) for r in records for h in r["history"]]
    )


def _times_100(value: Any) -> Any:
    return value * 100 if isinstance(value, int | float) and not isinstance(value, bool) else None
