"""Tests for "Which findings held here" (flows.report.findings): the wording follows the numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from report_fixtures import MAIN_SCORES, RT, make_result, report_params, write_ablation_project, write_result

from flows.config.grid import Variant
from flows.report.ablations import GridResult, collect_ablations, grid_results
from flows.report.collect import collect, load_results, main_runs
from flows.report.findings import (
    HELD,
    MIXED,
    NOISE,
    NOT_HELD,
    NOT_RUN,
    _diminishing,
    findings,
    findings_section,
    overall,
    verdict,
)
from flows.report.plots import Cell
from flows.stages.report import METHOD_LABELS


def _findings(results: Path, params: dict) -> dict[str, str]:
    """claim -> its bullet, from the result files as the report stage reads them."""
    data = collect(load_results(results, params), main_runs(params), params["report"]["primary_mode"])
    ablations = collect_ablations(results, params)
    found = findings(data, grid_results(ablations, params), ablations, params, METHOD_LABELS)
    return {f.claim: f.markdown() for f in found}


@pytest.fixture
def with_ablations(tmp_path: Path) -> dict[str, str]:
    params = write_ablation_project(tmp_path / "results")
    return _findings(tmp_path / "results", params)


def test_verdict_rule() -> None:
    assert verdict(0.04, 0.028) == HELD
    assert verdict(-0.04, 0.028) == NOT_HELD
    assert verdict(-0.02, 0.028) == NOISE and verdict(0.028, 0.028) == NOISE  # no larger than the std
    assert verdict(0.0, 0.0) == NOISE  # a tie
    assert verdict(0.001, 0.0) == HELD  # one seed: no std, any difference decides
    assert verdict(math.nan, 0.01) == NOT_RUN
    assert overall([HELD, HELD]) == HELD and overall([HELD, NOISE]) == MIXED
    assert overall([NOT_RUN, NOT_HELD]) == NOT_HELD and overall([]) == NOT_RUN


def test_headline_findings(with_ablations: dict[str, str]) -> None:
    assert with_ablations["AdaMix beats a single adapter"] == (
        "- **AdaMix beats a single adapter**: not run (`methods` lacks adapter)."
    )
    assert with_ablations["AdaMix beats LoRA"] == (
        f"- **AdaMix beats LoRA**: mixed: held on {RT} (81.0 ± 1.4 vs 77.0 ± 2.8); "
        "within noise on mnli (62.0 ± 2.8 vs 64.0 ± 2.8)."
    )
    assert with_ablations["AdaMix beats full fine-tuning"] == (
        f"- **AdaMix beats full fine-tuning**: held on {RT} (81.0 ± 1.4 vs 70.0 ± 0.0), "
        "mnli (62.0 ± 2.8 vs 52.0 ± 2.8)."
    )
    assert with_ablations["Merging beats random and fixed routing"].startswith(
        f"- **Merging beats random and fixed routing**: held on {RT} with AdaMix Adapter "
        "(81.0 ± 1.4 vs 76.0 ± 1.4 / 71.0 ± 1.4: merge vs random / fixed)"
    )


def test_ablation_findings(with_ablations: dict[str, str]) -> None:
    assert with_ablations["Consistency regularization helps (dropping it hurts)"] == (
        f"- **Consistency regularization helps (dropping it hurts)**: did not hold on {RT} "
        "(1.0 vs 0.0: 81.0 ± 1.4 vs 83.0 ± 1.4)."
    )
    sharing = "Sharing a projection helps (the paper: most on small data, RTE and MRPC)"
    assert with_ablations[sharing] == f"- **{sharing}**: held on {RT} (up vs none: 81.0 ± 1.4 vs 70.5 ± 0.7)."
    slower = with_ablations["Without sharing, training converges slower (higher mean training loss)"]
    assert f"held on {RT} (mean task loss " in slower and "with share=none vs" in slower
    assert with_ablations["More experts help, with diminishing returns"] == (
        f"- **More experts help, with diminishing returns**: held on {RT} "
        "(adamix.num_experts 1: 75.0 ± 1.4, 4: 81.0 ± 1.4, 16: 78.0 ± 1.4)."
    )
    assert with_ablations["Too many experts hurt (the paper: on small tasks)"].endswith(
        f"held on {RT} (16 experts: 78.0 ± 1.4 vs best 8: 82.0 ± 1.4)."
    )
    assert with_ablations["Larger bottlenecks help, with diminishing returns"] == (
        f"- **Larger bottlenecks help, with diminishing returns**: within noise on {RT} "
        "(adamix.bottleneck 8: 80.0 ± 1.4, 16: 81.0 ± 1.4, 64: 81.0 ± 0.0)."
    )


def test_ablations_off_are_not_run(tmp_path: Path) -> None:
    params = write_ablation_project(tmp_path / "results")
    params["ablations"]["tasks"] = []
    found = _findings(tmp_path / "results", params)
    for claim in (
        "Consistency regularization helps (dropping it hurts)",
        "More experts help, with diminishing returns",
        "Larger bottlenecks help, with diminishing returns",
        "Without sharing, training converges slower (higher mean training loss)",
    ):
        assert found[claim].startswith(f"- **{claim}**: not run (needs ")
        assert "of `ablations.grids` varying `" in found[claim]
    assert found["AdaMix beats full fine-tuning"].startswith("- **AdaMix beats full fine-tuning**: held on")


def test_one_seed_says_there_is_no_noise_estimate(tmp_path: Path) -> None:
    for (task, method), values in MAIN_SCORES.items():
        write_result(tmp_path, make_result(task, method, 13, values[0]))
    params = report_params(tasks=[RT], methods=["adamix_adapter", "lora"], seeds=[13])
    found = _findings(tmp_path, params)
    assert found["AdaMix beats LoRA"] == (
        f"- **AdaMix beats LoRA**: held on {RT} (80.0 vs 75.0; one seed, no noise estimate)."
    )


def test_merging_that_loses_to_random_routing(tmp_path: Path) -> None:
    for seed, score in ((13, 0.70), (21, 0.71)):
        record = make_result(RT, "adamix_adapter", seed, score)
        record["modes"]["random"]["accuracy"] = score + 0.10
        write_result(tmp_path, record)
    params = report_params(tasks=[RT], methods=["adamix_adapter"])
    assert _findings(tmp_path, params)["Merging beats random and fixed routing"] == (
        f"- **Merging beats random and fixed routing**: did not hold on {RT} with AdaMix Adapter "
        "(70.5 ± 0.7 vs 80.5 ± 0.7 / 60.5 ± 0.7: merge vs random / fixed)."
    )


def _grid(scores: dict[int, float], default: int = 4) -> GridResult:
    found = [
        Variant(
            "num_experts", "adamix_adapter", ("adamix", "num_experts"), v, f"adamix_adapter.num_experts={v}"
        )
        for v in scores
    ]
    cells = {RT: {str(v): Cell(s, 0.01, 2, 2) for v, s in scores.items()}}
    return GridResult("num_experts", "adamix.num_experts", "adamix_adapter", found, [RT], cells, str(default))


def test_returns_that_grow_do_not_diminish() -> None:
    key, claim = "adamix.num_experts", "More experts help, with diminishing returns"
    assert _diminishing(_grid({1: 0.70, 4: 0.75, 16: 0.85}), key, claim, 1).cases[0].verdict == NOT_HELD
    assert _diminishing(_grid({1: 0.70, 4: 0.80, 16: 0.81}), key, claim, 1).cases[0].verdict == HELD
    assert _diminishing(_grid({1: 0.80, 4: 0.70, 16: 0.70}), key, claim, 1).cases[0].verdict == NOT_HELD
    edge = _diminishing(_grid({4: 0.7, 8: 0.8}), key, claim, 1)  # the default is the smallest value
    assert edge.verdict == NOT_RUN and "needs values below and above the default" in edge.markdown()


def test_section_explains_the_rule() -> None:
    section = findings_section([])
    assert section.startswith("## Which findings held here") and "within noise" in section
