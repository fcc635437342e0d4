"""Each pipeline stage as a function on a tiny project (prepare, fewshot, train, merge, evaluate, report), then the
stage command lines (`python -m flows.<stage>`, called through main(argv)) on a fresh project."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tiny_project import ADAMIX, SEED, TASK, make_project

from flows.config import paths
from flows.config.params import load_params
from flows.config.schema import KNOWN_METHODS
from flows.stages import evaluate, fewshot, merge, prepare, report, train

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    """Every stage run once on the tiny project, every method, one seed (about 3 s)."""
    root = tmp_path_factory.mktemp("stages")
    params = load_params(make_project(root, tiny_model_dir, methods=KNOWN_METHODS), profile="")
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    out = {"root": root, "params": params, "train": {}, "merge": {}, "evaluate": {}}
    for method in KNOWN_METHODS:
        out["train"][method] = train.train_run(params, TASK, method, SEED, root=root, track=False)
        out["merge"][method] = merge.merge_run(params, TASK, method, SEED, root=root)
        out["evaluate"][method] = evaluate.evaluate_run(params, TASK, method, SEED, root=root, track=False)
    out["report"] = report.build_report(paths.results_dir(root), paths.reports_dir(root, params), params)
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _leftovers(folder: Path) -> list[str]:
    """Staging folders a stage failed to clean up (they start with a dot)."""
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


def test_prepare_writes_normalised_capped_splits(project: dict) -> None:
    folder = paths.prepared_dir(TASK, project["root"])
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["splits"] == {"train": 24, "validation": 8, "test": 8}
    assert meta["label_names"] == ["neg", "pos"] and meta["primary_metric"] == "accuracy"
    texts = set()
    for split in SPLITS:
        rows = _jsonl(folder / f"{split}.jsonl")
        assert len(rows) == meta["splits"][split]
        assert all(set(row) == {"text_a", "text_b", "label"} and row["label"] in (0, 1) for row in rows)
        assert {row["label"] for row in rows} == {0, 1}  # stratified
        texts |= {row["text_a"] for row in rows}
    assert len(texts) == 40  # disjoint splits
    assert _leftovers(project["root"] / "data") == []


def test_fewshot_passes_full_data_through_and_draws_k_per_class(project: dict) -> None:
    root, params = project["root"], project["params"]
    full = paths.split_dir(TASK, SEED, root)
    meta = json.loads((full / "meta.json").read_text())
    assert (meta["k"], meta["seed"]) == (0, SEED)
    for split in SPLITS:
        assert (full / f"{split}.jsonl").read_bytes() == (
            paths.prepared_dir(TASK, root) / f"{split}.jsonl"
        ).read_bytes()
    shots = fewshot.split_for_seed({**params, "fewshot": {"k": 3}}, TASK, 99, root=root)
    labels = [row["label"] for row in _jsonl(shots / "train.jsonl")]
    assert sorted(labels) == [0, 0, 0, 1, 1, 1]
    assert len(_jsonl(shots / "validation.jsonl")) == 6


@pytest.mark.parametrize("method", KNOWN_METHODS)
def test_train_writes_a_complete_run(project: dict, method: str) -> None:
    folder = paths.run_dir(TASK, method, SEED, project["root"])
    info = json.loads((folder / "run.json").read_text())
    returned = dict(project["train"][method])
    assert returned.pop("seconds") > 0  # wall-clock time: returned and in timings/, not in the run folder
    assert info == returned
    assert (info["task"], info["method"], info["seed"], info["epochs"]) == (TASK, method, SEED, 2)
    assert len(info["step_loss"]) == 2 * 3  # 24 examples in batches of 8, 2 epochs
    assert 0 < info["params"]["trainable"] <= info["params"]["total"]
    history = json.loads((folder / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    for record in history:
        assert record["train_loss"] > 0 and 0 <= record["validation/accuracy"] <= 1
        assert ("consistency_loss" in record) == (method in ADAMIX)
    artifact = "model" if method == "full" else "adapter"
    assert sorted(p.name for p in folder.iterdir()) == sorted([artifact, "history.json", "run.json"])
    assert any((folder / artifact).iterdir())
    assert _leftovers(project["root"] / "runs") == []


def test_merge_shrinks_adamix_and_keeps_single_modules(project: dict) -> None:
    root = project["root"]
    for method, record in project["merge"].items():
        folder = paths.merged_dir(TASK, method, SEED, root)
        assert json.loads((folder / "params.json").read_text()) == record
        if method in ADAMIX:
            assert record["merged"] and (folder / "adapter").is_dir()
            assert record["after"]["adapter"] < record["before"]["adapter"]
            assert record["after"]["total"] < record["before"]["total"]
            assert record["after"]["deployed"] < record["before"]["trainable"]
        else:
            assert not record["merged"] and record["after"] == record["before"]
            assert [p.name for p in folder.iterdir()] == ["params.json"]
    # two experts merged into one adapter: deployed like the single-adapter baseline
    merged, single = project["merge"]["adamix_adapter"], project["merge"]["adapter"]
    assert merged["after"]["adapter"] == single["after"]["adapter"] < merged["before"]["adapter"]
    assert _leftovers(root / "merged") == []


@pytest.mark.parametrize("method", KNOWN_METHODS)
def test_evaluate_writes_every_inference_mode(project: dict, method: str) -> None:
    path = paths.result_path(TASK, method, SEED, project["root"])
    result = json.loads(path.read_text())
    assert result == project["evaluate"][method]
    expected = {"merge", "random", "fixed"} if method in ADAMIX else {"single"}
    assert set(result["modes"]) == expected
    for metrics in result["modes"].values():
        assert set(metrics) == {"accuracy"} and 0 <= metrics["accuracy"] <= 1
    assert result["primary_metric"] == "accuracy"
    counts = project["merge"][method]
    assert result["params"] == {
        "trainable": counts["before"]["trainable"],
        "deployed": counts["after"]["deployed"],
    }
    assert result["history"] == json.loads(
        (paths.run_dir(TASK, method, SEED, project["root"]) / "history.json").read_text()
    )


@pytest.mark.parametrize("method", ["adamix_adapter", "adapter"])
def test_evaluate_keeps_every_prediction_and_gold_label(project: dict, method: str) -> None:
    """Per-example predictions in every mode, from which each mode's accuracy is recomputed exactly."""
    from flows.data import load_split
    from flows.metrics import unpack_values

    result = project["evaluate"][method]
    split = paths.split_dir(TASK, SEED, project["root"])
    gold = [e["label"] for e in load_split(split, "test")]
    assert list(unpack_values(result["labels"]["test"])) == gold
    assert set(result["predictions"]) == set(result["modes"])
    for mode, by_split in result["predictions"].items():
        predicted = unpack_values(by_split["test"])
        assert len(predicted) == len(gold)
        assert (predicted == gold).mean() == pytest.approx(result["modes"][mode]["accuracy"], abs=1e-12)
    validation = [e["label"] for e in load_split(split, "validation")]
    assert result["validation_majority"] == max(validation.count(c) for c in set(validation)) / len(
        validation
    )


