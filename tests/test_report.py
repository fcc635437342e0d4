"""Tests for the report stage (flows.stages.report) and its tables and figures (flows.report.plots) on synthetic result files."""

from __future__ import annotations

import copy
import csv
import json
import math
import types
from pathlib import Path

import pytest
import yaml

from flows.config.schema import DEFAULTS
from flows.report.collect import ReportError
from flows.report.plots import Cell, format_count
from flows.stages import report
from flows.stages.report import build_report

TASKS = ["rotten_tomatoes", "mnli"]
METHODS = ["adamix_adapter", "lora", "full"]
SEEDS = [13, 21]
# accuracy per (task, method, seed) in the reported mode; AdaMix's random/fixed modes score 0.05/0.10 lower.
ACCURACY = {
    ("rotten_tomatoes", "adamix_adapter"): (0.80, 0.82),
    ("rotten_tomatoes", "lora"): (0.75, 0.79),
    ("rotten_tomatoes", "full"): (0.70, 0.70),
    ("mnli", "adamix_adapter"): (0.60, 0.64),
    ("mnli", "lora"): (0.66, 0.62),
    ("mnli", "full"): (0.50, 0.54),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _result(task: str, method: str, seed: int) -> dict:
    accuracy = ACCURACY[(task, method)][SEEDS.index(seed)]

    def scores(value: float) -> dict:
        extra = {"test_mismatched/accuracy": value - 0.01} if task == "mnli" else {}
        return {"accuracy": value, **extra}

    if method.startswith("adamix"):
        modes = {
            "merge": scores(accuracy),
            "random": scores(accuracy - 0.05),
            "fixed": scores(accuracy - 0.10),
        }
    else:
        modes = {"single": scores(accuracy)}
    history = [
        {"epoch": epoch, "train_loss": 1.0 / epoch + seed / 1000, "validation/accuracy": accuracy}
        for epoch in (1, 2)
    ]
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "primary_metric": "accuracy",
        "metrics": ["accuracy"],
        "params": {"trainable": 310_000, "deployed": {"full": 22_700_000}.get(method, 310_000)},
        "modes": modes,
        "history": history,
    }


def _write(results: Path, record: dict) -> Path:
    path = results / record["task"] / record["method"] / f"seed{record['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    for task in TASKS:
        for method in METHODS:
            for seed in SEEDS:
                _write(folder, _result(task, method, seed))
    return folder


@pytest.fixture
def params() -> dict:
    params = copy.deepcopy(DEFAULTS)
    params.update(tasks=list(TASKS), methods=list(METHODS), seeds=list(SEEDS))
    return params


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_main_table_mean_and_sample_std(results: Path, tmp_path: Path, params: dict) -> None:
    summary = build_report(results, tmp_path / "reports", params)
    cell = summary["scores"]["rotten_tomatoes"]["adamix_adapter"]
    assert cell["metric"] == "accuracy" and cell["n"] == 2
    assert cell["mean"] == pytest.approx(0.81)
    assert cell["std"] == pytest.approx(math.sqrt(2 * 0.01**2))  # ddof=1 over the two seeds
    assert summary["scores"]["rotten_tomatoes"]["full"]["std"] == 0.0
    assert summary["runs"] == 12 and summary["missing_runs"] == []

    markdown = (tmp_path / "reports" / "results.md").read_text()
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| Method | Params"))
    assert (
        header
        == "| Method | Params | LR | rotten_tomatoes (accuracy) | mnli (accuracy) | mnli (mismatched) | Avg |"
    )
    rows = [line for line in lines if line.startswith("| AdaMix Adapter | 0.31M")]
    assert rows == [
        "| AdaMix Adapter | 0.31M | 5e-03 | **81.0 ± 1.4** | 62.0 ± 2.8 | 61.0 ± 2.8 | **71.5** |"
    ]
    assert "| Full fine-tuning | 22.7M | 1e-04 | 70.0 ± 0.0 | 52.0 ± 2.8 | 51.0 ± 2.8 | 61.0 |" in lines
    assert "| LoRA | 0.31M | 4e-03 | 77.0 ± 2.8 | **64.0 ± 2.8** | **63.0 ± 2.8** | 70.5 |" in lines
    method_rows = [
        line.split(" | ")[0] for line in lines if line.startswith(("| AdaMix", "| LoRA", "| Full"))
    ]
    assert method_rows[:3] == ["| AdaMix Adapter", "| LoRA", "| Full fine-tuning"]  # params order
    assert "nan" not in markdown.lower()


