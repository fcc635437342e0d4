"""The `evaluate` stage: score a trained run on the test split(s) in every requested inference mode."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
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
from ..modeling.models import Method, cap_max_length, load_run_model, load_tokenizer, method_spec


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
    split = paths.split_dir(task, seed, root)
    meta = read_meta(split)
    counts = json.loads((paths.merged_dir(task, method, seed, root) / "params.json").read_text())
    target = _Target(task, method, seed, root, run, method_spec(method, run)[0], meta, split, counts)
    data = {name: load_split(split, name) for name in ["test", *meta.get("extra_test_splits", [])]}
    scorer = _Scorer(target, data)
    modes = _score_modes(target, scorer)
    result = _result(target, modes)
    if scorer.generation:  # the decoded outputs, for the report's readable files and samples
        result["outputs"] = scorer.outputs
        result["test_examples"] = [
            {"source": e["text_a"], "references": e.get("references") or [e["label"]]} for e in data["test"]
        ]
        result["unavailable"] = scorer.unavailable
    else:  # per-example predictions and gold labels, for paired bootstraps and McNemar tests over examples
        result.update(_per_example(scorer.predictions, data, split, meta))
    out = paths.result_path(task, method, seed, root)
    _write_json_atomic(out, result)
    if track:
        _track(params, target, modes, out)
    return result


@dataclass(frozen=True)
class _Target:
    """The run being evaluated: who it is, its params and method, its task's meta and its files."""

    task: str
    method: str
    seed: int
    root: Path | None
    run: dict
    spec: Method
    meta: dict
    split: Path
    counts: dict  # the merge stage's parameter counts (params.json): before and after merging

    @property
    def run_dir(self) -> Path:
        """The trained run's folder."""
        return paths.run_dir(self.task, self.method, self.seed, self.root)

    @property
    def merged_dir(self) -> Path:
        """The merge stage's folder (the merged artifact of AdaMix methods)."""
        return paths.merged_dir(self.task, self.method, self.seed, self.root)


class _Scorer:
    """Scores a model on every test split of a run, keeping what the result file holds beside the metrics:
    decoded outputs (generation) or packed predictions (classification), by mode and split."""

    def __init__(self, target: _Target, data: dict[str, list[dict]]) -> None:
        self.target, self.data = target, data
        self.device = pick_device(target.run["train"]["device"])
        self.tokenizer = load_tokenizer(target.run, target.meta)
        self.generation = is_generation(target.meta)
        self.outputs: dict[str, dict[str, list[str]]] = {}  # generation: mode -> split -> decoded texts
        self.predictions: dict[str, dict[str, str | list]] = {}  # classification: mode -> split -> packed
        self.unavailable: dict[str, str] = {}  # generation: metric -> why it could not run here

    def score(self, model: nn.Module, mode: str) -> dict[str, float]:
        """The metrics of `model` in `mode` on every test split ("<split>/<metric>" beyond the first)."""
        t, device, tokenizer = self.target, self.device, self.tokenizer
        cap_max_length(t.run, model)
        if self.generation:
            model = deployable(model, t.spec.kind)
        model.to(device)
        out: dict[str, float] = {}
        for name, examples in self.data.items():
            if self.generation:
                desc = f"{t.task}/{t.method}/{t.seed} {mode} {name}"
                metrics, texts = score_generation(model, examples, t.meta, tokenizer, t.run, device, desc)
                self.outputs.setdefault(mode, {})[name] = texts
                self.unavailable.update(metrics.pop("unavailable"))  # cannot run here (no Java): None
            else:
                metrics, values = predict_and_score(model, examples, t.meta, tokenizer, t.run, device)
                self.predictions.setdefault(mode, {})[name] = pack_values(values)
            for metric, value in metrics.items():
                out[metric if name == "test" else f"{name}/{metric}"] = value
        return out


def _score_modes(t: _Target, scorer: _Scorer) -> dict[str, dict[str, float]]:
    """The test metrics in each inference mode: AdaMix's configured modes, or "single" for other methods."""
    modes: dict[str, dict[str, float]] = {}
    if t.spec.has_mixture and base_method(t.method) != "adapter":  # AdaMix and its ablation variants
        for mode in t.run["evaluate"]["inference_modes"]:
            torch.manual_seed(t.seed)  # random routing at inference is reproducible
            if mode == "merge" and t.counts["merged"]:
                model = load_run_model(t.run, t.spec, t.meta, t.merged_dir)
            else:
                model = load_run_model(t.run, t.spec, t.meta, t.run_dir)
                adamix.set_inference_mode(model, mode)
            modes[mode] = scorer.score(model, mode)
    else:
        modes["single"] = scorer.score(load_run_model(t.run, t.spec, t.meta, t.run_dir), "single")
    return modes


def _result(t: _Target, modes: dict[str, dict[str, float]]) -> dict:
    """The result record's fields common to every task kind, with the run's training history."""
    history = json.loads((t.run_dir / "history.json").read_text())
    info = json.loads((t.run_dir / "run.json").read_text())
    return {
        "task": t.task,
        "method": t.method,
        "seed": t.seed,
        "model": t.run["model"]["name_or_path"],
        "primary_metric": t.meta["primary_metric"],
        "metrics": t.meta["metrics"],
        "params": {"trainable": t.counts["before"]["trainable"], "deployed": t.counts["after"]["deployed"]},
        "modes": modes,
        "history": history,
        "step_loss": info.get("step_loss", []),
        "learning_rate": info.get("learning_rate", t.run["train"]["learning_rate"]),
        "selection": info.get("selection", {"rule": "last", "epoch": len(history)}),
    }


def _track(params: dict, t: _Target, modes: dict[str, dict[str, float]], out: Path) -> None:
    """Log the evaluation to MLflow: metrics by mode, the result file, the merged artifact, and the deployed
    model for the chosen runs."""
    from ..modeling.mlflow_model import log_deployed_model, model_target
    from ..tracking import StageRun, run_tags

    tags = run_tags(t.task, t.method, t.seed, t.split)
    with StageRun(params, "evaluate", f"evaluate {t.task}/{t.method}/{t.seed}", t.run, tags=tags) as mlrun:
        for mode, metrics in modes.items():
            mlrun.log_metrics({f"{mode}/{k}": v for k, v in metrics.items() if v is not None})
        mlrun.log_artifact(out)
        # The deployable artifact: merged experts for AdaMix (a few hundred KB); params.json for the rest.
        mlrun.log_artifacts(t.merged_dir, "merged")
        target = model_target(
            params, t.task, t.method, t.seed
        )  # the deployed model, for the chosen runs only
        if target:
            deployed = t.merged_dir if t.counts["merged"] else t.run_dir
            log_deployed_model(mlrun, target, t.run, t.spec, t.meta, deployed, t.split)


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
