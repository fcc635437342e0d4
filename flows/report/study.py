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
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..config.grid import lr_variants, run_params
from ..config.params import load_params
from ..config.schema import ParamsError
from ..metrics import unpack_values
from .bootstrap import DECOMPOSABLE, Bootstrap, holm, paired_bootstrap, plateau
from .collect import ReportError, collect, read_runs, require_pairs
from .selection import choose_rates, validation_score
from .stats import paired_test, t_interval
from .study_model import BOOTSTRAP, Arm, Comparison
from .study_text import arms_csv, comparisons_csv, plot_study, study_markdown

OUTPUTS = ("study.md", "arms.csv", "comparisons.csv", "study_curves.png")
_ARM_KEYS = {"name", "budget", "profile", "method", "results"}


class StudyError(ValueError):
    """A study file that cannot be used; the message names the file and the key."""


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
    correct, labels, why = per_example_correctness(
        records, data.mode_of[method], data.primary[task], spec["name"]
    )
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


def per_example_correctness(
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
                test.t_low, test.t_high = t_interval(a.test, b.test)
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