def test_inference_mode_table_and_csv(results: Path, tmp_path: Path, params: dict) -> None:
    build_report(results, tmp_path / "out", params)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## AdaMix inference modes" in markdown
    assert "| AdaMix Adapter | random | 76.0 ± 1.4 | 57.0 ± 2.8 | 66.5 |" in markdown
    rows = _csv(tmp_path / "out" / "inference_modes.csv")
    assert {(r["method"], r["mode"]) for r in rows} == {
        ("adamix_adapter", m) for m in ("merge", "random", "fixed")
    }
    fixed = next(r for r in rows if r["mode"] == "fixed" and r["task"] == "mnli")
    assert float(fixed["mean"]) == pytest.approx(0.52) and fixed["n"] == "2"


def test_tidy_and_summary_csv(results: Path, tmp_path: Path, params: dict) -> None:
    build_report(results, tmp_path / "out", params)
    tidy = _csv(tmp_path / "out" / "results.csv")
    assert list(tidy[0]) == ["task", "method", "seed", "mode", "metric", "value"]
    # rt: 3 adamix modes + 2 single, 1 metric; mnli: the same with 2 metrics; times 2 seeds
    assert len(tidy) == 2 * (5 + 10)
    row = next(
        r for r in tidy if (r["task"], r["method"], r["seed"], r["mode"]) == ("mnli", "lora", "21", "single")
    )
    assert row["metric"] == "accuracy" and float(row["value"]) == pytest.approx(0.62)
    summary = _csv(tmp_path / "out" / "summary.csv")
    lora = next(
        r for r in summary if (r["task"], r["method"], r["metric"]) == ("rotten_tomatoes", "lora", "accuracy")
    )
    assert float(lora["mean"]) == pytest.approx(0.77) and float(lora["std"]) == pytest.approx(
        0.028284, abs=1e-6
    )


def test_latex_uses_booktabs_and_escapes(results: Path, tmp_path: Path, params: dict) -> None:
    build_report(results, tmp_path / "out", params)
    tex = (tmp_path / "out" / "results.tex").read_text()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrr}", r"\end{tabular}"):
        assert rule in tex
    assert r"rotten\_tomatoes (accuracy)" in tex
    assert r"AdaMix Adapter & 0.31M & 5e-03 & \textbf{81.0 $\pm$ 1.4}" in tex
    assert "rotten_tomatoes" not in tex.replace(r"rotten\_tomatoes", "")


