"""MLflow runs always end (FINISHED, FAILED or KILLED), a fresh store survives concurrent starts, and the store
follows ADAMIX_ROOT (flows.tracking, flows.orchestration.lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flows import mlflow_store, tracking
from flows.orchestration import lock

_STAGE = """
import sys, time
from flows.tracking import StageRun
params = {{"tracking": {{"experiment": "{experiment}"}}, "train": {{}}}}
with StageRun(params, "train", "t/m/{tag}", params, tags={{"method": "{tag}"}}) as run:
    print(run.run_id, flush=True)
    time.sleep({sleep})
    sys.exit({code})
"""


def _env(uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ADAMIX_PIPELINE_RUN", "ADAMIX_LOCK_PID")}
    return {**env, "MLFLOW_TRACKING_URI": uri, **extra}


def _stage(experiment: str, tag: str, sleep: float = 0, code: int = 0) -> list[str]:
    return [sys.executable, "-c", _STAGE.format(experiment=experiment, tag=tag, sleep=sleep, code=code)]


def test_the_store_follows_adamix_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("ADAMIX_ROOT", str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")
    assert tracking.tracking_uri() == "sqlite:////elsewhere/mlflow.db"  # an explicit URI wins


def test_a_fresh_store_survives_processes_that_start_together(tmp_path: Path) -> None:
    """Three stage processes on a database that does not exist yet: all three finish (2 of 3 used to crash in
    MLflow's schema migration)."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            _stage("fresh", f"m{i}"), env=_env(uri), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(3)
    ]
    outcomes = [(p.wait(timeout=240), p.stderr.read().decode()[-400:]) for p in procs]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("fresh").experiment_id])
    stages = [r for r in runs if r.data.tags["adamix.kind"] == "stage"]
    assert sorted(r.info.status for r in stages) == ["FINISHED"] * 3
    assert len({r.data.tags["mlflow.parentRunId"] for r in stages}) == 1  # one shared parent


def test_a_killed_run_is_marked_killed_at_the_next_start(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'kill.db'}"
    experiment = f"kill-{uuid.uuid4().hex[:6]}"
    victim = subprocess.Popen(_stage(experiment, "victim", sleep=120), env=_env(uri), stdout=subprocess.PIPE)
    run_id = victim.stdout.readline().decode().strip()
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "RUNNING"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert client.get_run(run_id).info.status == "RUNNING"  # nothing could end it
    assert subprocess.run(_stage(experiment, "next"), env=_env(uri), timeout=240).returncode == 0
    assert client.get_run(run_id).info.status == "KILLED"


@pytest.mark.parametrize(("code", "status"), [(0, "FINISHED"), (3, "FAILED")])
def test_the_lock_wrapper_ends_the_pipelines_parent_run(tmp_path: Path, code: int, status: str) -> None:
    """`make reproduce` runs `dvc repro` under the lock wrapper, which ends the parent run with its outcome
    (the parent of every `make reproduce` used to stay RUNNING)."""
    uri = f"sqlite:///{tmp_path / 'parent.db'}"
    experiment, key = f"parent-{uuid.uuid4().hex[:6]}", f"reproduce-{uuid.uuid4().hex[:6]}"
    env = _env(uri, ADAMIX_PIPELINE_RUN=key, ADAMIX_ROOT=str(tmp_path))
    wrapped = [sys.executable, "-m", "flows.orchestration.lock", "--", *_stage(experiment, "s", code=code)]
    assert subprocess.run(wrapped, env=env, timeout=240, cwd=tmp_path).returncode == code
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    kinds = {r.data.tags["adamix.kind"]: r for r in runs}
    assert kinds["pipeline"].info.status == status
    assert kinds["pipeline"].data.tags[mlflow_store.PID_TAG] != kinds["stage"].data.tags[mlflow_store.PID_TAG]
    assert kinds["stage"].info.status == ("FINISHED" if code == 0 else "FAILED")


def test_the_lock_and_tracking_agree_on_the_owner_variable() -> None:
    assert lock.LOCK_PID_ENV == mlflow_store.LOCK_PID_ENV
