"""The MLflow model of a generation run: logged as a pyfunc text generator, registered, loaded back, and decoding
what the evaluation decoded (the same prompt, the same beam search), with the decoding as request params."""

from __future__ import annotations

import uuid

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from test_generation import TASK, tiny_params_for_generation, write_generation_task
from tiny_models import save_tiny_lm
from tiny_project import SEED

from flows import tracking
from flows.config import paths
from flows.data import load_split
from flows.modeling import mlflow_model
from flows.nlg_metrics import coco
from flows.stages.evaluate import evaluate_run
from flows.stages.merge import merge_run
from flows.stages.train import train_run

# every kind of deployed generator: LoRA folded into the weights (ours), the adapter beside the base (with the
# library shipped as code), PEFT LoRA folded
METHODS = ["adamix_lora", "adamix_adapter", "lora"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("mlflow-generation")
    from test_generation import WORDS

    lm_dir = save_tiny_lm(root / "lm", WORDS)
    write_generation_task(root)
    name = f"tiny-nlg-{uuid.uuid4().hex[:8]}-{{method}}"
    params = tiny_params_for_generation(
        root,
        lm_dir,
        methods=tuple(METHODS),
        train={"epochs": 1, "batch_size": 4, "max_length": 24, "learning_rate": 1e-2, "eval_batch_size": 8},
        generation={"num_beams": 3, "max_new_tokens": 6},
        evaluate={"inference_modes": ["merge"]},
        tracking={"log_models": METHODS, "registered_model": name, "model_alias": "champion"},
    )
    results = {}
    with pytest.MonkeyPatch.context() as patch:  # METEOR's Java run is not what this file tests

        def no_java(*_):
            raise coco.Unavailable("METEOR needs Java (switched off by the test)")

        patch.setattr(coco, "meteor", no_java)
        for method in METHODS:
            train_run(params, TASK, method, SEED, root=root, track=False)
            merge_run(params, TASK, method, SEED, root=root)
            results[method] = evaluate_run(params, TASK, method, SEED, root=root, track=True)
    return {"root": root, "params": params, "results": results}


def _model(project: dict, method: str):
    target = mlflow_model.model_target(project["params"], TASK, method, SEED)
    assert target is not None
    name, alias = target
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}"), name, alias


def _sources(project: dict) -> list[str]:
    return [e["text_a"] for e in load_split(paths.split_dir(TASK, SEED, project["root"]), "test")]


@pytest.mark.parametrize("method", METHODS)
def test_the_registered_generator_decodes_what_the_evaluation_did(project: dict, method: str) -> None:
    model, _, _ = _model(project, method)
    out = model.predict(pd.DataFrame({"source": _sources(project)}))
    mode = "merge" if method.startswith("adamix") else "single"
    assert list(out.columns) == ["text"] and any(out["text"])  # something was generated
    assert list(out["text"]) == project["results"][method]["outputs"][mode]["test"]


def test_the_signature_carries_the_runs_decoding_as_request_params(project: dict) -> None:
    _, name, alias = _model(project, "adamix_lora")
    info = mlflow.models.get_model_info(f"models:/{name}@{alias}")
    assert info.signature.inputs.input_names() == ["source"]
    assert info.signature.outputs.input_names() == ["text"]
    defaults = {p.name: p.default for p in info.signature.params.params}
    assert defaults == {"num_beams": 3, "length_penalty": 0.8, "no_repeat_ngram_size": 4, "max_new_tokens": 6}
    client = MlflowClient(tracking.tracking_uri())
    version = client.get_model_version_by_alias(name, alias)
    files = {f.path for f in client.list_artifacts(version.run_id, "model")}
    assert "model/served_generator.py" in files
    assert "generator" in client.get_registered_model(name).description


def test_a_request_may_override_the_decoding(project: dict) -> None:
    model, _, _ = _model(project, "adamix_lora")
    sources = _sources(project)
    short = model.predict(pd.DataFrame({"source": sources}), params={"max_new_tokens": 1, "num_beams": 1})
    full = model.predict(pd.DataFrame({"source": sources}))
    assert all(len(s.split()) <= 1 for s in short["text"])  # one new token is at most one word
    assert any(len(t.split()) > 1 for t in full["text"])


def test_an_input_without_a_source_column_is_refused(project: dict) -> None:
    model, _, _ = _model(project, "adamix_lora")
    with pytest.raises(MlflowException, match="source"):
        model.predict(pd.DataFrame({"text": ["name : vaults | food : french"]}))
