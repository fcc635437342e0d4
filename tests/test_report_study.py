"""Studies across profiles (flows.report.study), on synthetic result files and the repository's own profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from report_fixtures import RT, make_result, write_result

from flows.report import study

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


def _record(method: str, seed: int, test: float, val: float, kept: int, epochs: int = 5) -> dict:
    record = make_result(RT, method, seed, test)
    record["history"] = [
        {"epoch": e, "step": 125 * e, "validation/accuracy": val - 0.01 * (epochs - e)}
        for e in range(1, epochs + 1)
    ]
    record["selection"] = {"rule": "best", "epoch": kept, "validation": {"validation/accuracy": val}}
    return record


def _write_long(results: Path) -> None:
    for (method, rate), (val, tests) in LONG.items():
        for seed, test in zip(SEEDS, tests, strict=True):
            # AdaMix keeps its last epoch on every seed (still improving), the adapter an earlier one.
            kept = 5 if method == "adamix_adapter" else 3
            write_result(results, _record(f"{method}.lr={rate}", seed, test, val, kept))


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
    assert test.p < 0.05 and study.verdict(test) == "AdaMix is ahead of adapter"

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
