"""What a study holds: its arms (the runs of one method of one profile) and the comparisons between them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .bootstrap import Plateau
from .selection import RateChoice

BOOTSTRAP = {"replicates": 10_000, "seed": 0, "margin": 0.01, "plateau_margin": 0.05}  # `bootstrap:` defaults


@dataclass
class Arm:
    """One arm: the runs of one method of one profile, at its chosen learning rate."""

    name: str
    budget: str
    profile: str
    method: str
    records: list[dict[str, Any]]  # renamed to the arm's name (curves are keyed by it)
    test: dict[int, float]  # seed -> test primary metric, in the method's reported mode
    validation: dict[int, float]  # seed -> validation primary metric at the kept epoch
    learning_rate: float
    choice: RateChoice | None  # None when the arm trained at one rate
    steps: int  # optimizer steps of a run
    last_kept: int  # runs whose best validation epoch was their last one (still improving at the end)
    # seed -> 1/0 per test example, in the method's reported mode
    correct: dict[int, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None  # the gold test labels (one test set for every seed)
    per_example: str = ""  # why `correct` is empty; "" when it is not
    plateau: Plateau | None = None  # None: the result files cannot tell

    @property
    def rate_at_edge(self) -> bool:
        """The chosen rate is the smallest or largest of three or more tried: a wider grid might do better."""
        rates = list(self.choice.candidates) if self.choice else []
        return len(rates) > 2 and self.choice.chosen in (min(rates), max(rates))

    @property
    def seeds(self) -> int:
        return len(self.test)

    def mean_std(self) -> tuple[float, float]:
        values = list(self.test.values())
        series = pd.Series(values, dtype=float)
        return float(series.mean()), float(series.std(ddof=1)) if len(values) > 1 else math.nan


@dataclass
class Comparison:
    """A paired test of one arm against another within one budget (differences: arm minus against)."""

    budget: str
    arm: str
    against: str
    n: int
    mean_diff: float
    wins: int
    t: float
    p: float
    t_low: float = math.nan  # t interval (95%) of the mean per-seed difference: seed variation only
    t_high: float = math.nan
    ci_low: float = math.nan  # bootstrap 95% interval of the difference; NaN: no bootstrap (see `note`)
    ci_high: float = math.nan
    p_bootstrap: float = math.nan
    p_holm: float = math.nan  # p_bootstrap adjusted over every comparison of the study
    replicates: int | None = None
    examples: int | None = None
    note: str = ""  # why there is no bootstrap
