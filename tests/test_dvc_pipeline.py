"""The DVC path: `python -m flows.config resolve` then `dvc repro` in a fresh git + DVC repository holding the
pipeline's dvc.yaml, with a tiny grid (1 task, 2 methods, 1 seed). Every stage is its own Python process, so
this takes about a minute: marked slow (`make test-slow`)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from tiny_project import SEED, TASK, add_dvc, make_project, run_tool

from flows import tracking
from flows.config import paths
from flows.config.params import load_params
from flows.stages import evaluate, fewshot, merge, prepare, report, train

pytestmark = pytest.mark.slow

METHODS = ["adamix_adapter", "lora"]
REPORTS = ("results.md", "results.csv", "summary.csv", "results.tex", "inference_modes.csv", "metrics.json")
STAGES = [
    "prepare@toy",
    "fewshot@toy-13",
    *(f"{stage}@toy-{method}-13" for stage in ("train", "merge", "evaluate") for method in METHODS),
    "report",
]


def _ran(output: str) -> list[str]:
    """The stages `dvc repro` ran (not the ones it skipped or restored)."""
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("dvc-repo")
    params_file = make_project(root, tiny_model_dir, methods=METHODS)
    add_dvc(root)
    resolved = run_tool(root, "python", "-m", "flows.config", "resolve")
    assert "wrote" in resolved.stdout
    key = f"dvc-test-{uuid.uuid4().hex[:8]}"
    first = run_tool(root, "env", f"ADAMIX_PIPELINE_RUN={key}", "dvc", "repro", timeout=540)
    return {"root": root, "params": load_params(params_file, profile=""), "first": first, "key": key}


def test_repro_runs_every_stage_once(repo: dict) -> None:
    assert sorted(_ran(repo["first"].stdout)) == sorted(STAGES)
    lock = yaml.safe_load((repo["root"] / "dvc.lock").read_text())
    assert sorted(lock["stages"]) == sorted(STAGES)


def test_repro_writes_the_reports(repo: dict) -> None:
    root = repo["root"]
    for name in (*REPORTS, "training_curves.png", "scores.png"):
        assert (root / "reports" / name).stat().st_size > 0, name
    assert "AdaMix Adapter" in (root / "reports" / "results.md").read_text()
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert set(metrics[TASK]) == set(METHODS)


def test_repro_equals_the_stage_functions(repo: dict, tmp_path: Path) -> None:
    """Separate processes, same seeds: the same numbers as calling the stages in this process."""
    params, root = repo["params"], repo["root"]
    prepare.prepare(params, TASK, root=tmp_path)
    fewshot.split_for_seed(params, TASK, SEED, root=tmp_path)
    for method in METHODS:
        train.train_run(params, TASK, method, SEED, root=tmp_path, track=False)
        merge.merge_run(params, TASK, method, SEED, root=tmp_path)
        want = evaluate.evaluate_run(params, TASK, method, SEED, root=tmp_path, track=False)
        got = json.loads(paths.result_path(TASK, method, SEED, root).read_text())
        assert got["modes"] == want["modes"], method
        assert got["params"] == want["params"]
    report.build_report(paths.results_dir(tmp_path), tmp_path / "reports", params)
    pd.testing.assert_frame_equal(
        pd.read_csv(root / "reports" / "results.csv"), pd.read_csv(tmp_path / "reports" / "results.csv")
    )


def test_second_repro_is_a_no_op_and_status_is_clean(repo: dict) -> None:
    root = repo["root"]
    again = run_tool(root, "dvc", "repro")
    assert _ran(again.stdout) == [], again.stdout
    assert "up to date" in again.stdout, again.stdout
    status = run_tool(root, "dvc", "status")
    assert "up to date" in status.stdout, status.stdout


def test_a_report_setting_reruns_only_the_report(repo: dict) -> None:
    root = repo["root"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["report"]["decimals"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_tool(root, "python", "-m", "flows.config", "resolve")
    rerun = run_tool(root, "dvc", "repro")
    assert _ran(rerun.stdout) == ["report"], rerun.stdout
    assert "up to date" in run_tool(root, "dvc", "status").stdout


def test_stage_processes_share_one_mlflow_parent(repo: dict) -> None:
    client = MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment_by_name(repo["params"]["tracking"]["experiment"]).experiment_id
    parents = client.search_runs([experiment], filter_string="tags.`adamix.kind` = 'pipeline'")
    assert [p.data.tags[tracking.PIPELINE_TAG] for p in parents] == [repo["key"]]
    children = client.search_runs([experiment], filter_string="tags.`adamix.kind` = 'stage'")
    assert len(children) == 2 * len(METHODS)
    assert {c.data.tags[tracking.PARENT_TAG] for c in children} == {parents[0].info.run_id}
    assert all(c.data.tags.get("adamix.data_hash") for c in children)
