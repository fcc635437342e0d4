"""Learning-rate selection on validation (flows.report.selection) and the curves over training
(flows.report.curves), on synthetic result files."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import RT, SEEDS, make_result, report_params, write_result

from flows.config import grid
from flows.report.curves import SPREAD, history_curves, learning_curves
from flows.report.selection import choose_rates, selection_section, validation_score
from flows.stages.report import build_report

RATES = [1.0e-3, 3.0e-3, 1.0e-2]
# rate -> (validation, test): the best test rate (1e-2) is not the best validation rate (3e-3).
SCORES = {1.0e-3: (0.70, 0.90), 3.0e-3: (0.80, 0.75), 1.0e-2: (0.60, 0.95)}


def _swept(**top) -> dict:
    params = report_params(tasks=[RT], methods=["adapter", "lora"], **top)
    params["train"]["learning_rate"] = list(RATES)  # lora keeps its own rate (method_overrides)
    return params


def _write(results: Path) -> None:
    for rate, (val, test) in SCORES.items():
        for seed in SEEDS:
            record = make_result(RT, f"adapter.lr={rate}", seed, test)
            record["selection"] = {"rule": "last", "epoch": 2, "validation": {"validation/accuracy": val}}
            record["learning_rate"] = rate
            write_result(results, record)
    for seed in SEEDS:
        write_result(results, make_result(RT, "lora", seed, 0.70))


def test_grid_trains_every_rate_instead_of_the_method() -> None:
    params = _swept()
    names = [v.method for v in grid.lr_variants(params, "adapter")]
    assert names == ["adapter.lr=0.001", "adapter.lr=0.003", "adapter.lr=0.01"]
    assert grid.lr_variants(params, "lora") == []
    runs = grid.runs(params)
    assert {m for _, m, _ in runs} == {*names, "lora"}
    assert grid.run_params(params, "adapter.lr=0.003")["train"]["learning_rate"] == 3.0e-3


def test_the_rate_is_chosen_on_validation_not_test(tmp_path: Path) -> None:
    _write(tmp_path / "results")
    summary = build_report(tmp_path / "results", tmp_path / "reports", _swept())
    assert summary["scores"][RT]["adapter"]["mean"] == pytest.approx(0.75)  # 3e-3's test score, not 1e-2's
    markdown = (tmp_path / "reports" / "results.md").read_text()
    assert "## Learning rates chosen on validation" in markdown
    assert "1e-03: 70.0, **3e-03: 80.0**, 1e-02: 60.0" in markdown
    header, rule, adapter_row = markdown.split("\n# Results\n")[-1].split("\n\n")[2].splitlines()[:3]
    assert header.split("|")[3].strip() == "LR" and adapter_row.split("|")[3].strip() == "3e-03"
    for name in ("learning_curves.png", "expert_diagnostics.png"):
        assert (tmp_path / "reports" / name).stat().st_size > 0


def test_choose_rates_renames_the_chosen_runs_and_drops_the_others() -> None:
    params = _swept()
    records = []
    for rate, (val, test) in SCORES.items():
        record = make_result(RT, f"adapter.lr={rate}", 13, test)
        record["selection"] = {"validation": {"validation/accuracy": val}}
        records.append(record)
    kept, choices = choose_rates(records, params)
    assert [(r["method"], r["learning_rate"], r["run_method"]) for r in kept] == [
        ("adapter", 3.0e-3, "adapter.lr=0.003")
    ]
    assert choices[0].chosen == 3.0e-3 and choices[0].candidates[1.0e-2] == (0.60, 1)


@pytest.mark.parametrize("order", [[3.0e-3, 1.0e-3, 1.0e-2], [1.0e-2, 1.0e-3, 3.0e-3]])
def test_a_tie_goes_to_the_smallest_rate_whatever_the_grid_order(order: list[float]) -> None:
    params = report_params(tasks=[RT], methods=["adapter"])
    params["train"]["learning_rate"] = order
    scores = {1.0e-3: 0.70, 3.0e-3: 0.80, 1.0e-2: 0.80}  # 3e-3 and 1e-2 tie on validation
    records = []
    for rate, val in scores.items():
        record = make_result(RT, f"adapter.lr={rate}", 13, 0.5)
        record["selection"] = {"validation": {"validation/accuracy": val}}
        records.append(record)
    _, (choice,) = choose_rates(records, params)
    assert choice.chosen == 3.0e-3 and choice.tied == (3.0e-3, 1.0e-2)
    section = selection_section([choice], {}, 1)
    assert "(a tie, the smallest rate kept)" in section


def test_validation_score_falls_back_to_the_last_validated_epoch() -> None:
    record = make_result(RT, "lora", 13, 0.7)
    record["history"] = [{"epoch": 1, "validation/accuracy": 0.6}, {"epoch": 2, "validation/accuracy": 0.65}]
    assert validation_score(record) == 0.65


def test_learning_and_diagnostic_curves_average_seeds_by_step() -> None:
    records = []
    for seed, offset in zip(SEEDS, (0.0, 0.1), strict=True):
        record = make_result(RT, "adamix_adapter", seed, 0.8)
        record["history"] = [
            {"epoch": 1, "step": 10, "validation/accuracy": 0.5 + offset, SPREAD: 0.1 + offset},
            {"epoch": 2, "step": 20, "validation/accuracy": 0.7 + offset, SPREAD: 0.3 + offset},
        ]
        records.append(record)
    records.append(make_result(RT, "lora", 13, 0.7))  # no steps recorded: no curve
    curves = learning_curves(records)
    assert curves[RT]["adamix_adapter"] == [(10.0, pytest.approx(55.0)), (20.0, pytest.approx(75.0))]
    assert "lora" not in curves[RT]
    assert history_curves(records, SPREAD)[RT]["adamix_adapter"] == [
        (10.0, pytest.approx(0.15)),
        (20.0, pytest.approx(0.35)),
    ]


def test_each_ablation_variant_enters_at_its_own_rate_chosen_on_validation(tmp_path: Path) -> None:
    params = report_params(tasks=[RT], methods=["adamix_adapter"])
    params["train"]["learning_rate"] = [1.0e-3, 1.0e-2]
    params["ablations"]["tasks"] = [RT]
    params["ablations"]["grids"] = {
        "num_experts": {"method": "adamix_adapter", "key": "adamix.num_experts", "values": [2, 4]}
    }
    # run method -> rate -> (validation, test): M = 4 is best at 1e-3, M = 2 at 1e-2.
    scores = {
        "adamix_adapter": {1.0e-3: (0.80, 0.81), 1.0e-2: (0.70, 0.71)},
        "adamix_adapter.num_experts=2": {1.0e-3: (0.60, 0.61), 1.0e-2: (0.90, 0.91)},
    }
    results = tmp_path / "results"
    for method, by_rate in scores.items():
        for rate, (val, test) in by_rate.items():
            for seed in SEEDS:
                record = make_result(RT, f"{method}.lr={rate}", seed, test)
                record["selection"] = {"rule": "best", "epoch": 1, "validation": {"validation/accuracy": val}}
                write_result(results, record)
    summary = build_report(results, tmp_path / "reports", params)
    assert summary["scores"][RT]["adamix_adapter"]["mean"] == pytest.approx(0.81)
    markdown = (tmp_path / "reports" / "results.md").read_text()
    experts = markdown.split("### num_experts", 1)[1].split("\n#", 1)[0]
    assert "| 2 | **91.0 ± 0.0** |" in experts and "| 4 (default) | 81.0 ± 0.0 |" in experts
    assert "| adamix_adapter.num_experts=2 | 1e-03: 60.0, **1e-02: 90.0** |" in markdown
    assert summary["missing_ablation_runs"] == []