def test_metrics_json_and_plots(results: Path, tmp_path: Path, params: dict) -> None:
    out = tmp_path / "out"
    summary = build_report(results, out, params)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == set(TASKS) and set(metrics["mnli"]) == set(METHODS)
    assert metrics["rotten_tomatoes"]["adamix_adapter"]["accuracy"] == pytest.approx(0.81)
    assert metrics["mnli"]["lora"]["accuracy_std"] == pytest.approx(0.028284, abs=1e-6)
    assert metrics["mnli"]["full"]["test_mismatched/accuracy"] == pytest.approx(0.51)
    assert "ablations" not in metrics  # no ablation runs
    for name in ("training_curves.png", "scores.png", "inference_modes.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])  # no staging folder left behind


def test_every_declared_output_is_written(results: Path, tmp_path: Path, params: dict) -> None:
    """DVC declares report.OUTPUTS: each exists after every build, the ablations folder even without ablations."""
    out = tmp_path / "out"
    summary = build_report(results, out, params)
    assert summary["files"] == list(report.OUTPUTS)
    for name in report.OUTPUTS:
        assert (out / name).exists() and (out / name).stat().st_size > 0, name
    assert summary["ablation_files"] == ["README.md"] and summary["missing_ablation_runs"] == []
    assert [p.name for p in (out / "ablations").iterdir()] == ["README.md"]
    assert "No ablation runs: set `ablations.tasks`" in (out / "ablations" / "README.md").read_text()
    markdown = (out / "results.md").read_text()
    headers = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headers == [
        "## AdaMix inference modes",
        "## Ablations",
        "## Significance",
        "## Against the paper",
        "## Which findings held here",
    ]
    assert "No ablation runs: set `ablations.tasks`" in markdown
    assert "| rotten_tomatoes | AdaMix Adapter | LoRA | 2 | +4.0 | 2/2 | 4.00 | 0.156 |" in markdown
    assert "Not applicable: the paper published no number for this model (not recorded)" in markdown
    assert "- **AdaMix beats full fine-tuning**: held on rotten_tomatoes" in markdown
    significance = _csv(out / "significance.csv")
    assert [(r["task"], r["method"], r["baseline"]) for r in significance] == [
        ("rotten_tomatoes", "adamix_adapter", "lora"),
        ("mnli", "adamix_adapter", "lora"),
    ]
    assert _csv(out / "paper_comparison.csv") == []


def test_without_adamix_the_modes_plot_is_a_placeholder(results: Path, tmp_path: Path, params: dict) -> None:
    params["methods"] = ["lora", "full"]
    build_report(results, tmp_path / "out", params)
    assert (tmp_path / "out" / "inference_modes.png").read_bytes().startswith(PNG_SIGNATURE)
    assert _csv(tmp_path / "out" / "inference_modes.csv") == []
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## AdaMix inference modes" not in markdown
    assert "## Significance\n\nNot applicable" in markdown
    assert "- **Merging beats random and fixed routing**: not run" in markdown


def test_single_seed_has_no_std_and_no_nan(results: Path, tmp_path: Path, params: dict) -> None:
    params["seeds"] = [13]
    build_report(results, tmp_path / "out", params)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert (
        "| AdaMix Adapter | 0.31M | 5e-03 | **80.0** |" in markdown
        and "±" not in markdown.split("##")[0].split("\n\n")[-1]
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["rotten_tomatoes"]["lora"]["accuracy_std"] is None
    assert "nan" not in (tmp_path / "out" / "summary.csv").read_text().lower()


def test_undefined_metric_prints_na(results: Path, tmp_path: Path, params: dict) -> None:
    for seed in SEEDS:
        record = _result("rotten_tomatoes", "full", seed)
        record["modes"]["single"]["accuracy"] = None
        _write(results, record)
    build_report(results, tmp_path / "out", params)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| Full fine-tuning | 22.7M | 1e-04 | n/a | 52.0 ± 2.8 | 51.0 ± 2.8 | n/a |" in markdown
    assert "nan" not in markdown.lower()
    assert (
        json.loads((tmp_path / "out" / "metrics.json").read_text())["rotten_tomatoes"]["full"]["accuracy"]
        is None
    )


def test_missing_seed_is_counted_not_fatal(results: Path, tmp_path: Path, params: dict) -> None:
    (results / "mnli" / "lora" / "seed21.json").unlink()
    summary = build_report(results, tmp_path / "out", params)
    assert summary["missing_runs"] == ["mnli/lora/seed21"]
    assert summary["scores"]["mnli"]["lora"]["n"] == 1
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| **66.0** (n=1) |" in markdown and "mnli/lora/seed21" in markdown


def test_results_outside_params_are_ignored(results: Path, tmp_path: Path, params: dict) -> None:
    _write(results, {**_result("rotten_tomatoes", "lora", 13), "seed": 99})  # a stale run of another config
    params["methods"] = ["lora"]
    assert build_report(results, tmp_path / "out", params)["runs"] == 4


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r, p: p.write_text("{not json"), "seed13.json: not a readable JSON file"),
        (lambda r, p: p.write_text(json.dumps({**r, "seed": "13"})), "'seed' must be an int"),
        (
            lambda r, p: p.write_text(json.dumps({**r, "modes": {"merge": {"f1": 1.0}}})),
            "'modes.merge' must be",
        ),
        (lambda r, p: p.write_text(json.dumps({**r, "params": {"trainable": 1}})), "'params.deployed'"),
        (
            lambda r, p: p.write_text(json.dumps({**r, "method": "full"})),
            "is for rotten_tomatoes/full/seed13",
        ),
    ],
)
def test_malformed_result_names_the_file(
    results: Path, tmp_path: Path, params: dict, breakage, message
) -> None:
    path = results / "rotten_tomatoes" / "adamix_adapter" / "seed13.json"
    breakage(_result("rotten_tomatoes", "adamix_adapter", 13), path)
    with pytest.raises(ReportError, match="malformed|readable|stored as") as err:
        build_report(results, tmp_path / "out", params)
    assert str(path) in str(err.value) and message in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing is written when the input is bad


def test_missing_results_are_errors(results: Path, tmp_path: Path, params: dict) -> None:
    with pytest.raises(ReportError, match="no result files"):
        build_report(tmp_path / "empty", tmp_path / "out", params)
    params["methods"] = [*METHODS, "adapter"]
    params["tasks"] = [*TASKS, "sst2"]
    with pytest.raises(ReportError, match="rotten_tomatoes/adapter, mnli/adapter, sst2/adamix_adapter"):
        build_report(results, tmp_path / "out", params)


