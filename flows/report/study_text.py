"""The study report's text: study.md's sections, the two CSVs and the curves plot, from arms and comparisons.

`flows.report.study` reads the arms and runs the tests; this module only writes what they hold.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .bootstrap import Plateau
from .curves import SPREAD, TRAVEL, history_curves, learning_curves
from .plots import plot_curves
from .selection import format_rate
from .stats import p_text, t_text
from .study_model import BOOTSTRAP, Arm, Comparison


def _pct(value: float, decimals: int = 1, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 100:+.{decimals}f}" if sign else f"{value * 100:.{decimals}f}"


def _rates(arm: Arm) -> str:
    if arm.choice is None:
        return format_rate(arm.learning_rate) + " (fixed)"
    cells = []
    for lr, (mean, n) in arm.choice.candidates.items():
        text = f"{format_rate(lr)}: {_pct(mean) if n else 'n/a'}"
        cells.append(f"**{text}**" if lr == arm.choice.chosen else text)
    return ", ".join(cells) + (" (at the edge of the grid)" if arm.rate_at_edge else "")


def verdict(c: Comparison, margin: float = BOOTSTRAP["margin"]) -> str:
    """Plain words for one comparison, from the bootstrap: ahead or behind when the Holm-adjusted p < 0.05,
    equivalent when the whole 95% interval lies within ±margin, else inconclusive with the largest difference the
    interval allows. Without a bootstrap, the paired t-test at 5% (unadjusted) says ahead, behind or nothing."""
    if not math.isfinite(c.mean_diff):
        return "not compared"
    ahead, behind = f"{c.arm} is ahead of {c.against}", f"{c.arm} is behind {c.against}"
    if not math.isfinite(c.ci_low):
        if math.isfinite(c.p) and c.p < 0.05:
            return (ahead if c.mean_diff > 0 else behind) + " (t-test only)"
        return f"no significant difference between {c.arm} and {c.against} (t-test only)"
    if math.isfinite(c.p_holm) and c.p_holm < 0.05:
        return ahead if c.ci_low + c.ci_high > 0 else behind
    if -margin < c.ci_low and c.ci_high < margin:
        return f"{c.arm} and {c.against} are equivalent within ±{_pct(margin)} points"
    widest = max(abs(c.ci_low), abs(c.ci_high))
    return f"inconclusive: the 95% interval {_interval(c)} includes differences of {_pct(widest)} points"


def _interval(c: Comparison, low: str = "ci_low", high: str = "ci_high") -> str:
    lo, hi = getattr(c, low), getattr(c, high)
    return f"[{_pct(lo, sign=True)}, {_pct(hi, sign=True)}]" if math.isfinite(lo) else "n/a"


def _span(values: Sequence[int]) -> str:
    """ "3", or "2 to 3" when the values differ."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low} to {high}"


def _arms_section(spec: Mapping[str, Any], arms: Sequence[Arm]) -> list[str]:
    lines = [
        "## Arms",
        "",
        "| Budget | Arm | Steps | Seeds | Test x 100 | Learning rate: mean validation x 100 |",
        "|:---|:---|---:|---:|---:|:---|",
    ]
    for arm in arms:
        mean, std = arm.mean_std()
        lines.append(
            f"| {arm.budget} ({spec['budgets'][arm.budget]}) | {arm.name} | {arm.steps} | {arm.seeds} | "
            f"{_pct(mean)} ± {_pct(std)} | {_rates(arm)} |"
        )
    return lines + [
        "",
        "Test: the primary metric in the method's reported mode (merged experts for AdaMix), mean ± std over",
        "seeds, at the learning rate chosen on mean validation score (bold). Test scores take no part in any choice.",
    ]


def _wrap(text: str) -> list[str]:
    """A paragraph of study.md as lines of at most 110 characters (the source stays readable in a diff)."""
    return textwrap.wrap(text, 110, break_long_words=False, break_on_hyphens=False)


