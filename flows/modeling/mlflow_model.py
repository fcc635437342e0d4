"""The deployed model of an evaluate run as an MLflow model: built, saved as a pyfunc, logged and registered.

The logged model is exactly what is deployed: LoRA methods (AdaMix LoRA after averaging its experts, PEFT
LoRA) folded into the base weights (`merge_and_unload`), full fine-tuning as trained; the bottleneck-adapter
methods keep their merged adapter beside the base (an adapter cannot fold into a weight). Weights are
safetensors; the pyfunc is MLflow's "model from code" (flows/modeling/served_model.py for a classification
task, served_generator.py for a generation task, is copied into the model and run on load), so nothing is
pickled. Its signature and input example come from the task's meta and its first validation example; a
generator also carries the run's prompt format and decoding (params `generation`), which a request may
override. The model is registered under ``tracking.registered_model`` with the version alias
``tracking.model_alias``, so ``mlflow models serve -m models:/<name>@<alias>`` answers predictions.

Only the runs ``tracking.log_models`` (methods) and ``tracking.log_model_seed`` pick are logged: one model is
the size of the base model (90 MB for MiniLM-L6), too much for every run of the grid.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import adamix

from .. import mlflow_store as store
from ..data import load_split
from .base import ModelError, pretrained_tokenizer, prompt_mode
from .generation import GENERATION_KIND, Decoding
from .models import Method, load_run_model

SERVED_MODEL_CODE = Path(__file__).with_name("served_model.py")
SERVED_GENERATOR_CODE = Path(__file__).with_name("served_generator.py")
ARTIFACT_PATH = "model"  # where the MLflow model sits in the evaluate run's artifacts
# the decoding settings served_generator.py takes from the model config and from a request's params
DECODING_KEYS = ("num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens")


def model_target(params: Mapping[str, Any], task: str, method: str, seed: int) -> tuple[str, str] | None:
    """The registered model name and alias of this run's model, or None when this run logs no model.

    Args:
        params: the full validated params (``tracking`` and ``seeds``).
        task, method, seed: the evaluate run.

    Returns:
        (name, alias), both formatted from their templates, or None.
    """
    section = params["tracking"]
    if method not in section["log_models"]:
        return None
    wanted = section["log_model_seed"]
    if seed != (params["seeds"][0] if wanted is None else wanted):
        return None
    fields = {"task": task, "method": method, "seed": seed}
    name = section["registered_model"].format(**fields).replace("/", "-").replace(":", "-")
    return name, section["model_alias"].format(**fields)


def skip_reason(run: Mapping[str, Any], meta: Mapping[str, Any]) -> str | None:
    """Why this run's model cannot be logged as an MLflow model (None when it can)."""
    if prompt_mode(run):
        return "prompt-based runs (fewshot.prompt) have no MLflow model yet (the pyfunc needs a task head)"
    return None


def build_deployed_model(
    run: dict, spec: Method, meta: Mapping[str, Any], artifact_dir: Path, out_dir: Path
) -> dict[str, str]:
    """Write the deployed model under `out_dir`: ``model/`` (transformers folder + tokenizer), for adapter
    methods also ``adamix/`` (the merged AdaMix artifact).

    Args:
        run: the run's resolved params.
        spec: its method.
        meta: the prepared task's meta.
        artifact_dir: the run's deployable artifact (merged/... for merged AdaMix runs, else runs/...).
        out_dir: an empty folder.

    Returns:
        The pyfunc's artifacts: name -> local path.

    Raises:
        ModelError: a prompt-based run (see `skip_reason`), or an artifact that cannot be loaded.
    """
    reason = skip_reason(run, meta)
    if reason:
        raise ModelError(f"cannot log an MLflow model: {reason}")
    model = load_run_model(run, spec, meta, artifact_dir)
    artifacts = {"model": str(out_dir / "model")}
    if spec.kind == "adamix":
        adamix.merge_experts(model)  # idempotent: a merged artifact stays as it is
        if model.adamix_config.method == "lora":
            model = adamix.merge_and_unload(model)
        else:
            adamix.save_adamix(model, out_dir / "adamix")
            artifacts["adamix"] = str(out_dir / "adamix")
            model = adamix.unload(model)  # the base (and trained head) under the adapter
    elif spec.kind == "peft_lora":
        model = model.merge_and_unload()
    names = list(meta.get("label_names") or [])
    if names and not meta.get("is_regression"):
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {name: i for i, name in enumerate(names)}
    model.save_pretrained(out_dir / "model", safe_serialization=True)
    pretrained_tokenizer(run).save_pretrained(out_dir / "model")
    return artifacts


