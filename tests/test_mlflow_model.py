"""The evaluate stage's MLflow model: the deployed model logged as a pyfunc, registered under a name and alias,
loaded back with the evaluation's own predictions, and (slow) served by `mlflow models serve`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from tiny_project import SEED, TASK, make_project

from flows import tracking
from flows.config import paths
from flows.config.grid import run_params
from flows.config.params import ParamsError, load_params, validate
from flows.data import load_split, read_meta
from flows.modeling import mlflow_model
from flows.modeling.base import ModelError
from flows.modeling.inference import predict
from flows.modeling.models import load_run_model, load_tokenizer, method_spec
from flows.stages import evaluate, fewshot, merge, prepare, train

LOGGED = [
    "adamix_adapter",
    "adamix_lora",
    "lora",
]  # every kind of deployed model: adapter, folded LoRA (ours, PEFT)
METHODS = [*LOGGED, "full"]  # full is trained but not listed in tracking.log_models


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    """Every method trained once on the tiny project; evaluated with tracking into the test store."""
    root = tmp_path_factory.mktemp("mlflow-model")
    name = f"tiny-{uuid.uuid4().hex[:8]}-{{method}}"
    tracking_section = {"log_models": LOGGED, "registered_model": name, "model_alias": "champion"}
    params = load_params(
        make_project(root, tiny_model_dir, methods=METHODS, tracking=tracking_section), profile=""
    )
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    results = {}
    for method in METHODS:
        train.train_run(params, TASK, method, SEED, root=root, track=False)
        merge.merge_run(params, TASK, method, SEED, root=root)
        results[method] = evaluate.evaluate_run(params, TASK, method, SEED, root=root, track=True)
    return {"root": root, "params": params, "results": results}


def _target(project: dict, method: str) -> tuple[str, str]:
    target = mlflow_model.model_target(project["params"], TASK, method, SEED)
    assert target is not None
    return target


def _evaluate_run(project: dict, method: str):
    client = MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment_by_name(project["params"]["tracking"]["experiment"]).experiment_id
    (found,) = client.search_runs(
        [experiment],
        filter_string=f"tags.`adamix.stage` = 'evaluate' and tags.`adamix.method` = '{method}'",
    )
    return client, found


def _own_predictions(project: dict, method: str, examples: list[dict]) -> list:
    """What the evaluate stage predicts: the deployed artifact, through flows.modeling.inference."""
    root, params = project["root"], project["params"]
    run = run_params(params, method)
    spec, _ = method_spec(method, run)
    meta = read_meta(paths.split_dir(TASK, SEED, root))
    merged = json.loads((paths.merged_dir(TASK, method, SEED, root) / "params.json").read_text())["merged"]
    artifact = (paths.merged_dir if merged else paths.run_dir)(TASK, method, SEED, root)
    model = load_run_model(run, spec, meta, artifact)
    ids = predict(model, examples, load_tokenizer(run, meta), run, torch.device("cpu"))
    return [meta["label_names"][i] for i in ids]


@pytest.mark.parametrize("method", LOGGED)
def test_the_registered_model_predicts_what_the_evaluation_does(project: dict, method: str) -> None:
    name, alias = _target(project, method)
    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    examples = load_split(paths.split_dir(TASK, SEED, project["root"]), "test")
    out = model.predict(pd.DataFrame({"text": [e["text_a"] for e in examples]}))
    assert list(out["label"]) == _own_predictions(project, method, examples)
    meta = read_meta(paths.split_dir(TASK, SEED, project["root"]))
    accuracy = sum(
        meta["label_names"][e["label"]] == label for e, label in zip(examples, out["label"], strict=True)
    ) / len(examples)
    mode = "merge" if method.startswith("adamix") else "single"
    assert accuracy == pytest.approx(project["results"][method]["modes"][mode]["accuracy"])
    assert out["probabilities"].map(sum).tolist() == pytest.approx([1.0] * len(examples))
    assert (out["score"] == out["probabilities"].map(max)).all()


@pytest.mark.parametrize("method", LOGGED)
def test_the_registry_has_the_name_and_alias_of_the_evaluate_run(project: dict, method: str) -> None:
    name, alias = _target(project, method)
    client, run = _evaluate_run(project, method)
    version = client.get_model_version_by_alias(name, alias)
    assert version.run_id == run.info.run_id
    assert run.data.tags["adamix.registered_model"] == name
    assert run.data.tags["adamix.registered_model_version"] == str(version.version)
    info = mlflow.models.get_model_info(f"models:/{name}@{alias}")
    assert info.signature.inputs.input_names() == ["text"]
    assert "label" in info.signature.outputs.input_names()
    files = {f.path for f in client.list_artifacts(run.info.run_id, "model")}
    assert "model/MLmodel" in files and "model/served_model.py" in files
    weights = client.list_artifacts(run.info.run_id, "model/artifacts/model")
    assert any(f.path.endswith(".safetensors") for f in weights)
    assert not any(f.path.endswith((".bin", ".pkl", ".pt")) for f in weights)  # nothing to unpickle


def test_a_method_not_listed_logs_no_model(project: dict) -> None:
    assert mlflow_model.model_target(project["params"], TASK, "full", SEED) is None
    client, run = _evaluate_run(project, "full")
    assert client.list_artifacts(run.info.run_id, "model") == []
    assert "adamix.registered_model" not in run.data.tags


def test_only_the_chosen_seed_logs(project: dict) -> None:
    params = {**project["params"], "seeds": [7, SEED]}
    assert mlflow_model.model_target(params, TASK, "lora", SEED) is None  # the first seed (7) is logged
    chosen = {**params, "tracking": {**params["tracking"], "log_model_seed": SEED}}
    assert mlflow_model.model_target(chosen, TASK, "lora", SEED) is not None


def test_no_tracking_registers_nothing(project: dict) -> None:
    root, params = project["root"], project["params"]
    name = f"untracked-{uuid.uuid4().hex[:8]}"
    untracked = {**params, "tracking": {**params["tracking"], "registered_model": name}}
    evaluate.evaluate_run(untracked, TASK, "adamix_lora", SEED, root=root, track=False)
    assert MlflowClient(tracking.tracking_uri()).search_registered_models(f"name = '{name}'") == []


def test_prompt_runs_are_refused(project: dict, tmp_path: Path) -> None:
    run = run_params(project["params"], "adamix_lora")
    spec, _ = method_spec("adamix_lora", run)
    meta = read_meta(paths.split_dir(TASK, SEED, project["root"]))
    assert mlflow_model.skip_reason(run, meta) is None
    prompted = {**run, "fewshot": {**run["fewshot"], "prompt": True}}
    assert "prompt" in mlflow_model.skip_reason(prompted, meta)
    with pytest.raises(ModelError, match="prompt"):
        mlflow_model.build_deployed_model(prompted, spec, meta, tmp_path, tmp_path)


def test_signature_and_example_follow_the_task() -> None:
    pair = {"text_pair": True, "is_regression": True}
    assert mlflow_model.signature(pair).inputs.input_names() == ["text", "text_pair"]
    assert mlflow_model.signature(pair).outputs.input_names() == ["score"]
    example = mlflow_model.input_example(pair, {"text_a": "a", "text_b": "b", "label": 0.5})
    assert example.to_dict("records") == [{"text": "a", "text_pair": "b"}]
    single = mlflow_model.signature({"text_pair": False, "is_regression": False})
    assert single.outputs.input_names() == ["label", "label_id", "score", "probabilities"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model_alias", "latest"),
        ("model_alias", "v3"),
        ("model_alias", "a b"),
        ("registered_model", "{bogus}"),
    ],
)
def test_bad_names_are_refused(project: dict, key: str, value: str) -> None:
    bad = {**project["params"], "tracking": {**project["params"]["tracking"], key: value}}
    with pytest.raises(ParamsError, match=f"tracking.{key}"):
        validate(bad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_prediction(project: dict, tmp_path: Path) -> None:
    name, alias = _target(project, "adamix_adapter")  # the model that needs the library shipped as code
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@{alias}"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        command,
        env={  # the server runs `uvicorn` from PATH: the venv's tools first
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the uvicorn worker goes with it
    )
    body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [["the movie was very good fun"]]}})
    try:
        answer, deadline = None, time.monotonic() + 180
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        assert answer is not None, (
            "no answer from the server:\n" + (tmp_path / "serve.log").read_text()[-3000:]
        )
    finally:
        _stop(server)
        log.close()
    meta = read_meta(paths.split_dir(TASK, SEED, project["root"]))
    (row,) = answer["predictions"]
    assert row["label"] in meta["label_names"] and len(row["probabilities"]) == meta["num_labels"]
    examples = [{"text_a": "the movie was very good fun", "text_b": None, "label": 0}]
    assert row["label"] == _own_predictions(project, "adamix_adapter", examples)[0]


def _stop(server: subprocess.Popen) -> None:
    """End the server's process group (the server and its uvicorn worker), forcibly after 30 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:  # the group is gone already
            pass
        try:
            server.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue
