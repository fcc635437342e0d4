"""The paired test of the report: each AdaMix method against the best baseline of each task (chosen on
validation), paired by seed.

Seeds pair runs: the same seed gives both methods the same data order and split, so the per-seed differences
are what the test looks at (scipy.stats.ttest_rel), with the mean difference and how often AdaMix wins.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from ..config.grid import base_method
from .collect import Collected
from .selection import mean_validation


def is_adamix(method: str) -> bool:
    """AdaMix methods and their ablation variants (``adamix_adapter``, ``adamix_lora.share=none``)."""
    return base_method(method).startswith("adamix")


# -- paired test -----------------------------------------------------------------------------------------


@dataclass
class Paired:
    """AdaMix against a baseline on one task, paired by seed (differences are AdaMix minus baseline)."""

    task: str
    method: str
    baseline: str
    metric: str
    n: int  # seeds both have a score for
    mean_diff: float
    wins: int  # seeds where AdaMix scores strictly higher
    t: float  # NaN when n < 2 or the differences do not vary around zero
    p: float


def paired_test(
    adamix: Mapping[int, float], baseline: Mapping[int, float]
) -> tuple[int, float, int, float, float]:
    """Paired two-sided t-test over the seeds both runs share.

    Args:
        adamix: seed -> score.
        baseline: seed -> score.

    Returns:
        (n, mean difference, AdaMix wins, t, p); t and p are NaN when n < 2 or all differences are zero.
    """
    seeds = sorted(set(adamix) & set(baseline))
    diffs = [adamix[s] - baseline[s] for s in seeds]
    mean = sum(diffs) / len(diffs) if diffs else math.nan
    t = p = math.nan
    if len(diffs) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", RuntimeWarning
            )  # identical differences: scipy warns, returns nan/inf
            result = stats.ttest_rel([adamix[s] for s in seeds], [baseline[s] for s in seeds])
        t, p = float(result.statistic), float(result.pvalue)
    return len(diffs), mean, sum(d > 0 for d in diffs), t, p


def t_interval(
    adamix: Mapping[int, float], baseline: Mapping[int, float], level: float = 0.95
) -> tuple[float, float]:
    """The t interval of the mean per-seed difference (AdaMix minus baseline) over the seeds both share.

    It sees seed-to-seed variation only, not the noise of a finite test set (the bootstrap of
    `flows.report.bootstrap` sees both). (NaN, NaN) below 2 common seeds.
    """
    seeds = sorted(set(adamix) & set(baseline))
    if len(seeds) < 2:
        return math.nan, math.nan
    diffs = pd.Series([adamix[s] - baseline[s] for s in seeds], dtype=float)
    half = (
        float(stats.t.ppf(0.5 + level / 2, len(seeds) - 1)) * float(diffs.std(ddof=1)) / math.sqrt(len(seeds))
    )
    return float(diffs.mean()) - half, float(diffs.mean()) + half


def paired_tests(data: Collected, tasks: Sequence[str], methods: Sequence[str]) -> list[Paired]:
    """Each AdaMix method against the best baseline of each task: the non-AdaMix method with the highest mean
    validation score (test scores choose nothing). Where no baseline has a validation score (runs trained with
    `eval_every_epoch: false`), every baseline is tested, so that no choice is made at all."""
    out = []
    baselines = [m for m in methods if not is_adamix(m)]
    for task in tasks:
        present = [m for m in baselines if data.per_seed(task, m)]
        for baseline in _best_on_validation(data, task, present):
            for method in (m for m in methods if is_adamix(m)):
                test = paired_test(data.per_seed(task, method), data.per_seed(task, baseline))
                out.append(Paired(task, method, baseline, data.primary[task], *test))
    return out


def _best_on_validation(data: Collected, task: str, baselines: Sequence[str]) -> list[str]:
    """[the baseline with the best mean validation score], or all of them when none has one."""
    found = {method: mean_validation(data.records, task, method) for method in baselines}
    means = {method: mean for method, (mean, n) in found.items() if n}
    return [max(means, key=means.get)] if means else list(baselines)


def t_text(t: float) -> str:
    if math.isinf(t):  # the differences are all equal and nonzero
        return "∞" if t > 0 else "−∞"
    return f"{t:.2f}" if math.isfinite(t) else "n/a"


def p_text(p: float) -> str:
    return "n/a" if not math.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def significance_section(
    tests: list[Paired], methods: Sequence[str], labels: Mapping[str, str], decimals: int
) -> str:
    """The "Significance" section of results.md."""
    head = "## Significance\n\n"
    if not any(is_adamix(m) for m in methods) or all(is_adamix(m) for m in methods):
        return (
            head + "Not applicable: `methods` needs an AdaMix method and a baseline (a non-AdaMix method).\n"
        )
    lines = [
        "Each AdaMix method against the best baseline of the task (highest mean validation score; test scores "
        "choose nothing), paired by seed: Δ = AdaMix − "
        "baseline (x 100, mean over the common seeds), wins = seeds where AdaMix scores higher, two-sided paired "
        "t-test (scipy.stats.ttest_rel); n/a below 2 common seeds. With few seeds the test has little power: "
        "p > 0.05 is no evidence that the methods are equal.",
        "",
        "| Task | AdaMix | Best baseline | Seeds | Δ | AdaMix wins | t | p |",
        "|:---|:---|:---|---:|---:|---:|---:|---:|",
    ]
    for x in tests:
        delta = f"{x.mean_diff * 100:+.{decimals}f}" if math.isfinite(x.mean_diff) else "n/a"
        lines.append(
            f"| {x.task} | {labels.get(x.method, x.method)} | {labels.get(x.baseline, x.baseline)} | {x.n} | "
            f"{delta} | {x.wins}/{x.n} | {t_text(x.t)} | {p_text(x.p)} |"
        )
    return head + "\n".join(lines) + "\n"


def significance_csv(tests: list[Paired]) -> str:
    """significance.csv: one row per (task, AdaMix method), raw differences (not x 100); NaN as empty."""
    columns = ["task", "method", "baseline", "metric", "n", "mean_diff", "wins", "t", "p"]
    rows = [[getattr(x, c) for c in columns] for x in tests]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, na_rep="")
