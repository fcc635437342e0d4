"""Tests for the ablation part of the report (flows.report.ablations): tables, CSV, LaTeX, plots, loss curves."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import (
    RT,
    SEEDS,
    STEPS,
    make_result,
    report_params,
    sharing_loss,
    write_ablation_project,
    write_result,
)

from flows.report.ablations import ablation_runs, collect_ablations, smoothed_loss
from flows.report.collect import ReportError
from flows.stages.report import build_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One report over the main runs and every default grid (built once: plots take a moment)."""
    root = tmp_path_factory.mktemp("ablations")
    params = write_ablation_project(root / "results")
    summary = build_report(root / "results", root / "out", params)
    return {"root": root, "out": root / "out", "params": params, "summary": summary}


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"### {title}", 1)[1].split("\n#", 1)[0]


def test_every_grid_gets_a_table_in_results_md(built: dict) -> None:
    markdown = (built["out"] / "results.md").read_text()
    assert "## Ablations" in markdown and "mean ± std over seeds 13, 21" in markdown
    experts = _section(markdown, "num_experts: `adamix.num_experts` of AdaMix Adapter")
    assert "| num_experts | rotten_tomatoes (accuracy) |" in experts
    rows = [line for line in experts.splitlines() if line.startswith("| ") and "num_experts" not in line]
    assert rows == [
        "| 1 | 75.0 ± 1.4 |",
        "| 2 | 79.0 ± 1.4 |",
        "| 4 (default) | 81.0 ± 1.4 |",  # the main AdaMix Adapter runs
        "| 8 | **82.0 ± 1.4** |",
        "| 16 | 78.0 ± 1.4 |",
    ]
    share = _section(markdown, "share: `adamix.share` of AdaMix Adapter")
    assert "| up (default) | **81.0 ± 1.4** |" in share and "| none | 70.5 ± 0.7 |" in share
    consistency = _section(markdown, "consistency: `train.consistency_weight` of AdaMix Adapter")
    assert "| 1.0 (default) | 81.0 ± 1.4 |" in consistency and "| 0.0 | **83.0 ± 1.4** |" in consistency
    assert "Missing ablation runs" not in markdown and "nan" not in markdown.lower()


