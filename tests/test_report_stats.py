"""Tests for the paired test of AdaMix against the best baseline (flows.report.stats)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import MAIN_SCORES, RT, report_params, write_scores

from flows.report.collect import collect, load_results, main_runs
from flows.report.stats import is_adamix, paired_test, paired_tests, significance_csv, significance_section

LABELS = {"adamix_adapter": "AdaMix Adapter", "lora": "LoRA", "full": "Full fine-tuning"}


def _data(results: Path, scores: dict, **top):
    write_scores(results, scores)
    params = report_params(**top)
    return collect(load_results(results, params), main_runs(params), "merge"), params


def test_paired_test_by_hand() -> None:
    # differences 0.05 and 0.03: mean 0.04, sd 0.01 * sqrt(2), se 0.01, t = 4 with 1 degree of freedom,
    # whose two-sided p is 1 - (2 / pi) * atan(4)
    n, mean, wins, t, p = paired_test({13: 0.80, 21: 0.82, 42: 0.9}, {13: 0.75, 21: 0.79})
    assert (n, wins) == (2, 2)
    assert mean == pytest.approx(0.04) and t == pytest.approx(4.0)
    assert p == pytest.approx(1 - 2 / math.pi * math.atan(4.0))
    n, mean, wins, t, p = paired_test({13: 0.60, 21: 0.64}, {13: 0.66, 21: 0.62})  # -0.06, +0.02
    assert (n, wins) == (2, 1) and mean == pytest.approx(-0.02) and t == pytest.approx(-0.5)
    assert p == pytest.approx(1 - 2 / math.pi * math.atan(0.5))


def test_paired_test_degenerate_cases() -> None:
    n, mean, wins, t, p = paired_test({13: 0.8}, {13: 0.7, 21: 0.7})
    assert (n, wins) == (1, 1) and mean == pytest.approx(0.1) and math.isnan(t) and math.isnan(p)
    assert paired_test({}, {13: 0.7})[:3] == (0, pytest.approx(math.nan, nan_ok=True), 0)
    _, _, _, t, p = paired_test({13: 3.0, 21: 4.0}, {13: 1.0, 21: 2.0})  # identical differences
    assert math.isinf(t) and t > 0 and p == 0.0
    _, _, wins, t, p = paired_test({13: 0.5, 21: 0.5}, {13: 0.5, 21: 0.5})  # no difference at all
    assert wins == 0 and math.isnan(t) and math.isnan(p)


def test_best_baseline_per_task_and_the_section(tmp_path: Path) -> None:
    validation = {"adamix_adapter": 0.7, "lora": 0.8, "full": 0.6}  # lora leads on validation
    for (task, method), scores in MAIN_SCORES.items():
        write_scores(tmp_path, {(task, method): scores}, validation=validation[method])
    params = report_params(tasks=[RT, "mnli"], methods=list(LABELS))
    data = collect(load_results(tmp_path, params), main_runs(params), "merge")
    tests = paired_tests(data, params["tasks"], params["methods"])
    assert [(x.task, x.method, x.baseline) for x in tests] == [
        (RT, "adamix_adapter", "lora"),
        ("mnli", "adamix_adapter", "lora"),
    ]
    section = significance_section(tests, params["methods"], LABELS, 1)
    assert section.startswith("## Significance")
    assert f"| {RT} | AdaMix Adapter | LoRA | 2 | +4.0 | 2/2 | 4.00 | 0.156 |" in section
    assert "| mnli | AdaMix Adapter | LoRA | 2 | -2.0 | 1/2 | -0.50 | 0.705 |" in section
    rows = pd.read_csv(io.StringIO(significance_csv(tests)))
    assert list(rows.columns) == ["task", "method", "baseline", "metric", "n", "mean_diff", "wins", "t", "p"]
    assert rows.mean_diff[0] == pytest.approx(0.04) and rows.p[1] == pytest.approx(0.70483, abs=1e-5)


def test_the_best_baseline_is_chosen_on_validation_not_test(tmp_path: Path) -> None:
    """LoRA has the higher test scores, full fine-tuning the higher validation scores: full is the baseline."""
    for method, tests, validation in (("lora", (0.77, 0.78), 0.70), ("full", (0.70, 0.71), 0.75)):
        write_scores(tmp_path, {(RT, method): tests}, validation=validation)
    write_scores(tmp_path, {(RT, "adamix_adapter"): (0.74, 0.75)}, validation=0.72)
    params = report_params(tasks=[RT], methods=list(LABELS))
    data = collect(load_results(tmp_path, params), main_runs(params), "merge")
    assert [x.baseline for x in paired_tests(data, [RT], params["methods"])] == ["full"]


def test_without_validation_scores_every_baseline_is_tested(tmp_path: Path) -> None:
    data, params = _data(tmp_path, MAIN_SCORES, tasks=[RT], methods=list(LABELS))
    assert [x.baseline for x in paired_tests(data, [RT], params["methods"])] == ["lora", "full"]


def test_one_seed_gives_na(tmp_path: Path) -> None:
    scores = {(RT, "adamix_adapter"): (0.8,), (RT, "lora"): (0.7,)}
    data, params = _data(tmp_path, scores, tasks=[RT], methods=["adamix_adapter", "lora"], seeds=[13])
    tests = paired_tests(data, [RT], params["methods"])
    section = significance_section(tests, params["methods"], LABELS, 1)
    assert f"| {RT} | AdaMix Adapter | LoRA | 1 | +10.0 | 1/1 | n/a | n/a |" in section
    assert "nan" not in section.lower()
    assert ",1,0.1" in significance_csv(tests) and "nan" not in significance_csv(tests).lower()


def test_constant_differences_and_no_baseline(tmp_path: Path) -> None:
    scores = {(RT, "adamix_adapter"): (3.0, 4.0), (RT, "full"): (1.0, 2.0)}
    data, params = _data(tmp_path, scores, tasks=[RT], methods=["adamix_adapter", "full"])
    section = significance_section(paired_tests(data, [RT], params["methods"]), params["methods"], LABELS, 1)
    assert "| 2/2 | ∞ | <0.001 |" in section
    only = significance_section([], ["adamix_adapter"], LABELS, 1)
    assert "Not applicable" in only and "baseline" in only


def test_is_adamix() -> None:
    assert is_adamix("adamix_lora") and is_adamix("adamix_adapter.share=none")
    assert not is_adamix("lora") and not is_adamix("full")


def test_t_interval_by_hand() -> None:
    from flows.report.stats import t_interval

    # differences 0.05 and 0.03: mean 0.04, standard error 0.01, t(0.975, 1 df) = 12.7062
    low, high = t_interval({13: 0.80, 21: 0.82, 42: 0.9}, {13: 0.75, 21: 0.79})
    assert low == pytest.approx(0.04 - 0.127062, abs=1e-5) and high == pytest.approx(
        0.04 + 0.127062, abs=1e-5
    )
    assert all(math.isnan(v) for v in t_interval({13: 0.8}, {13: 0.7}))
