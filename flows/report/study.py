"""A study: arms taken from the runs of several profiles, side by side, with paired tests between arms.

The pipeline's report compares the methods of one profile. A study compares what one profile cannot hold: the
same method at two budgets, or under two settings that are not an ablation grid (the fidelity study of
reports/fidelity/: expert init identical against independent, 64 against 625 optimizer steps). A study file names
its arms and the comparisons to test::

    task: rotten_tomatoes
    budgets: {short: "64 steps", long: "625 steps"}           # budget name -> what it is
    arms:                                                     # one row of the tables each
      - {name: adapter, budget: long, profile: fidelity-long, method: adapter, results: long/results}
      - {name: AdaMix identical, budget: long, profile: fidelity-long, method: adamix_adapter, results: long/results}
    comparisons:                                              # [arm, against]: tested within every budget
      - [AdaMix identical, adapter]

An arm is the runs of one method (a learning-rate sweep enters at its rate chosen on validation, as in the main
table; an ablation variant name is read as it is) of one profile, read from `<runs>/<results>`. Each comparison
is tested within each budget where both arms exist, over the seeds both arms share: a paired t-test on the
per-seed scores, and a paired hierarchical bootstrap on the per-example test predictions (`flows.report.bootstrap`:
seeds and test examples resampled), its p-values Holm-adjusted over the study's comparisons. An optional mapping
sets the bootstrap (defaults shown)::

    bootstrap: {replicates: 10000, seed: 0, margin: 0.01, plateau_margin: 0.05}

`margin` is the equivalence margin (0.01: one point): a difference whose whole 95% interval lies within it is
called equivalent. `plateau_margin`: how far above the validation majority-class share a run must score to count
as having left the majority-class plateau.

    python -m flows.report.study reports/fidelity/study.yaml --runs /tmp/fid --out reports/fidelity
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..config.grid import lr_variants, run_params
from ..config.params import load_params
from ..config.schema import ParamsError
from ..metrics import unpack_values
from .bootstrap import DECOMPOSABLE, Bootstrap, Plateau, holm, paired_bootstrap, plateau
from .collect import ReportError, collect, read_runs, require_pairs
from .curves import SPREAD, TRAVEL, history_curves, learning_curves
from .plots import plot_curves
from .selection import RateChoice, choose_rates, format_rate, validation_score
from .stats import p_text, paired_test, t_text

OUTPUTS = ("study.md", "arms.csv", "comparisons.csv", "study_curves.png")
_ARM_KEYS = {"name", "budget", "profile", "method", "results"}
BOOTSTRAP = {"replicates": 10_000, "seed": 0, "margin": 0.01, "plateau_margin": 0.05}  # `bootstrap:` defaults


class StudyError(ValueError):
    """A study file that cannot be used; the message names the file and the key."""


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
    ci_low: float = math.nan  # bootstrap 95% interval of the difference; NaN: no bootstrap (see `note`)
    ci_high: float = math.nan
    p_bootstrap: float = math.nan
    p_holm: float = math.nan  # p_bootstrap adjusted over every comparison of the study
    replicates: int | None = None
    examples: int | None = None
    note: str = ""  # why there is no bootstrap


# -- reading ---------------------------------------------------------------------------------------------


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and check a study file.

    Raises:
        StudyError: the file is missing or not YAML, or a key is missing, unknown or of the wrong kind.
    """
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise StudyError(f"{path}: not a readable YAML file ({err})") from None

    def need(ok: bool, where: str, expected: str) -> None:
        if not ok:
            raise StudyError(f"{path}: '{where}' must be {expected}")

    need(isinstance(spec, dict), "top level", "a mapping")
    need(
        set(spec) <= {"task", "budgets", "arms", "comparisons", "bootstrap"},
        "top level",
        "only task, budgets, arms, comparisons, bootstrap",
    )
    need(isinstance(spec.get("task"), str), "task", "a task name")
    budgets = spec.get("budgets")
    need(isinstance(budgets, dict) and bool(budgets), "budgets", "a non-empty mapping of name -> description")
    arms = spec.get("arms")
    need(isinstance(arms, list) and bool(arms), "arms", "a non-empty list")
    seen = set()
    for i, arm in enumerate(arms):
        need(
            isinstance(arm, dict) and set(arm) == _ARM_KEYS, f"arms[{i}]", f"a mapping of {sorted(_ARM_KEYS)}"
        )
        strings = all(isinstance(arm[k], str) and arm[k] for k in _ARM_KEYS - {"profile"})
        need(strings, f"arms[{i}]", "strings (profile: a profile name, or null for params.yaml alone)")
        need(
            arm["profile"] is None or isinstance(arm["profile"], str), f"arms[{i}].profile", "a name or null"
        )
        need(arm["budget"] in budgets, f"arms[{i}].budget", f"one of {sorted(budgets)}")
        need((arm["name"], arm["budget"]) not in seen, f"arms[{i}].name", "unique within its budget")
        seen.add((arm["name"], arm["budget"]))
    names = {arm["name"] for arm in arms}
    for i, pair in enumerate(spec.get("comparisons") or []):
        need(
            isinstance(pair, list) and len(pair) == 2 and set(pair) <= names,
            f"comparisons[{i}]",
            "[arm, against] of arm names",
        )
    spec.setdefault("comparisons", [])
    spec["bootstrap"] = _bootstrap_options(spec.get("bootstrap"), need)
    return spec