def test_failed_write_leaves_previous_report_intact(
    results: Path, tmp_path: Path, params: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.md").write_text("previous report")

    def broken(*args, **kwargs) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "plot_scores", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(results, out, params)
    assert [p.name for p in out.iterdir()] == ["results.md"]
    assert (out / "results.md").read_text() == "previous report"


def test_formatting_helpers() -> None:
    assert [format_count(n) for n in (355_000_000, 22_700_000, 310_000, 4_100, 12)] == [
        "355M",
        "22.7M",
        "0.31M",
        "4.1K",
        "12",
    ]
    assert Cell(0.8123, 0.0041, 3, 3).text(1) == "81.2 ± 0.4"
    assert Cell(0.8, math.nan, 1, 3).text(2, bold=True) == "**80.00** (n=1)"
    assert Cell(math.nan).text(1) == "n/a"


@pytest.fixture
def fake_data_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """flows.data stand-in, so the command-line test checks the report stage alone."""
    fake = types.ModuleType("flows.data")
    fake.builtin_task_names = lambda: sorted(TASKS)
    fake.validate_dataset_cfg = lambda name, cfg: None
    monkeypatch.setattr("flows.config.params.data", fake)


def test_command_line(
    results: Path, tmp_path: Path, params: dict, fake_data_module: None, capsys: pytest.CaptureFixture
) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    argv = ["--results", str(results), "--out", str(tmp_path / "reports"), "--params", str(params_file)]
    assert report.main([*argv, "--profile", ""]) == 0
    printed = capsys.readouterr().out
    assert "report: 13 files in" in printed and "(and 1 in ablations/, 1 in nlg/) from 12 runs" in printed
    assert (tmp_path / "reports" / "scores.png").is_file()
    assert report.main([*argv[:1], str(tmp_path / "nothing"), *argv[2:], "--profile", ""]) == 2
    assert capsys.readouterr().err.startswith("error: no result files")
    assert report.main([*argv, "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_dvc_yaml_declares_every_report_output() -> None:
    """DVC must know every file the report stage writes (and nothing it does not), or `dvc status` lies."""
    from flows.stages.report import OUTPUTS

    stage = yaml.safe_load((Path(__file__).parents[1] / "dvc.yaml").read_text())["stages"]["report"]
    declared = [
        next(iter(entry)) if isinstance(entry, dict) else entry
        for section in ("outs", "metrics", "plots")
        for entry in stage.get(section, [])
    ]
    assert sorted(name.removeprefix("${grid.reports}/") for name in declared) == sorted(OUTPUTS)


def _project_resolved_for_mine(tmp_path: Path, params: dict) -> Path:
    """A project with a profile `mine` (its own report.dir) and a params.resolved.yaml that has it merged in."""
    root = tmp_path / "project"
    (root / "profiles").mkdir(parents=True)
    (root / "profiles" / "mine.yaml").write_text("report: {dir: reports/mine}\n")
    resolved = {**params, "report": {**params["report"], "dir": "reports/mine"}}
    (root / "params.resolved.yaml").write_text(yaml.safe_dump(resolved))
    return root


def test_the_resolved_params_are_not_merged_with_the_profile_again(
    results: Path, tmp_path: Path, params: dict, fake_data_module: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make reproduce PROFILE=p` runs this stage with PROFILE set over params.resolved.yaml, which has p in it."""
    root = _project_resolved_for_mine(tmp_path, params)
    monkeypatch.setenv("ADAMIX_ROOT", str(root))
    monkeypatch.setenv("PROFILE", "mine")
    out = tmp_path / "reports" / "mine"
    assert report.main(["--results", str(results), "--out", str(out)]) == 0  # merging again refused this
    assert (out / "results.md").is_file()


def test_an_explicit_profile_goes_over_params_yaml_not_the_resolved_params(
    results: Path, tmp_path: Path, params: dict, fake_data_module: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report rebuilt for profile p after a resolve of p must not merge p twice (report.dir read as the base's)."""
    root = _project_resolved_for_mine(tmp_path, params)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("ADAMIX_ROOT", str(root))
    monkeypatch.delenv("PROFILE", raising=False)
    out = tmp_path / "reports" / "mine"
    assert report.main(["--results", str(results), "--out", str(out), "--profile", "mine"]) == 0
    assert (out / "results.md").is_file()
