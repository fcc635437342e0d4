"""The Prefect path: the `reproduce` flow on a tiny project, against one session-wide test harness.

It must give the same results as the stage functions run directly, record them in DVC (`dvc status` clean
afterwards), and track one MLflow parent run with nested train/evaluate runs. The served deployment's
schedule is checked without a server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.task_runners import ThreadPoolTaskRunner
from tiny_project import SEED, TASK, run_prefect_flow, run_tool

from flows import tracking
from flows.config import paths
from flows.config.params import load_params
from flows.orchestration import prefect_flow as pipeline
from flows.stages import evaluate, fewshot, merge, prepare, report, train

METHODS = ["adamix_adapter", "lora"]


def _direct(root: Path, params: dict) -> None:
    """The pipeline as plain function calls, without Prefect, DVC or MLflow."""
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    for method in METHODS:
        train.train_run(params, TASK, method, SEED, root=root, track=False)
        merge.merge_run(params, TASK, method, SEED, root=root)
        evaluate.evaluate_run(params, TASK, method, SEED, root=root, track=False)
    report.build_report(paths.results_dir(root), paths.reports_dir(root, params), params)


@pytest.fixture(scope="module")
def flow_run(prefect_harness, tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    """One flow run (thread task runner) on a DVC project, and the same params run directly elsewhere."""
    run = run_prefect_flow(tmp_path_factory.mktemp("flow"), tiny_model_dir, METHODS)
    direct = tmp_path_factory.mktemp("direct")
    _direct(direct, run["params"])
    return {**run, "direct": direct}


def test_thread_task_runner_from_params(flow_run: dict) -> None:
    assert isinstance(flow_run["runner"], ThreadPoolTaskRunner)
    assert flow_run["runner"]._max_workers == flow_run["params"]["flow"]["max_workers"]


def test_flow_writes_every_stage_output_under_the_project(flow_run: dict) -> None:
    root = flow_run["root"]
    assert flow_run["out"] == str(root / "reports")
    assert (root / paths.RESOLVED_PARAMS).is_file() and (root / paths.GRID_PARAMS).is_file()
    assert load_params(root / paths.RESOLVED_PARAMS, profile="") == flow_run["params"]
    for method in METHODS:
        assert (paths.run_dir(TASK, method, SEED, root) / "run.json").is_file()
        assert (paths.merged_dir(TASK, method, SEED, root) / "params.json").is_file()
        assert paths.result_path(TASK, method, SEED, root).is_file()
    assert (root / "reports" / "results.md").is_file()


def test_flow_results_equal_the_stage_functions(flow_run: dict) -> None:
    root, direct = flow_run["root"], flow_run["direct"]
    for method in METHODS:
        got = json.loads(paths.result_path(TASK, method, SEED, root).read_text())
        want = json.loads(paths.result_path(TASK, method, SEED, direct).read_text())
        assert got["modes"] == want["modes"], method
        assert got["params"] == want["params"]
        for a, b in zip(got["history"], want["history"], strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    pd.testing.assert_frame_equal(
        pd.read_csv(root / "reports" / "results.csv"), pd.read_csv(direct / "reports" / "results.csv")
    )


def test_flow_outputs_are_recorded_in_dvc(flow_run: dict) -> None:
    root = flow_run["root"]
    lock = (root / "dvc.lock").read_text()
    for stage in ("prepare@toy", "train@toy-adamix_adapter-13", "evaluate@toy-lora-13", "report:"):
        assert stage in lock, stage
    status = run_tool(root, "dvc", "status")
    assert "up to date" in status.stdout, status.stdout


def _client() -> MlflowClient:
    return MlflowClient(tracking.tracking_uri())


def test_mlflow_parent_with_nested_stage_runs(flow_run: dict) -> None:
    params, key = flow_run["params"], flow_run["key"]
    client = _client()
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"]).experiment_id
    parents = client.search_runs([experiment], filter_string="tags.`adamix.kind` = 'pipeline'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tracking.PIPELINE_TAG] == key
    assert parent.data.params["train.epochs"] == "2" and parent.data.params["tasks"] == '["toy"]'
    commit = tracking.git_commit()
    if commit:
        assert parent.data.tags[tracking.COMMIT_TAG] == commit
    children = client.search_runs([experiment], filter_string="tags.`adamix.kind` = 'stage'")
    assert sorted((r.data.tags["adamix.stage"], r.data.tags["adamix.method"]) for r in children) == sorted(
        (stage, method) for stage in ("train", "evaluate") for method in METHODS
    )
    data_hash = tracking.file_hash(paths.split_dir(TASK, SEED, flow_run["root"]))
    for child in children:
        tags = child.data.tags
        assert child.info.status == "FINISHED"
        assert tags[tracking.PARENT_TAG] == parent.info.run_id and tags[tracking.PIPELINE_TAG] == key
        assert (tags["adamix.task"], tags["adamix.seed"]) == (TASK, str(SEED))
        assert tags["adamix.data_hash"] == data_hash
        if commit:
            assert tags[tracking.COMMIT_TAG] == commit
        assert child.data.params["train.epochs"] == "2" and child.data.params["model.name_or_path"]


def test_mlflow_train_runs_log_every_epoch_and_evaluate_runs_every_mode(flow_run: dict) -> None:
    params, root = flow_run["params"], flow_run["root"]
    client = _client()
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"]).experiment_id
    for method in METHODS:
        where = f"tags.`adamix.method` = '{method}' and tags.`adamix.stage` = "
        (trained,) = client.search_runs([experiment], filter_string=where + "'train'")
        history = json.loads((paths.run_dir(TASK, method, SEED, root) / "history.json").read_text())
        for metric in ("train_loss", "validation/accuracy"):
            logged = client.get_metric_history(trained.info.run_id, metric)
            assert [m.step for m in sorted(logged, key=lambda m: m.step)] == [1, 2], metric
            assert sorted(logged, key=lambda m: m.step)[-1].value == pytest.approx(history[-1][metric])
        assert trained.data.metrics["params/trainable"] > 0
        (evaluated,) = client.search_runs([experiment], filter_string=where + "'evaluate'")
        result = json.loads(paths.result_path(TASK, method, SEED, root).read_text())
        logged = dict(evaluated.data.metrics)
        assert logged == {f"{mode}/{k}": v for mode, ms in result["modes"].items() for k, v in ms.items()}


def test_served_deployment_has_the_cron_of_params(flow_run: dict) -> None:
    """What `python -m flows.pipeline serve` serves, built without a server."""
    flow_cfg = flow_run["params"]["flow"]
    deployment = pipeline.reproduce.to_deployment(
        name=flow_cfg["deployment"], cron=flow_cfg["cron"], parameters={"profile": "smoke"}
    )
    assert deployment.name == "adamix-weekly"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * 1"]
    assert deployment.parameters == {"profile": "smoke"}
