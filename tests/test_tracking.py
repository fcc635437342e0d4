"""Tests for flows.tracking: parent find-or-create, nested stage runs, what gets recorded, FAILED on error."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flows import tracking
from flows.tracking import StageRun, file_hash, flatten, get_or_create_parent, pipeline_run_id


@pytest.fixture
def params(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Minimal params with an experiment of its own, so tests never see each other's runs."""
    monkeypatch.delenv("ADAMIX_PIPELINE_RUN", raising=False)
    return {
        "tracking": {"experiment": f"test-{uuid.uuid4().hex[:8]}"},
        "train": {"epochs": 3, "learning_rate": 4e-4},
        "methods": ["adamix_adapter", "lora"],
        "datasets": {},
    }


def _client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking.tracking_uri())


def _runs(params: dict, kind: str) -> list:
    experiment = _client().get_experiment_by_name(params["tracking"]["experiment"])
    return _client().search_runs([experiment.experiment_id], filter_string=f"tags.`adamix.kind` = '{kind}'")


def test_uses_tracking_uri_from_environment() -> None:
    assert tracking.tracking_uri().startswith("sqlite:///")
    assert "adamix-tests-" in tracking.tracking_uri()  # conftest's temporary store, never the project's


def test_pipeline_run_id_is_stable_and_follows_params(params: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    first = pipeline_run_id(params)
    assert first == pipeline_run_id({**params})
    assert first != pipeline_run_id({**params, "methods": ["lora"]})
    monkeypatch.setenv("ADAMIX_PIPELINE_RUN", "nightly-7")
    assert pipeline_run_id(params) == "nightly-7"
    monkeypatch.setenv("ADAMIX_PIPELINE_RUN", "bad'key")
    with pytest.raises(ValueError, match="ADAMIX_PIPELINE_RUN"):
        pipeline_run_id(params)


def test_parent_find_or_create_is_idempotent(params: dict) -> None:
    first = get_or_create_parent(params)
    assert get_or_create_parent(params) == first
    parents = _runs(params, "pipeline")
    assert [run.info.run_id for run in parents] == [first]
    parent = parents[0]
    assert parent.data.tags["adamix.pipeline_run"] == pipeline_run_id(params)
    assert parent.info.run_name == f"pipeline {pipeline_run_id(params)}"
    assert parent.data.params["train.epochs"] == "3"
    assert get_or_create_parent(params, run_key="other") != first


@pytest.mark.parametrize("locking", [True, False], ids=["file-lock", "settle-on-oldest"])
def test_parent_race_settles_on_one_run(params: dict, monkeypatch: pytest.MonkeyPatch, locking: bool) -> None:
    if not locking:  # what a tracking server (or Windows) gets: no lock, wait and keep the oldest
        monkeypatch.setattr(tracking, "fcntl", None)
        monkeypatch.setattr(tracking, "_SETTLE_SECONDS", 0.3)
    tracking.experiment_id(params)  # create the experiment first; the race under test is on the parent
    results: list[str] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        results.append(get_or_create_parent(params, run_key="race"))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len(set(results)) == 1
    survivors = [run.info.run_id for run in _runs(params, "pipeline")]
    assert len(survivors) == 1
    assert get_or_create_parent(params, run_key="race") == survivors[0]


def test_stage_run_records_params_metrics_tags_and_nesting(params: dict, tmp_path: Path) -> None:
    artifact = tmp_path / "result.json"
    artifact.write_text("{}")
    run_params = {**params, "train": {"epochs": 1, "learning_rate": 5e-5}, "notes": "x" * 7000}
    tags = {"task": "rotten_tomatoes", "method": "lora", "seed": 13, "data_hash": "abc", "custom.tag": "v"}
    with StageRun(params, "train", "rotten_tomatoes/lora/13", run_params, tags=tags) as run:
        run.log_metrics({"train_loss": 0.5, "validation/accuracy": 0.7}, step=1)
        run.log_metrics({"train_loss": 0.25}, step=2)
        run.log_artifact(artifact)
    client = _client()
    recorded = client.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.info.run_name == "train rotten_tomatoes/lora/13"
    assert recorded.data.tags["mlflow.parentRunId"] == get_or_create_parent(params)
    for key, value in {
        "adamix.stage": "train",
        "adamix.task": "rotten_tomatoes",
        "adamix.method": "lora",
        "adamix.seed": "13",
        "adamix.data_hash": "abc",
        "custom.tag": "v",
    }.items():
        assert recorded.data.tags[key] == value
    if tracking.git_commit():
        assert recorded.data.tags["mlflow.source.git.commit"] == tracking.git_commit()
    assert recorded.data.params["train.epochs"] == "1"
    assert recorded.data.params["methods"] == '["adamix_adapter", "lora"]'
    assert len(recorded.data.params["notes"]) == 6000 and recorded.data.params["notes"].endswith(
        "[truncated]"
    )
    history = client.get_metric_history(run.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert recorded.data.metrics["validation/accuracy"] == 0.7
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["result.json"]
    # artifacts live beside the sqlite database, never in the working directory or a misread path
    store = Path(tracking.tracking_uri().removeprefix("sqlite:///")).parent / "mlartifacts"
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    assert experiment.artifact_location == store.as_uri()
    assert [p.parent.parent.name for p in store.rglob("result.json")] == [run.run_id]


def test_stage_run_marks_failed_and_reraises(params: dict) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with StageRun(params, "evaluate", "evaluate t/m/1", {"a": 1}) as run:
            raise RuntimeError("boom")
    recorded = _client().get_run(run.run_id)
    assert recorded.info.status == "FAILED"
    assert recorded.info.run_name == "evaluate t/m/1"  # a name already starting with the stage is kept


def test_log_metrics_rejects_non_numbers(params: dict) -> None:
    with StageRun(params, "train", "t", {}) as run:
        with pytest.raises(TypeError, match="'accuracy'"):
            run.log_metrics({"accuracy": "high"})


def test_flatten_makes_mlflow_safe_keys() -> None:
    flat = flatten({"datasets": {"my task!": {"path": "a.csv"}}, "empty": {}, "x": None, "flag": True})
    assert flat == {"datasets.my task_.path": "a.csv", "empty": "{}", "x": "null", "flag": "true"}


def test_file_hash_of_file_and_directory(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    before = file_hash(folder)
    assert len(before) == 64 and file_hash(folder) == before
    assert file_hash(folder / "a.txt") != file_hash(folder / "sub" / "b.txt")
    (folder / "sub" / "b.txt").rename(folder / "b.txt")  # same bytes, different layout
    assert file_hash(folder) != before
    with pytest.raises(FileNotFoundError, match="missing"):
        file_hash(tmp_path / "missing")
