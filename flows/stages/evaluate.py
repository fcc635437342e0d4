"""The `evaluate` stage: score a trained run on the test split(s) in every requested inference mode."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch
from torch import nn

import adamix

from ..config import paths
from ..config.grid import base_method, run_params
from ..data import load_split, read_meta
from ..metrics import pack_values
from ..modeling.base import pick_device
from ..modeling.generation import is_generation
from ..modeling.inference import deployable, predict_and_score, score_generation
from ..modeling.models import cap_max_length, load_run_model, load_tokenizer, method_spec


def evaluate_run(
    params: dict, task: str, method: str, seed: int, *, root: Path | None = None, track: bool = True
) -> dict:
    """Evaluate one trained run on its test split(s) and write the result JSON the report reads.

    AdaMix methods are scored in every mode of `evaluate.inference_modes`: "merge" uses the merged artifact
    (exactly what is deployed), "random" and "fixed" the unmerged experts. Other methods have one mode, "single".

    Returns:
        The result record (also written to results/<task>/<method>/seed<seed>.json).
    """

    run = run_params(params, method)
    spec, _ = method_spec(method, run)
    split = paths.split_dir(task, seed, root)
    meta = read_meta(split)
    device = pick_device(run["train"]["device"])
    tokenizer = load_tokenizer(run, meta)
    test_splits = ["test", *meta.get("extra_test_splits", [])]
    data = {name: load_split(split, name) for name in test_splits}
    counts = json.loads((paths.merged_dir(task, method, seed, root) / "params.json").read_text())

    generation = is_generation(meta)
    outputs: dict[str, dict[str, list[str]]] = {}  # generation: mode -> split -> decoded texts
    predictions: dict[str, dict[str, str | list]] = {}  # classification: mode -> split -> packed predictions
    unavailable: dict[str, str] = {}  # generation: metric -> why it could not run here

    def score_all(model: nn.Module, mode: str) -> dict[str, float]:
        cap_max_length(run, model)
        if generation:
            model = deployable(model, spec.kind)
        model.to(device)
        out: dict[str, float] = {}
        for name, examples in data.items():
            if generation:
                desc = f"{task}/{method}/{seed} {mode} {name}"
                metrics, texts = score_generation(model, examples, meta, tokenizer, run, device, desc)
                outputs.setdefault(mode, {})[name] = texts
                unavailable.update(metrics.pop("unavailable"))  # metrics that cannot run here (no Java): None
            else:
                metrics, values = predict_and_score(model, examples, meta, tokenizer, run, device)
                predictions.setdefault(mode, {})[name] = pack_values(values)
            for metric, value in metrics.items():
                out[metric if name == "test" else f"{name}/{metric}"] = value
        return out

    modes: dict[str, dict[str, float]] = {}
    if spec.has_mixture and base_method(method) != "adapter":  # AdaMix and its ablation variants
        for mode in run["evaluate"]["inference_modes"]:
            torch.manual_seed(seed)  # random routing at inference is reproducible
            if mode == "merge" and counts["merged"]:
                model = load_run_model(run, spec, meta, paths.merged_dir(task, method, seed, root))
            else:
                model = load_run_model(run, spec, meta, paths.run_dir(task, method, seed, root))
                adamix.set_inference_mode(model, mode)
            modes[mode] = score_all(model, mode)
    else:
        model = load_run_model(run, spec, meta, paths.run_dir(task, method, seed, root))
        modes["single"] = score_all(model, "single")

    run_dir = paths.run_dir(task, method, seed, root)
    history = json.loads((run_dir / "history.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    result = {
        "task": task,
        "method": method,
        "seed": seed,
        "model": run["model"]["name_or_path"],
        "primary_metric": meta["primary_metric"],
        "metrics": meta["metrics"],
        "params": {"trainable": counts["before"]["trainable"], "deployed": counts["after"]["deployed"]},
        "modes": modes,
        "history": history,
        "step_loss": info.get("step_loss", []),
        "learning_rate": info.get("learning_rate", run["train"]["learning_rate"]),
        "selection": info.get("selection", {"rule": "last", "epoch": len(history)}),
    }
    if generation:  # the decoded outputs, for the report's readable files and samples
        result["outputs"] = outputs
        result["test_examples"] = [
            {"source": e["text_a"], "references": e.get("references") or [e["label"]]} for e in data["test"]
        ]
        result["unavailable"] = unavailable
    else:  # per-example predictions and gold labels, for paired bootstraps and McNemar tests over examples
        result.update(_per_example(predictions, data, split, meta))
    out = paths.result_path(task, method, seed, root)
    _write_json_atomic(out, result)
    if track:
        from ..modeling.mlflow_model import log_deployed_model, model_target
        from ..tracking import StageRun, run_tags

        tags = run_tags(task, method, seed, split)
        with StageRun(params, "evaluate", f"evaluate {task}/{method}/{seed}", run, tags=tags) as mlrun:
            for mode, metrics in modes.items():
                mlrun.log_metrics({f"{mode}/{k}": v for k, v in metrics.items() if v is not None})
            mlrun.log_artifact(out)
            # The deployable artifact: merged experts for AdaMix (a few hundred KB); params.json for the rest.
            mlrun.log_artifacts(paths.merged_dir(task, method, seed, root), "merged")
            target = model_target(params, task, method, seed)  # the deployed model, for the chosen runs only
            if target:
                deployed = paths.merged_dir if counts["merged"] else paths.run_dir
                log_deployed_model(mlrun, target, run, spec, meta, deployed(task, method, seed, root), split)
    return result


def _per_example(predictions: dict, data: dict[str, list[dict]], split: Path, meta: dict) -> dict:
    """The result file's per-example fields: predictions (mode -> split -> packed), gold labels (split ->
    packed) and, for classification, the share of the majority class in validation (the score of a model
    that always predicts it: the plateau a run must leave)."""
    fields = {
        "predictions": predictions,
        "labels": {name: pack_values([e["label"] for e in examples]) for name, examples in data.items()},
    }
    if not meta.get("is_regression"):
        counts = Counter(e["label"] for e in load_split(split, "validation"))
        fields["validation_majority"] = max(counts.values()) / sum(counts.values()) if counts else None
    return fields


def _write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    from .common import run_stage

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, a: evaluate_run(params, a.task, a.method, a.seed))


if __name__ == "__main__":
    sys.exit(main())
