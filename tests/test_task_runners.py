"""Prefect's Dask and Ray task runners (the `scale` extra) on the tiny project: a 2-run grid through a Dask
`LocalCluster` of worker processes, and through a local Ray instance, must give exactly what the thread
runner gives. Both start worker processes that import torch and the pipeline (Ray alone takes about 15 s to
start), so they are slow tests (`make test-slow`). Which runner params build, how `flow.address` points them
at a running cluster, and that every task pickles (what Dask and Ray do to ship it) are checked at once.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from tiny_project import SEED, TASK, run_prefect_flow

from flows import mlflow_store, tracking
from flows.config import paths
from flows.config.schema import DEFAULTS
from flows.orchestration import prefect_flow as pipeline

prefect_dask = pytest.importorskip("prefect_dask")

METHODS = ["adamix_adapter", "lora"]


def _flow_params(kind: str, address: str | None = None) -> dict:
    params = copy.deepcopy(DEFAULTS)
    params["flow"].update(task_runner=kind, max_workers=2, address=address)
    return params


def test_dask_runner_is_a_local_cluster_on_loopback() -> None:
    runner = pipeline.task_runner(_flow_params("dask"))
    assert isinstance(runner, prefect_dask.DaskTaskRunner)
    assert runner.address is None
    assert runner.cluster_kwargs == {
        "n_workers": 2,
        "threads_per_worker": 1,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "processes": True,
    }


def test_dask_runner_connects_to_the_address() -> None:
    runner = pipeline.task_runner(_flow_params("dask", "tcp://10.0.0.5:8786"))
    assert runner.address == "tcp://10.0.0.5:8786" and runner.cluster_kwargs == {}


def test_ray_runner_local_or_at_the_address() -> None:
    prefect_ray = pytest.importorskip("prefect_ray")
    local = pipeline.task_runner(_flow_params("ray"))
    assert isinstance(local, prefect_ray.RayTaskRunner) and local.address is None
    assert local.init_kwargs["num_cpus"] == 2 and local.init_kwargs["include_dashboard"] is False
    remote = pipeline.task_runner(_flow_params("ray", "ray://10.0.0.5:10001"))
    assert remote.address == "ray://10.0.0.5:10001"


def test_address_must_be_text_or_null() -> None:
    from flows.config.params import ParamsError, validate

    params = _flow_params("dask", "")
    with pytest.raises(ParamsError, match="flow.address"):
        validate(params)


def test_every_task_pickles_for_worker_processes() -> None:
    """Dask and Ray pickle each task's function by value: a lock or other process state in it fails."""
    import cloudpickle

    for task in (
        pipeline.prepare_task,
        pipeline.fewshot_task,
        pipeline.train_task,
        pipeline.merge_task,
        pipeline.evaluate_task,
        pipeline.report_task,
    ):
        assert cloudpickle.loads(cloudpickle.dumps(task)).fn.__name__ == task.fn.__name__


def _run_flow(root: Path, model_dir: Path, kind: str) -> dict:
    """One flow run of the 2-run grid with task runner `kind` in a fresh DVC project at `root`."""
    run = run_prefect_flow(root, model_dir, METHODS, task_runner=kind, max_workers=2)
    assert run["out"] == str(root / "reports")
    return run


@pytest.fixture(scope="module")
def thread_run(prefect_harness, tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    return _run_flow(tmp_path_factory.mktemp("thread-flow"), tiny_model_dir, "thread")


def _assert_same_results(got: dict, want: dict) -> None:
    for method in METHODS:
        a = json.loads(paths.result_path(TASK, method, SEED, got["root"]).read_text())
        b = json.loads(paths.result_path(TASK, method, SEED, want["root"]).read_text())
        assert a["modes"] == b["modes"], method
        assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]], method
    pd.testing.assert_frame_equal(
        pd.read_csv(got["root"] / "reports" / "results.csv"),
        pd.read_csv(want["root"] / "reports" / "results.csv"),
    )


def _stage_pids(run: dict) -> set[str]:
    """The process ids the flow's train and evaluate stage runs were tracked from (MLflow owner tags)."""
    client = MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment_by_name(run["params"]["tracking"]["experiment"]).experiment_id
    children = client.search_runs([experiment], filter_string="tags.`adamix.kind` = 'stage'")
    assert len(children) == 2 * len(METHODS)
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags[tracking.PIPELINE_TAG] for c in children} == {run["key"]}
    return {c.data.tags[mlflow_store.PID_TAG] for c in children}


@pytest.mark.slow
def test_dask_local_cluster_equals_the_thread_runner(
    thread_run: dict, tmp_path: Path, tiny_model_dir
) -> None:
    dask_run = _run_flow(tmp_path / "dask-flow", tiny_model_dir, "dask")
    _assert_same_results(dask_run, thread_run)
    assert _stage_pids(thread_run) == {str(os.getpid())}
    assert str(os.getpid()) not in _stage_pids(dask_run)  # the stages ran in the cluster's worker processes


@pytest.mark.slow
def test_ray_local_instance_equals_the_thread_runner(
    thread_run: dict, tmp_path: Path, tiny_model_dir
) -> None:
    pytest.importorskip("prefect_ray")
    ray_run = _run_flow(tmp_path / "ray-flow", tiny_model_dir, "ray")
    _assert_same_results(ray_run, thread_run)
    assert str(os.getpid()) not in _stage_pids(ray_run)