def _bootstrap_options(options: Any, need: Callable[[bool, str, str], None]) -> dict[str, Any]:
    """The study's `bootstrap:` mapping checked (with `need`, which raises naming the key), defaults filled."""
    options = {} if options is None else options
    need(
        isinstance(options, dict) and set(options) <= set(BOOTSTRAP),
        "bootstrap",
        f"a mapping of {sorted(BOOTSTRAP)}",
    )
    for key, value in options.items():
        if key in ("replicates", "seed"):
            least = 1 if key == "replicates" else 0
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= least
            need(ok, f"bootstrap.{key}", f"an int >= {least}")
        else:  # fractions of the metric; an equivalence margin of 0 could never be met
            zero = key == "plateau_margin"
            number = isinstance(value, int | float) and not isinstance(value, bool)
            ok = number and (value >= 0 if zero else value > 0) and value < 1
            need(ok, f"bootstrap.{key}", f"a fraction, 0 {'<=' if zero else '<'} value < 1 (0.01: one point)")
    return {**BOOTSTRAP, **options}


def load_arm(
    spec: Mapping[str, Any], task: str, runs_dir: Path, params_file: Path, plateau_margin: float = 0.05
) -> Arm:
    """The runs of one arm, a learning-rate sweep resolved to its rate chosen on validation.

    Args:
        plateau_margin: how far above the validation majority-class share a run must score to have left it.

    Raises:
        ReportError: no results for the arm, or runs of it with different test sets; ParamsError: its profile
            does not load.
    """
    params = load_params(
        params_file, spec["profile"] or ""
    )  # null: params.yaml alone, whatever $PROFILE says
    results = runs_dir / spec["results"]
    method = spec["method"]
    seeds = (
        params["seeds"] if method in params["methods"] else params["ablations"]["seeds"] or params["seeds"]
    )
    run = run_params(params, method)
    rate = run["train"]["learning_rate"]
    names = [v.method for v in lr_variants(params, method)] or [method]
    candidates = [(task, name, s) for name in names for s in seeds]
    records, choices = choose_rates(
        read_runs(results, candidates), {**params, "tasks": [task], "methods": [method]}
    )
    require_pairs(results, [(task, method, seeds[0])], records, f"arm {spec['name']!r} (task/method)")
    choice = next((c for c in choices if c.method == method), None)
    data = collect(records, [(task, method, s) for s in seeds], params["report"]["primary_mode"])
    steps = max(int(h.get("step") or 0) for r in records for h in r["history"])
    last_kept = sum(1 for r in records if (r.get("selection") or {}).get("epoch") == len(r["history"]))
    correct, labels, why = _per_example(records, data.mode_of[method], data.primary[task], spec["name"])
    return Arm(
        name=spec["name"],
        budget=spec["budget"],
        profile=spec["profile"],
        method=method,
        records=[{**r, "method": spec["name"]} for r in records],
        test=data.per_seed(task, method),
        validation={int(r["seed"]): validation_score(r) for r in records},
        learning_rate=float(choice.chosen if choice and choice.chosen is not None else rate),
        choice=choice,
        steps=steps,
        last_kept=last_kept if run["train"]["select"] == "best" else 0,
        correct=correct,
        labels=labels,
        per_example=why,
        plateau=plateau(records, plateau_margin),
    )


def _per_example(
    records: Sequence[Mapping[str, Any]], mode: str, metric: str, name: str
) -> tuple[dict[int, np.ndarray], np.ndarray | None, str]:
    """seed -> 1/0 per test example in `mode`, the gold labels, and why there are none ("" when there are).

    Raises:
        ReportError: the arm's runs were tested on different examples, or predict a different number of them.
    """
    if metric not in DECOMPOSABLE:
        return {}, None, f"the primary metric ({metric}) is not a mean over test examples"
    if not all("test" in (r.get("labels") or {}) for r in records):
        return {}, None, "the result files predate per-example predictions (no `labels`, `predictions`)"
    if not all("test" in (r.get("predictions") or {}).get(mode, {}) for r in records):
        return {}, None, f"the result files hold no test predictions in mode {mode}"
    labels = unpack_values(records[0]["labels"]["test"])
    correct = {}
    for r in records:
        predicted = unpack_values(r["predictions"][mode]["test"])
        if not np.array_equal(unpack_values(r["labels"]["test"]), labels) or predicted.shape != labels.shape:
            raise ReportError(
                f"arm {name!r}: seed {r['seed']} was tested on other examples than seed {records[0]['seed']}"
            )
        correct[int(r["seed"])] = (predicted == labels).astype(float)
    return correct, labels, ""


def compare(
    arms: Sequence[Arm], pairs: Sequence[Sequence[str]], options: Mapping[str, Any] | None = None
) -> list[Comparison]:
    """Every [arm, against] pair tested within each budget where both arms exist: paired t-test and paired
    bootstrap, the bootstrap p-values Holm-adjusted over all of them.

    Args:
        options: the study's `bootstrap` mapping (default: BOOTSTRAP).

    Raises:
        ReportError: two compared arms were tested on different examples.
    """
    options = {**BOOTSTRAP, **(options or {})}
    found = {(a.budget, a.name): a for a in arms}
    budgets = list(dict.fromkeys(a.budget for a in arms))
    out = []
    for name, against in pairs:
        for budget in budgets:
            a, b = found.get((budget, name)), found.get((budget, against))
            if a and b:
                test = Comparison(budget, name, against, *paired_test(a.test, b.test))
                out.append(_with_bootstrap(test, a, b, options))
    for test, p in zip(out, holm([c.p_bootstrap for c in out]), strict=True):
        test.p_holm = p
    return out


def _with_bootstrap(test: Comparison, a: Arm, b: Arm, options: Mapping[str, Any]) -> Comparison:
    """`test` with the paired bootstrap of a against b over their common seeds, or the reason there is none."""
    why = a.per_example or b.per_example
    if not why and not np.array_equal(a.labels, b.labels):
        raise ReportError(
            f"{a.name} and {b.name} ({a.budget}) were tested on different examples (their gold test labels "
            "differ): they cannot be compared example by example"
        )
    seeds = sorted(set(a.correct) & set(b.correct))
    if why or not seeds:
        test.note = why or "no common seed with per-example predictions"
        return test
    result: Bootstrap = paired_bootstrap(
        np.stack([a.correct[s] for s in seeds]),
        np.stack([b.correct[s] for s in seeds]),
        a.labels,
        options["replicates"],
        options["seed"],
    )
    test.ci_low, test.ci_high, test.p_bootstrap = result.low, result.high, result.p
    test.replicates, test.examples = result.replicates, result.examples
    return test


# -- writing ---------------------------------------------------------------------------------------------


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


def _interval(c: Comparison) -> str:
    return (
        f"[{_pct(c.ci_low, sign=True)}, {_pct(c.ci_high, sign=True)}]" if math.isfinite(c.ci_low) else "n/a"
    )


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
        "freedom; p > 0.05 is no evidence of equality."
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
        "| Budget | Arm | Against | Seeds | Δ | Wins | t | p | 95% CI | p (bootstrap) | p (Holm) | In words |",
        "|:---|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for c in tests:
        lines.append(
            f"| {c.budget} | {c.arm} | {c.against} | {c.n} | {_pct(c.mean_diff, sign=True)} | {c.wins}/{c.n} | "
            f"{t_text(c.t)} | {p_text(c.p)} | {_interval(c)} | {p_text(c.p_bootstrap)} | {p_text(c.p_holm)} | "
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


def write_study(spec: Mapping[str, Any], arms: Sequence[Arm], out: Path) -> list[Path]:
    """Write the study's outputs into `out` (each file replaced whole)."""
    out.mkdir(parents=True, exist_ok=True)
    tests = compare(arms, spec["comparisons"], spec.get("bootstrap"))
    budgets = [b for b in spec["budgets"] if any(a.budget == b for a in arms)]
    texts = {
        "study.md": study_markdown(spec, arms, tests),
        "arms.csv": arms_csv(arms),
        "comparisons.csv": comparisons_csv(tests),
    }
    for name, text in texts.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)
    tmp = out / ".study_curves.tmp.png"
    plot_study(arms, budgets, spec["task"], tmp)
    tmp.replace(out / "study_curves.png")
    return [out / name for name in OUTPUTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Combine the runs of several profiles into one study report."
    )
    parser.add_argument("study", type=Path, help="the study file (YAML)")
    parser.add_argument("--runs", type=Path, required=True, help="folder the arms' `results` paths are under")
    parser.add_argument("--out", type=Path, required=True, help="folder for study.md, CSVs and the plot")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the base params file")
    args = parser.parse_args(argv)
    try:
        spec = load_study(args.study)
        margin = spec["bootstrap"]["plateau_margin"]
        arms = [load_arm(arm, spec["task"], args.runs, args.params, margin) for arm in spec["arms"]]
        written = write_study(spec, arms, args.out)
    except (StudyError, ReportError, ParamsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
