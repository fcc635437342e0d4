"""Studies across profiles (flows.report.study), on synthetic result files and the repository's own profiles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from report_fixtures import RT, make_result, write_result

from flows.report import study, study_text
from flows.report.bootstrap import holm

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [13, 21, 42]
LONG_RATES = [5.0e-4, 1.5e-3, 5.0e-3]  # profiles/fidelity-long.yaml
# (method, rate) -> (validation, per-seed test). The best-test rate of adapter (5e-3) is not its best validation.
LONG = {
    ("adapter", 5.0e-4): (0.70, [0.70, 0.71, 0.72]),
    ("adapter", 1.5e-3): (0.80, [0.78, 0.79, 0.80]),
    ("adapter", 5.0e-3): (0.75, [0.90, 0.90, 0.90]),
    ("adamix_adapter", 5.0e-4): (0.60, [0.60, 0.60, 0.60]),
    ("adamix_adapter", 1.5e-3): (0.70, [0.70, 0.70, 0.70]),
    ("adamix_adapter", 5.0e-3): (0.85, [0.81, 0.83, 0.82]),
}


EXAMPLES = 200  # test examples of the synthetic per-example predictions
REPS = {"replicates": 2000}  # bootstrap replicates in tests: enough, and quick


def _record(
    method: str,
    seed: int,
    test: float,
    val: float,
    kept: int,
    epochs: int = 5,
    examples: int | None = EXAMPLES,
) -> dict:
    record = make_result(RT, method, seed, test, examples=examples)
    record["history"] = [
        {"epoch": e, "step": 125 * e, "validation/accuracy": val - 0.01 * (epochs - e)}
        for e in range(1, epochs + 1)
    ]
    record["selection"] = {"rule": "best", "epoch": kept, "validation": {"validation/accuracy": val}}
    return record


def _write_long(results: Path, examples: int | None = EXAMPLES) -> None:
    for (method, rate), (val, tests) in LONG.items():
        for seed, test in zip(SEEDS, tests, strict=True):
            # AdaMix keeps its last epoch on every seed (still improving), the adapter an earlier one.
            kept = 5 if method == "adamix_adapter" else 3
            write_result(results, _record(f"{method}.lr={rate}", seed, test, val, kept, examples=examples))


def _spec(tmp_path: Path, **changes) -> Path:
    spec = {
        "task": RT,
        "budgets": {"long": "625 steps"},
        "arms": [
            {
                "name": "adapter",
                "budget": "long",
                "profile": "fidelity-long",
                "method": "adapter",
                "results": "long/results",
            },
            {
                "name": "AdaMix",
                "budget": "long",
                "profile": "fidelity-long",
                "method": "adamix_adapter",
                "results": "long/results",
            },
        ],
        "comparisons": [["AdaMix", "adapter"]],
    }
    spec.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_arms_enter_at_their_validation_rate_and_are_paired_by_seed(tmp_path: Path) -> None:
    _write_long(tmp_path / "runs" / "long" / "results")
    spec = study.load_study(_spec(tmp_path))
    arms = [study.load_arm(a, RT, tmp_path / "runs", ROOT / "params.yaml") for a in spec["arms"]]
    adapter, adamix = arms
    assert adapter.learning_rate == 1.5e-3 and adapter.test == dict(
        zip(SEEDS, [0.78, 0.79, 0.80], strict=True)
    )
    assert adamix.learning_rate == 5.0e-3 and adamix.steps == 625 and adamix.last_kept == 3
    (test,) = study.compare(arms, spec["comparisons"])
    assert (test.n, test.wins) == (3, 3)
    assert test.mean_diff == pytest.approx(0.03)  # (0.03 + 0.04 + 0.02) / 3
    assert test.p < 0.05 and study_text.verdict(test) == "AdaMix is ahead of adapter"

    written = study.write_study(spec, arms, tmp_path / "out")
    assert [p.name for p in written] == list(study.OUTPUTS) and all(p.stat().st_size > 0 for p in written)
    text = (tmp_path / "out" / "study.md").read_text()
    assert (
        "| long (625 steps) | adapter | 625 | 3 | 79.0 ± 1.0 | 5e-04: 70.0, **1.5e-03: 80.0**, 5e-03: 75.0 |"
        in text
    )
    assert "| long | AdaMix | adapter | 3 | +3.0 | 3/3 |" in text
    # AdaMix kept its last epoch on every seed and its rate is the grid's largest: both are said plainly.
    assert "AdaMix (long): 3 of 3 runs kept their last epoch (validation was at its best" in text
    assert "AdaMix (long): the chosen learning rate is at the edge of the grid" in text
    assert "adapter (long): 3 of 3" not in text


def test_the_gap_is_followed_across_budgets(tmp_path: Path) -> None:
    results = tmp_path / "runs" / "long" / "results"
    _write_long(results)
    for seed, (a, b) in zip(SEEDS, [(0.70, 0.75), (0.71, 0.75), (0.69, 0.74)], strict=True):
        for method, test in (("adamix_adapter", a), ("adapter", b)):
            for rate in (2.0e-3, 5.0e-3, 1.0e-2):  # profiles/fidelity-short.yaml
                write_result(
                    tmp_path / "runs" / "short" / "results",
                    _record(f"{method}.lr={rate}", seed, test, 0.7, 1, 2),
                )
    arms = [
        {"name": n, "budget": b, "profile": f"fidelity-{b}", "method": m, "results": f"{b}/results"}
        for b in ("short", "long")
        for n, m in (("adapter", "adapter"), ("AdaMix", "adamix_adapter"))
    ]
    path = _spec(tmp_path, budgets={"short": "64 steps", "long": "625 steps"}, arms=arms)
    assert study.main([str(path), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "study.md").read_text()
    assert "- AdaMix − adapter: -4.7 at 250 steps (p " in text and "+3.0 at 625 steps" in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"comparisons": [["AdaMix", "LoRA"]]}, "'comparisons[0]' must be [arm, against] of arm names"),
        ({"budgets": {}}, "'budgets' must be a non-empty mapping"),
        ({"tasks": [RT]}, "'top level' must be only task, budgets, arms, comparisons"),
        ({"bootstrap": {"alpha": 0.05}}, "'bootstrap' must be a mapping of ['margin', 'plateau_margin',"),
        ({"bootstrap": {"replicates": 0}}, "'bootstrap.replicates' must be an int >= 1"),
        ({"bootstrap": {"seed": True}}, "'bootstrap.seed' must be an int >= 0"),
        ({"bootstrap": {"margin": 1}}, "'bootstrap.margin' must be a fraction, 0 < value < 1"),
        (
            {"bootstrap": {"plateau_margin": -0.1}},
            "'bootstrap.plateau_margin' must be a fraction, 0 <= value",
        ),
    ],
)
def test_bad_study_files_fail_with_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture, changes: dict, message: str
) -> None:
    path = _spec(tmp_path, **changes)
    assert study.main([str(path), "--runs", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_an_arm_without_results_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write_long(tmp_path / "runs" / "long" / "results")
    arm = {
        "name": "LoRA",
        "budget": "long",
        "profile": "fidelity-long",
        "method": "lora",
        "results": "long/results",
    }
    spec = yaml.safe_load(_spec(tmp_path).read_text())
    path = _spec(tmp_path, arms=[*spec["arms"], arm])
    assert study.main([str(path), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    assert "arm 'LoRA'" in capsys.readouterr().err and not (tmp_path / "out").exists()


STUDIES = sorted((ROOT / "reports" / "fidelity").glob("study*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_the_committed_fidelity_study_files_load(path: Path) -> None:
    spec = study.load_study(path)
    profiles = {arm["profile"] for arm in spec["arms"]}
    assert all((ROOT / "profiles" / f"{p}.yaml").is_file() for p in profiles)


# The studies whose runs' result files are committed under reports/fidelity/runs/ (the others read /tmp/fid).
REBUILT = {"study-short.yaml": "short-study", "study-pair.yaml": "pair"}


@pytest.mark.parametrize("name", sorted(REBUILT))
def test_a_committed_study_is_what_its_committed_result_files_give(name: str, tmp_path: Path) -> None:
    """The numbers in reports/fidelity/<study>/ come from the committed runs, unedited."""
    fidelity = ROOT / "reports" / "fidelity"
    argv = [str(fidelity / name), "--runs", str(fidelity / "runs"), "--out", str(tmp_path)]
    assert study.main(argv) == 0
    for output in ("study.md", "arms.csv", "comparisons.csv"):
        assert (tmp_path / output).read_text() == (fidelity / REBUILT[name] / output).read_text(), output


# -- per-example statistics ------------------------------------------------------------------------------


def _long_arms(tmp_path: Path, **changes) -> tuple[dict, list[study.Arm]]:
    spec = study.load_study(_spec(tmp_path, **changes))
    margin = spec["bootstrap"]["plateau_margin"]
    arms = [study.load_arm(a, RT, tmp_path / "runs", ROOT / "params.yaml", margin) for a in spec["arms"]]
    return spec, arms


def test_comparisons_carry_a_bootstrap_over_seeds_and_examples(tmp_path: Path) -> None:
    _write_long(tmp_path / "runs" / "long" / "results")
    spec, arms = _long_arms(tmp_path, bootstrap=REPS)
    adapter, adamix = arms
    assert adamix.correct[13].mean() == pytest.approx(0.81)  # merge mode, as the tables report it
    assert adapter.correct[42].mean() == pytest.approx(0.80) and len(adapter.labels) == EXAMPLES
    (test,) = study.compare(arms, spec["comparisons"], spec["bootstrap"])
    assert (test.replicates, test.examples, test.note) == (2000, EXAMPLES, "")
    assert test.ci_low < test.mean_diff < test.ci_high and test.ci_low > 0
    assert test.p_holm == test.p_bootstrap < 0.05  # one comparison: Holm changes nothing
    assert study_text.verdict(test) == "AdaMix is ahead of adapter"
    again = study.compare(arms, spec["comparisons"], spec["bootstrap"])[0]
    assert (again.ci_low, again.ci_high, again.p_bootstrap) == (test.ci_low, test.ci_high, test.p_bootstrap)

    study.write_study(spec, arms, tmp_path / "out")
    text = (tmp_path / "out" / "study.md").read_text()
    row = f"| long | AdaMix | adapter | 3 | +3.0 | 3/3 | {study_text.t_text(test.t)} | {study_text.p_text(test.p)} | "
    cells = f"{study_text._interval(test, 't_low', 't_high')} | {study_text._interval(test)} | "
    assert row + cells + f"{study_text.p_text(test.p_bootstrap)} |" in text
    assert test.t_low < test.mean_diff < test.t_high  # the t interval is around the mean difference
    flat = " ".join(text.split())  # the explanations are wrapped paragraphs
    assert "2000 replicates (seed 0), each drawing the 3 common seeds" in flat
    assert f"then the {EXAMPLES} test examples with replacement" in flat
    assert "within ±1.0 points" in flat and "adjusted over the study's 1 bootstrapped comparisons" in flat
    assert "With 3 seeds the test has little power" not in flat and "Bootstrap n/a" not in flat
    assert "| long | AdaMix | 3 of 3 | 13: 125, 21: 125, 42: 125 |" in text  # 0.81 > 0.5 + 0.05 at epoch 1
    columns = (tmp_path / "out" / "comparisons.csv").read_text().splitlines()[0].split(",")
    assert columns[-6:] == ["ci_low", "ci_high", "p_bootstrap", "p_holm", "replicates", "examples"]


def test_holm_adjusts_over_every_comparison_of_the_study(tmp_path: Path) -> None:
    _write_long(tmp_path / "runs" / "long" / "results")
    pairs = [["AdaMix", "adapter"], ["adapter", "AdaMix"]]
    spec, arms = _long_arms(tmp_path, bootstrap=REPS, comparisons=pairs)
    tests = study.compare(arms, spec["comparisons"], spec["bootstrap"])
    assert [c.p_holm for c in tests] == holm([c.p_bootstrap for c in tests])
    assert tests[0].p_holm == pytest.approx(min(1.0, 2 * tests[0].p_bootstrap))


def _comparison(low: float, high: float, p_holm: float) -> study.Comparison:
    return study.Comparison(
        "long",
        "A",
        "B",
        3,
        (low + high) / 2,
        2,
        1.0,
        0.3,
        ci_low=low,
        ci_high=high,
        p_bootstrap=p_holm / 2,
        p_holm=p_holm,
    )


@pytest.mark.parametrize(
    ("low", "high", "p_holm", "words"),
    [
        (0.01, 0.03, 0.01, "A is ahead of B"),
        (-0.03, -0.01, 0.04, "A is behind B"),
        (0.002, 0.008, 0.02, "A is ahead of B"),  # inside the margin, but the difference is there
        (-0.005, 0.008, 0.40, "A and B are equivalent within ±1.0 points"),
        (
            -0.005,
            0.010,
            0.40,
            "inconclusive: the 95% interval [-0.5, +1.0] includes differences of 1.0 points",
        ),
        (
            -0.023,
            0.011,
            0.30,
            "inconclusive: the 95% interval [-2.3, +1.1] includes differences of 2.3 points",
        ),
        (0.005, 0.03, 0.06, "inconclusive: the 95% interval [+0.5, +3.0] includes differences of 3.0 points"),
    ],
)
def test_the_verdict_says_equivalent_only_inside_the_margin(
    low: float, high: float, p_holm: float, words: str
) -> None:
    assert study_text.verdict(_comparison(low, high, p_holm)) == words
    wide = _comparison(-0.015, 0.015, 0.9)
    assert study_text.verdict(wide, margin=0.02) == "A and B are equivalent within ±2.0 points"


def test_old_result_files_give_na_and_say_why(tmp_path: Path) -> None:
    _write_long(tmp_path / "runs" / "long" / "results", examples=None)
    spec, arms = _long_arms(tmp_path)
    assert arms[0].correct == {} and arms[0].plateau is None and "predate" in arms[0].per_example
    (test,) = study.compare(arms, spec["comparisons"], spec["bootstrap"])
    assert math.isnan(test.ci_low) and math.isnan(test.p_holm) and test.examples is None
    assert study_text.verdict(test) == "AdaMix is ahead of adapter (t-test only)"
    study.write_study(spec, arms, tmp_path / "out")
    text = (tmp_path / "out" / "study.md").read_text()
    assert "| n/a | n/a | n/a | AdaMix is ahead of adapter (t-test only) |" in text
    assert text.count("Bootstrap n/a: the result files predate per-example predictions") == 1
    assert (
        "| long | AdaMix | n/a | n/a |" in text
        and "n/a: the result files have no `validation_majority`" in text
    )
    row = (tmp_path / "out" / "comparisons.csv").read_text().splitlines()[1]
    assert row.endswith(",,,,,,")


def test_arms_tested_on_different_examples_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "runs" / "long" / "results"
    _write_long(results)
    for path in results.glob("*/adapter.lr=*/seed*.json"):  # the adapter saw another test set
        record = json.loads(path.read_text())
        record["labels"]["test"] = "1" + record["labels"]["test"][1:]
        path.write_text(json.dumps(record))
    path = _spec(tmp_path)
    assert study.main([str(path), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "AdaMix and adapter (long) were tested on different examples" in err and err.count("\n") == 1


def test_runs_of_one_arm_on_different_examples_are_refused(tmp_path: Path) -> None:
    results = tmp_path / "runs" / "long" / "results"
    _write_long(results)
    path = results / RT / "adapter.lr=0.0015" / "seed21.json"
    record = json.loads(path.read_text())
    record["labels"]["test"] = record["labels"]["test"][:-1]
    path.write_text(json.dumps(record))
    with pytest.raises(
        study.ReportError, match="arm 'adapter': seed 21 was tested on other examples than seed 13"
    ):
        _long_arms(tmp_path)


def test_runs_that_never_leave_the_majority_plateau_are_counted(tmp_path: Path) -> None:
    results = tmp_path / "runs" / "long" / "results"
    _write_long(results)
    # The chosen adapter runs score 0.76, 0.77, ..., 0.80 on validation over their 5 epochs: with a margin of
    # one point, seed 13 (majority 0.765) leaves the plateau at epoch 3, the others (0.80) never do.
    for path in results.glob("*/adapter.lr=*/seed*.json"):
        record = json.loads(path.read_text())
        record["validation_majority"] = 0.765 if record["seed"] == 13 else 0.80
        path.write_text(json.dumps(record))
    spec, arms = _long_arms(tmp_path, bootstrap={**REPS, "plateau_margin": 0.01})
    adapter = arms[0]
    assert (adapter.plateau.left, adapter.plateau.runs) == (1, 3)
    assert adapter.plateau.first_steps == {13: 375, 21: None, 42: None}
    study.write_study(spec, arms, tmp_path / "out")
    text = (tmp_path / "out" / "study.md").read_text()
    assert "| long | adapter | 1 of 3 | 13: 375, 21: never, 42: never |" in text
    assert "- adapter (long): 2 of 3 runs never left the majority-class plateau" in text
    assert "more than 1.0 points above" in " ".join(text.split())