def _method_text(tests: Sequence[Comparison], options: Mapping[str, Any]) -> list[str]:
    """What the paired tests' columns are, with the numbers of seeds and examples these comparisons have."""
    seeds = [c.n for c in tests] or [0]
    text = (
        "Δ = arm − against (x 100, mean over common seeds); two-sided paired t-test (scipy.stats.ttest_rel) on "
        f"the per-seed scores: {_span(seeds)} common seeds, {_span([max(n - 1, 0) for n in seeds])} degrees of "
        "freedom; p > 0.05 is no evidence of equality. 95% CI (t): the t interval of the mean per-seed "
        "difference, which sees seed-to-seed variation only, not the noise of a finite test set."
    )
    done = [c for c in tests if c.examples]
    if done:
        text += (
            f" 95% CI and p (bootstrap): a paired hierarchical bootstrap of test accuracy, {options['replicates']} "
            f"replicates (seed {options['seed']}), each drawing the {_span([c.n for c in done])} common seeds "
            f"with replacement, then the {_span([c.examples for c in done])} test examples with replacement (one "
            "draw for both arms and every drawn seed), and taking the difference of the means over the drawn "
            "cells; p (bootstrap) = 2 x min(share of replicates <= 0, share >= 0), capped at 1. p (Holm): "
            f"adjusted over the study's {len(done)} bootstrapped comparisons. In words: ahead or behind when "
            f"p (Holm) < 0.05, equivalent when the whole 95% interval lies within ±{_pct(options['margin'])} "
            "points, otherwise inconclusive, with the largest difference the interval allows."
        )
    else:
        text += " In words: the t-test at 5%, unadjusted."
    lines = _wrap(text)
    notes: dict[str, list[str]] = {}
    for c in tests:
        if c.note:
            notes.setdefault(c.note, []).append(f"{c.arm} − {c.against}")
    if notes:  # one line: why, and for which comparisons unless it is all of them
        reasons = [
            note if len(pairs) == len(tests) else f"{note} ({', '.join(pairs)})"
            for note, pairs in notes.items()
        ]
        lines.append("Bootstrap n/a: " + "; ".join(reasons) + ".")
    return lines


