"""The pipeline against shared stores, as a team would run it: a DVC remote (a local folder standing in for
S3) that one clone pushes to and another pulls from, and an MLflow tracking server (`mlflow server` on
127.0.0.1) that a stage process logs to, configured by `MLFLOW_TRACKING_URI` alone. Each test runs real
`dvc`, `mlflow` and stage processes: marked slow (`make test-slow`)."""

from __future__ import annotations

import contextlib
import filecmp
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tiny_project import SEED, TASK, add_dvc, make_project, run_tool

from flows import tracking
from flows.config import paths
from flows.config.params import load_params
from flows.stages import fewshot, prepare

pytestmark = pytest.mark.slow

METHOD = "adamix_adapter"
TRAIN = f"train@{TASK}-{METHOD}-{SEED}"
GIT = ("git", "-c", "user.name=adamix-tests", "-c", "user.email=tests@adamix.invalid")


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def _same_tree(a: Path, b: Path) -> None:
    """Two folders hold the same files with the same bytes."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a and files_a == files_b, (files_a, files_b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in files_a], shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


def _commit(root: Path, message: str) -> None:
    run_tool(root, "git", "add", "-A")
    run_tool(root, *GIT, "commit", "-q", "-m", message)


def test_dvc_local_remote_push_pull_and_run_through(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A pushes prepared data; a clone B pulls it, trains on it (nothing upstream reruns) and pushes the run;
    A pulls the run back. Both workspaces end byte-identical and `dvc status` clean for what has run (the
    grid's later stages have not run in this test)."""
    remote = tmp_path / "remote"
    a = tmp_path / "a"
    make_project(a, tiny_model_dir, methods=[METHOD])
    add_dvc(a)
    # `-d`, not `--local`: the remote is part of the committed DVC config, so every clone gets it.
    run_tool(a, "dvc", "remote", "add", "-d", "store", str(remote))
    run_tool(a, "python", "-m", "flows.config", "resolve")
    first = run_tool(a, "dvc", "repro", f"fewshot@{TASK}-{SEED}", timeout=300)
    assert sorted(_ran(first.stdout)) == [f"fewshot@{TASK}-{SEED}", f"prepare@{TASK}"], first.stdout
    pushed = run_tool(a, "dvc", "push")
    assert re.search(r"\d+ files? pushed", pushed.stdout), pushed.stdout
    assert any(p.is_file() for p in remote.rglob("*")), "nothing in the remote"
    _commit(a, "prepared data")

    b = tmp_path / "b"
    subprocess.run(["git", "clone", "-q", str(a), str(b)], check=True, capture_output=True)
    run_tool(b, "dvc", "config", "--local", "core.site_cache_dir", str(tmp_path / "b-dvc-site"))
    outputs = [paths.prepared_dir(TASK, a), paths.split_dir(TASK, SEED, a)]
    assert not any((b / folder.relative_to(a)).exists() for folder in outputs)  # git holds no data
    pulled = run_tool(b, "dvc", "pull", "--with-deps", f"fewshot@{TASK}-{SEED}")  # what A has run
    assert re.search(r"\d+ files? fetched", pulled.stdout), pulled.stdout
    for folder in outputs:
        _same_tree(folder, b / folder.relative_to(a))
    assert "up to date" in run_tool(b, "dvc", "status", "--with-deps", f"fewshot@{TASK}-{SEED}").stdout

    trained = run_tool(b, "dvc", "repro", TRAIN, timeout=300)
    assert _ran(trained.stdout) == [TRAIN], trained.stdout  # the pulled upstream stages are reused
    assert re.search(r"\d+ files? pushed", run_tool(b, "dvc", "push").stdout)
    _commit(b, "trained")

    run_tool(a, "git", "pull", "-q", str(b), "HEAD")
    run_tool(a, "dvc", "pull", TRAIN)
    _same_tree(paths.run_dir(TASK, METHOD, SEED, b), paths.run_dir(TASK, METHOD, SEED, a))
    assert "up to date" in run_tool(a, "dvc", "status", "--with-deps", TRAIN).stdout
    again = run_tool(a, "dvc", "repro", TRAIN)
    assert _ran(again.stdout) == [], again.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(pid: int) -> set[str]:
    """The addresses the process tree `pid` listens on (TCP)."""
    import psutil

    parent = psutil.Process(pid)
    listening = set()
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        listening |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
    return listening


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[dict]:
    """`mlflow server` on 127.0.0.1 (free port, sqlite backend, artifacts proxied into tmp), stopped after."""
    port = _free_port()
    db, artifacts = tmp_path / "server.db", tmp_path / "server-artifacts"
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(artifacts),
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # about 7 s on an idle machine
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow server not ready in 120 s"
            time.sleep(0.5)
        yield {"url": url, "db": db, "artifacts": artifacts, "pid": server.pid}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def test_stage_logs_to_an_mlflow_tracking_server(mlflow_server: dict, tmp_path: Path, tiny_model_dir) -> None:
    assert _listening(mlflow_server["pid"]) == {"127.0.0.1"}
    root = tmp_path / "project"
    params_file = make_project(root, tiny_model_dir, methods=[METHOD])
    params = load_params(params_file, profile="")
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    key = f"server-test-{uuid.uuid4().hex[:8]}"
    # The stage process is pointed at the server by the environment alone.
    run_tool(
        root,
        "env",
        f"MLFLOW_TRACKING_URI={mlflow_server['url']}",
        f"ADAMIX_PIPELINE_RUN={key}",
        *("python", "-m", "flows.stages.train", "--params", str(params_file)),
        *("--task", TASK, "--method", METHOD, "--seed", str(SEED)),
    )

    client = MlflowClient(mlflow_server["url"])
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    assert experiment is not None, "the experiment is not on the server"
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`adamix.stage` = 'train'")
    assert run.info.status == "FINISHED"
    assert run.data.tags[tracking.PIPELINE_TAG] == key and run.data.tags["adamix.method"] == METHOD
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    (parent,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`adamix.kind` = 'pipeline'"
    )
    assert run.data.tags[tracking.PARENT_TAG] == parent.info.run_id
    # The artifact went through the server into its artifact store.
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["history.json"]
    assert [p.name for p in mlflow_server["artifacts"].rglob("history.json")] == ["history.json"]
    # Nothing went to a local store: not the project's, not the test session's.
    assert not (root / "mlflow.db").exists()
    local = MlflowClient(tracking.tracking_uri())
    assert local.get_experiment_by_name(params["tracking"]["experiment"]) is None