def test_ablation_folder_files(built: dict) -> None:
    folder = built["out"] / "ablations"
    grids = ("num_experts", "bottleneck", "share", "consistency")
    expected = {"README.md", "loss_sharing.png"} | {
        f"ablation_{g}.{e}" for g in grids for e in ("csv", "tex", "png")
    }
    assert {p.name for p in folder.iterdir()} == expected == set(built["summary"]["ablation_files"])
    for name in expected - {"README.md"}:
        assert (folder / name).stat().st_size > 0
    for grid in grids:
        data = (folder / f"ablation_{grid}.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    readme = (folder / "README.md").read_text()
    assert "ablation_share.csv" in readme and "| 4 (default) | 81.0 ± 1.4 |" in readme
    assert "ablations" in built["summary"]["files"]


def test_ablation_csv_is_tidy_raw_values(built: dict) -> None:
    table = pd.read_csv(built["out"] / "ablations" / "ablation_num_experts.csv")
    columns = ["grid", "key", "value", "default", "method", "task", "seed", "mode", "metric", "score"]
    assert list(table.columns) == columns
    assert len(table) == 5 * len(SEEDS)  # 5 values x 2 seeds, one metric in the reported mode
    assert set(table["mode"]) == {"merge"} and set(table.key) == {"adamix.num_experts"}
    default = table[table.default]
    assert set(default.value) == {4} and set(default.method) == {"adamix_adapter"}
    eight = table[(table.value == 8) & (table.seed == 21)].iloc[0]
    assert eight.method == "adamix_adapter.num_experts=8" and eight.score == pytest.approx(0.83)


def test_ablation_latex(built: dict) -> None:
    tex = (built["out"] / "ablations" / "ablation_share.tex").read_text()
    assert r"\toprule" in tex and r"\begin{tabular}{lr}" in tex
    assert r"up (default) & \textbf{81.0 $\pm$ 1.4} \\" in tex
    assert r"rotten\_tomatoes (accuracy)" in tex


def test_metrics_json_has_ablation_summary(built: dict) -> None:
    metrics = json.loads((built["out"] / "metrics.json").read_text())
    experts = metrics["ablations"]["num_experts"][RT]
    assert experts["8"] == pytest.approx(0.82) and experts["4_std"] == pytest.approx(0.0141421, abs=1e-6)
    assert metrics[RT]["adamix_adapter"]["accuracy"] == pytest.approx(0.81)  # main keys unchanged


def test_smoothed_loss_is_a_seed_mean_moving_average(built: dict) -> None:
    data = collect_ablations(built["root"] / "results", built["params"])
    curve = smoothed_loss(data, RT, "adamix_adapter.share=none")
    assert len(curve) == STEPS
    mean = pd.Series([sum(sharing_loss("share=none", s)[i] for s in SEEDS) / 2 for i in range(STEPS)])
    assert curve == pytest.approx(list(mean.rolling(2, center=True, min_periods=1).mean()))  # 40 / 20 steps
    assert curve[-1] > smoothed_loss(data, RT, "adamix_adapter")[-1]  # no sharing: slower
    assert smoothed_loss(data, "mnli", "adamix_adapter") == []  # no such ablation run


def test_ablation_runs_use_ablation_seeds() -> None:
    params = report_params(tasks=[RT], methods=["lora"])
    assert ablation_runs(params) == []  # ablations.tasks empty: nothing
    params["ablations"].update(
        tasks=["mrpc"], seeds=[7], grids={"share": params["ablations"]["grids"]["share"]}
    )
    assert ablation_runs(params) == [
        ("mrpc", "adamix_adapter", 7),
        ("mrpc", "adamix_adapter.share=down", 7),
        ("mrpc", "adamix_adapter.share=none", 7),
    ]


def test_missing_ablation_seed_is_counted_not_fatal(tmp_path: Path) -> None:
    params = write_ablation_project(tmp_path / "results")
    (tmp_path / "results" / RT / "adamix_adapter.num_experts=8" / "seed21.json").unlink()
    summary = build_report(tmp_path / "results", tmp_path / "out", params)
    assert summary["missing_ablation_runs"] == [f"{RT}/adamix_adapter.num_experts=8/seed21"]
    assert summary["missing_runs"] == []
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| 8 | **81.0** (n=1) |" in markdown  # ties the default for the best mean
    assert (
        f"Missing ablation runs, left out of the means: {RT}/adamix_adapter.num_experts=8/seed21." in markdown
    )


def test_ablation_value_never_run_is_an_error(tmp_path: Path) -> None:
    params = write_ablation_project(tmp_path / "results")
    shutil.rmtree(tmp_path / "results" / RT / "adamix_adapter.share=none")
    with pytest.raises(ReportError, match=f"ablation task/method: {RT}/adamix_adapter.share=none"):
        build_report(tmp_path / "results", tmp_path / "out", params)
    assert not (tmp_path / "out").exists()


def test_removed_grid_leaves_no_stale_files_and_no_loss_plot(tmp_path: Path) -> None:
    params = write_ablation_project(tmp_path / "results")
    build_report(tmp_path / "results", tmp_path / "out", params)
    assert (tmp_path / "out" / "ablations" / "loss_sharing.png").is_file()
    fewer = copy.deepcopy(params)
    fewer["ablations"]["grids"] = {"num_experts": params["ablations"]["grids"]["num_experts"]}
    summary = build_report(tmp_path / "results", tmp_path / "out", fewer)
    names = {p.name for p in (tmp_path / "out" / "ablations").iterdir()}
    assert names == {
        "README.md",
        "ablation_num_experts.csv",
        "ablation_num_experts.tex",
        "ablation_num_experts.png",
    }
    assert set(summary["ablation_files"]) == names
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no staging left behind


def test_ablation_task_outside_the_main_tasks(tmp_path: Path) -> None:
    """Ablations on a task the main grid does not run: its own primary metric, the base method's runs read too."""
    results = tmp_path / "results"
    params = report_params(tasks=[RT], methods=["lora"])
    params["ablations"].update(tasks=["cola"], grids={"share": params["ablations"]["grids"]["share"]})
    for seed in SEEDS:
        write_result(results, make_result(RT, "lora", seed, 0.7))
        for method, score in (("adamix_adapter", 0.40), ("adamix_adapter.share=down", 0.38)):
            write_result(results, make_result("cola", method, seed, score + seed / 1000, metric="matthews"))
        write_result(results, make_result("cola", "adamix_adapter.share=none", seed, 0.3, metric="matthews"))
    build_report(results, tmp_path / "out", params)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| share | cola (matthews) |" in markdown and "| none | 30.0 ± 0.0 |" in markdown


def test_failed_ablation_plot_keeps_the_previous_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = write_ablation_project(tmp_path / "results")
    out = tmp_path / "out"
    (out / "ablations").mkdir(parents=True)
    (out / "ablations" / "README.md").write_text("previous")

    def broken(*args, **kwargs) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("flows.report.ablations.plot_ablation", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(tmp_path / "results", out, params)
    assert [p.name for p in out.iterdir()] == ["ablations"]
    assert [p.name for p in (out / "ablations").iterdir()] == ["README.md"]
    assert (out / "ablations" / "README.md").read_text() == "previous"