def test_report_tables_and_plots(project: dict) -> None:
    out = paths.reports_dir(project["root"], project["params"])
    summary = project["report"]
    assert summary["runs"] == len(KNOWN_METHODS) and summary["missing_runs"] == []
    for name in summary["files"]:
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "results.md").read_text()
    for label in ("AdaMix Adapter", "AdaMix LoRA", "Adapter", "LoRA", "Full fine-tuning", "inference modes"):
        assert label in markdown
    tidy = pd.read_csv(out / "results.csv")
    assert len(tidy) == 2 * 3 + 3 * 1  # AdaMix: 3 modes each; the others: one
    row = tidy[(tidy.method == "adamix_adapter") & (tidy["mode"] == "merge")].iloc[0]
    assert row.value == project["evaluate"]["adamix_adapter"]["modes"]["merge"]["accuracy"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics[TASK]) == set(KNOWN_METHODS)
    assert set(pd.read_csv(out / "inference_modes.csv")["mode"]) == {"merge", "random", "fixed"}


def test_stage_command_lines_return_zero_and_match_the_functions(
    project: dict, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`python -m flows.<stage>` through main(argv), with ADAMIX_ROOT naming the project (as DVC runs them)."""
    params_file = make_project(tmp_path, tiny_model_dir, methods=["adamix_adapter"])
    monkeypatch.setenv("ADAMIX_ROOT", str(tmp_path))
    run = ["--task", TASK, "--method", "adamix_adapter", "--seed", str(SEED), "--params", str(params_file)]
    assert prepare.main(["--task", TASK, "--params", str(params_file)]) == 0
    assert fewshot.main(["--task", TASK, "--seed", str(SEED), "--params", str(params_file)]) == 0
    for stage in (train, merge, evaluate):
        assert stage.main(run) == 0, stage.__name__
    out = tmp_path / "reports"
    assert (
        report.main(["--results", str(tmp_path / "results"), "--out", str(out), "--params", str(params_file)])
        == 0
    )
    assert "error" not in capsys.readouterr().err
    assert (out / "results.md").is_file()
    # same seed, same data, same model: the command line reproduces the stage functions exactly
    result = json.loads(paths.result_path(TASK, "adamix_adapter", SEED, tmp_path).read_text())
    expected = project["evaluate"]["adamix_adapter"]
    assert result["modes"] == expected["modes"]
    assert [h["train_loss"] for h in result["history"]] == pytest.approx(
        [h["train_loss"] for h in expected["history"]], rel=1e-5
    )
