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
is a paired t-test over the seeds both arms share, within each budget where both arms exist.

    python -m flows.report.study reports/fidelity/study.yaml --runs /tmp/fid --out reports/fidelity
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..config.grid import lr_variants, run_params
from ..config.params import load_params
from ..config.schema import ParamsError
from .collect import ReportError, collect, read_runs, require_pairs
from .curves import SPREAD, TRAVEL, history_curves, learning_curves
from .plots import plot_curves
from .selection import RateChoice, choose_rates, format_rate, validation_score
from .stats import p_text, paired_test, t_text

OUTPUTS = ("study.md", "arms.csv", "comparisons.csv", "study_curves.png")
_ARM_KEYS = {"name", "budget", "profile", "method", "results"}


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
        set(spec) <= {"task", "budgets", "arms", "comparisons"},
        "top level",
        "only task, budgets, arms, comparisons",
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
    return spec


def load_arm(spec: Mapping[str, Any], task: str, runs_dir: Path, params_file: Path) -> Arm:
    """The runs of one arm, a learning-rate sweep resolved to its rate chosen on validation.

    Raises:
        ReportError: no results for the arm; ParamsError: its profile does not load.
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
    )


def compare(arms: Sequence[Arm], pairs: Sequence[Sequence[str]]) -> list[Comparison]:
    """Every [arm, against] pair tested within each budget where both arms exist."""
    found = {(a.budget, a.name): a for a in arms}
    budgets = list(dict.fromkeys(a.budget for a in arms))
    out = []
    for name, against in pairs:
        for budget in budgets:
            a, b = found.get((budget, name)), found.get((budget, against))
            if a and b:
                out.append(Comparison(budget, name, against, *paired_test(a.test, b.test)))
    return out


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


def verdict(c: Comparison) -> str:
    """Plain words for one comparison: ahead, behind, or no significant difference (paired t-test, 5%)."""
    if not math.isfinite(c.mean_diff):
        return "not compared"
    if math.isfinite(c.p) and c.p < 0.05:
        return f"{c.arm} is ahead of {c.against}" if c.mean_diff > 0 else f"{c.arm} is behind {c.against}"
    return f"no significant difference between {c.arm} and {c.against}"


def study_markdown(spec: Mapping[str, Any], arms: Sequence[Arm], tests: Sequence[Comparison]) -> str:
    """study.md: the arms per budget, the paired tests, how each gap moves with the budget, and warnings."""
    lines = [
        f"# Study: {spec['task']}",
        "",
        "Every number below is computed from the runs' result files.",
        "",
    ]
    lines += [
        "## Arms",
        "",
        "| Budget | Arm | Steps | Seeds | Test x 100 | Learning rate: mean validation x 100 |",
    ]
    lines += ["|:---|:---|---:|---:|---:|:---|"]
    for arm in arms:
        mean, std = arm.mean_std()
        lines.append(
            f"| {arm.budget} ({spec['budgets'][arm.budget]}) | {arm.name} | {arm.steps} | {arm.seeds} | "
            f"{_pct(mean)} ± {_pct(std)} | {_rates(arm)} |"
        )
    lines += [
        "",
        "Test: the primary metric in the method's reported mode (merged experts for AdaMix), mean ± std over",
    ]
    lines += [
        "seeds, at the learning rate chosen on mean validation score (bold). Test scores take no part in any choice.",
        "",
    ]
    lines += [
        "## Paired tests",
        "",
        "Δ = arm − against (x 100, mean over common seeds); two-sided paired t-test",
    ]
    lines += [
        "(scipy.stats.ttest_rel). With 3 seeds the test has little power: p > 0.05 is no evidence of equality.",
        "",
    ]
    lines += [
        "| Budget | Arm | Against | Seeds | Δ | Wins | t | p | In words |",
        "|:---|:---|:---|---:|---:|---:|---:|---:|:---|",
    ]
    for c in tests:
        lines.append(
            f"| {c.budget} | {c.arm} | {c.against} | {c.n} | {_pct(c.mean_diff, sign=True)} | {c.wins}/{c.n} | "
            f"{t_text(c.t)} | {p_text(c.p)} | {verdict(c)} |"
        )
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
    if moves:
        lines += ["", "## The gap against the budget", "", *moves]
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
    if warnings:
        lines += ["", "## Warnings", "", *warnings]
    return "\n".join(lines) + "\n"


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
        }
        for a in arms
    ]
    return pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")


def comparisons_csv(tests: Sequence[Comparison]) -> str:
    return pd.DataFrame([vars(c) for c in tests], columns=list(Comparison.__dataclass_fields__)).to_csv(
        index=False, lineterminator="\n"
    )


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
    tests = compare(arms, spec["comparisons"])
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
        arms = [load_arm(arm, spec["task"], args.runs, args.params) for arm in spec["arms"]]
        written = write_study(spec, arms, args.out)
    except (StudyError, ReportError, ParamsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