def signature(meta: Mapping[str, Any], decoding: Mapping[str, Any] | None = None):
    """The pyfunc's signature. A classifier: ``text`` (and ``text_pair``) in; label, label_id, score and
    probabilities out. A generator: ``source`` in, ``text`` out, and the decoding settings as request params
    (defaults: `decoding`, the run's own)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import Array

    if meta.get("kind") == GENERATION_KIND:
        kinds = {int: DataType.long, float: DataType.double}
        specs = [ParamSpec(k, kinds[type(v)], v) for k, v in (decoding or {}).items()]
        return ModelSignature(
            inputs=Schema([ColSpec(DataType.string, "source")]),
            outputs=Schema([ColSpec(DataType.string, "text")]),
            params=ParamSchema(specs) if specs else None,
        )
    inputs = [ColSpec(DataType.string, "text")]
    if meta.get("text_pair"):
        inputs.append(ColSpec(DataType.string, "text_pair"))
    if meta.get("is_regression"):
        outputs = [ColSpec(DataType.double, "score")]
    else:
        outputs = [
            ColSpec(DataType.string, "label"),
            ColSpec(DataType.long, "label_id"),
            ColSpec(DataType.double, "score"),
            ColSpec(Array(DataType.double), "probabilities"),
        ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example(meta: Mapping[str, Any], example: Mapping[str, Any]):
    """A one-row DataFrame of the pyfunc's input from one normalised example (text_a, text_b)."""
    import pandas as pd

    if meta.get("kind") == GENERATION_KIND:
        return pd.DataFrame([{"source": example["text_a"]}])
    row = {"text": example["text_a"]}
    if meta.get("text_pair"):
        row["text_pair"] = example.get("text_b") or ""
    return pd.DataFrame([row])


def _requirements() -> list[str]:
    """Pinned to this environment (given explicitly: MLflow's inference loads the model in a subprocess)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in _REQUIRED]


_REQUIRED = ("mlflow", "torch", "transformers", "safetensors", "tokenizers", "pandas")


def save_pyfunc(
    run: dict,
    spec: Method,
    meta: Mapping[str, Any],
    artifact_dir: Path,
    example: Mapping[str, Any],
    path: Path,
) -> None:
    """Save the deployed model of a run as an MLflow pyfunc model at `path` (a new folder)."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix="adamix-deploy-") as tmp:
        artifacts = build_deployed_model(run, spec, meta, artifact_dir, Path(tmp))
        code = []
        if "adamix" in artifacts:  # the library travels with the model: loading needs no project install
            shutil.copytree(
                Path(adamix.__file__).parent,
                Path(tmp) / "code" / "adamix",
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            code = [str(Path(tmp) / "code" / "adamix")]
        config: dict[str, Any] = {
            "max_length": run["train"]["max_length"],
            "batch_size": run["train"]["eval_batch_size"],
        }
        decoding = None
        if meta.get("kind") == GENERATION_KIND:
            decoding = Decoding.from_params(run).generate_kwargs()
            decoding = {k: decoding[k] for k in DECODING_KEYS}
            config.update(separator=run["generation"]["separator"], **decoding)
        else:
            config.update(
                text_pair=bool(meta.get("text_pair")),
                is_regression=bool(meta.get("is_regression")),
                label_names=list(meta.get("label_names") or []),
            )
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(SERVED_GENERATOR_CODE if decoding else SERVED_MODEL_CODE),
            artifacts=artifacts,
            code_paths=code or None,
            signature=signature(meta, decoding),
            input_example=input_example(meta, example),
            model_config=config,
            pip_requirements=_requirements(),
        )


def log_deployed_model(
    mlrun: Any,
    target: tuple[str, str],
    run: dict,
    spec: Method,
    meta: Mapping[str, Any],
    artifact_dir: Path,
    split_dir: Path,
) -> str | None:
    """Log the deployed model into the evaluate run's artifacts (``model/``) and register it.

    A run whose model has no MLflow form yet (`skip_reason`: prompt-based) is skipped with a
    warning on stderr.

    Args:
        mlrun: the active flows.tracking.StageRun of the evaluate call.
        target: (registered model name, alias), from `model_target`.
        run, spec, meta, artifact_dir: as for `build_deployed_model`.
        split_dir: the run's data split (its first validation example is the input example).

    Returns:
        The new model version (the alias now points at it), or None when skipped.
    """
    reason = skip_reason(run, meta)
    if reason:
        print(f"warning: {mlrun.name}: no MLflow model logged: {reason}", file=sys.stderr)
        return None
    examples = load_split(split_dir, "validation") or load_split(split_dir, "test")
    with tempfile.TemporaryDirectory(prefix="adamix-mlflow-model-") as tmp:
        save_pyfunc(run, spec, meta, artifact_dir, examples[0], Path(tmp) / ARTIFACT_PATH)
        mlrun.log_artifacts(Path(tmp) / ARTIFACT_PATH, ARTIFACT_PATH)
    name, alias = target
    kind = "text generator" if meta.get("kind") == GENERATION_KIND else "text classifier"
    version = register(name, alias, f"runs:/{mlrun.run_id}/{ARTIFACT_PATH}", mlrun.run_id, kind)
    mlrun.set_tags({"registered_model": name, "registered_model_version": version, "model_alias": alias})
    return version


def register(name: str, alias: str, source: str, run_id: str, kind: str = "text classifier") -> str:
    """Register `source` as a new version of model `name` (created if missing) and point `alias` at it."""
    from mlflow.exceptions import MlflowException

    client = store.client()
    try:
        client.create_registered_model(name, description=f"AdaMix-Repro: a deployed {kind}")
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":  # another run created it first: fine
            raise
    version = client.create_model_version(name, source, run_id=run_id).version
    client.set_registered_model_alias(name, alias, version)
    return str(version)