def _tests_section(tests: Sequence[Comparison], options: Mapping[str, Any]) -> list[str]:
    lines = ["## Paired tests", "", *_method_text(tests, options), ""]
    lines += [
        "| Budget | Arm | Against | Seeds | Δ | Wins | t | p | 95% CI (t) | 95% CI | p (bootstrap) | p (Holm) "
        "| In words |",
        "|:---|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for c in tests:
        lines.append(
            f"| {c.budget} | {c.arm} | {c.against} | {c.n} | {_pct(c.mean_diff, sign=True)} | {c.wins}/{c.n} | "
            f"{t_text(c.t)} | {p_text(c.p)} | {_interval(c, 't_low', 't_high')} | {_interval(c)} | "
            f"{p_text(c.p_bootstrap)} | {p_text(c.p_holm)} | "
            f"{verdict(c, options['margin'])} |"
        )
    return lines


def _gap_section(arms: Sequence[Arm], tests: Sequence[Comparison]) -> list[str]:
    """How each pair's difference moves with the budget (pairs compared at two budgets or more)."""
    by_pair: dict[tuple[str, str], list[Comparison]] = {}
    for c in tests:
        by_pair.setdefault((c.arm, c.against), []).append(c)
    steps = {(a.budget, a.name): a.steps for a in arms}
    moves = [
        f"- {arm} − {against}: "
        + ", ".join(
            f"{_pct(c.mean_diff, sign=True)} at {steps[(c.budget, arm)]} steps (p {p_text(c.p)})"
            for c in found
        )
        for (arm, against), found in by_pair.items()
        if len(found) > 1
    ]
    return ["## The gap against the budget", "", *moves] if moves else []


def _plateau_cells(found: Plateau | None) -> tuple[str, str]:
    """ "k of n" runs that left the plateau, and each run's first step above it (seed: step or never)."""
    if found is None:
        return "n/a", "n/a"
    steps = ", ".join(
        f"{seed}: {'never' if step is None else step}" for seed, step in found.first_steps.items()
    )
    return f"{found.left} of {found.runs}", steps


def _plateau_section(arms: Sequence[Arm], options: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Plateau",
        "",
        *_wrap(
            "A run has left the majority-class plateau once its validation score (primary metric) is more than "
            f"{_pct(options['plateau_margin'])} points above the validation split's majority-class share (the "
            "score of always predicting that class); step: the optimizer step of its first such evaluation."
        ),
        "",
        "| Budget | Arm | Runs that left the plateau | First step (seed: step) |",
        "|:---|:---|---:|:---|",
    ]
    lines += [f"| {a.budget} | {a.name} | {' | '.join(_plateau_cells(a.plateau))} |" for a in arms]
    unknown = list(dict.fromkeys(a.name for a in arms if a.plateau is None))
    if unknown:
        which = "" if len(unknown) == len({a.name for a in arms}) else f" ({', '.join(unknown)})"
        lines += [
            "",
            "n/a: the result files have no `validation_majority` (written before it was kept, or a regression "
            f"task){which}.",
        ]
    return lines


def _warnings_section(arms: Sequence[Arm]) -> list[str]:
    warnings = [
        f"- {a.name} ({a.budget}): {a.last_kept} of {len(a.records)} runs kept their last epoch (validation was at "
        "its best when the budget ended), so it may not have converged: a longer budget could move this arm."
        for a in arms
        if a.records and a.last_kept * 2 > len(a.records)
    ]
    warnings += [
        f"- {a.name} ({a.budget}): the chosen learning rate is at the edge of the grid; a wider grid may do better."
        for a in arms
        if a.rate_at_edge
    ]
    warnings += [
        f"- {a.name} ({a.budget}): {a.plateau.runs - a.plateau.left} of {a.plateau.runs} runs never left the "
        "majority-class plateau: their scores are those of a constant prediction."
        for a in arms
        if a.plateau and a.plateau.left < a.plateau.runs
    ]
    return ["## Warnings", "", *warnings] if warnings else []


def study_markdown(spec: Mapping[str, Any], arms: Sequence[Arm], tests: Sequence[Comparison]) -> str:
    """study.md: the arms per budget, the paired tests, how each gap moves with the budget, the plateau, and
    warnings."""
    options = spec.get("bootstrap") or BOOTSTRAP
    sections = [
        [f"# Study: {spec['task']}", "", "Every number below is computed from the runs' result files."],
        _arms_section(spec, arms),
        _tests_section(tests, options),
        _gap_section(arms, tests),
        _plateau_section(arms, options),
        _warnings_section(arms),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def arms_csv(arms: Sequence[Arm]) -> str:
    rows = [
        {
            "budget": a.budget,
            "arm": a.name,
            "profile": a.profile,
            "method": a.method,
            "learning_rate": a.learning_rate,
            "steps": a.steps,
            "seeds": a.seeds,
            "test_mean": a.mean_std()[0],
            "test_std": a.mean_std()[1],
            "validation_mean": pd.Series(list(a.validation.values()), dtype=float).mean(),
            "runs_kept_last_epoch": a.last_kept,
            "runs_left_plateau": a.plateau.left if a.plateau else None,
        }
        for a in arms
    ]
    return pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")


def comparisons_csv(tests: Sequence[Comparison]) -> str:
    """comparisons.csv: one row per comparison, raw differences (not x 100); no bootstrap as empty cells."""
    columns = [name for name in Comparison.__dataclass_fields__ if name != "note"]
    table = pd.DataFrame([vars(c) for c in tests], columns=columns)
    counts = {"replicates": "Int64", "examples": "Int64"}  # integers, and empty (not NaN floats) when absent
    return table.astype(counts).to_csv(index=False, lineterminator="\n")


def plot_study(arms: Sequence[Arm], budgets: Sequence[str], task: str, path: Path) -> None:
    """Validation score, expert spread and merged travel against optimizer step: one panel per budget."""
    panels = {
        "validation x 100": learning_curves,
        "expert spread": lambda records: history_curves(records, SPREAD),
        "merged travel": lambda records: history_curves(records, TRAVEL),
    }
    rows = []
    for label, curve in panels.items():
        curves = {
            b: curve([r for a in arms if a.budget == b for r in a.records]).get(task, {}) for b in budgets
        }
        rows.append((curves, label))
    names = list(dict.fromkeys(a.name for a in arms))
    plot_curves(rows, list(budgets), names, {}, path, xlabel="optimizer step", empty="no history")
