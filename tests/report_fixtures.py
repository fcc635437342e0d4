"""Synthetic result files for the report tests, shaped as flows.evaluate writes them (model, modes, step_loss)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from flows.config.schema import DEFAULTS
from flows.metrics import pack_values

SEEDS = [13, 21]
# AdaMix runs are also scored in random and fixed routing, this much lower than merged.
MODE_DROP = {"merge": 0.0, "random": 0.05, "fixed": 0.10}


def make_result(
    task: str,
    method: str,
    seed: int,
    score: float,
    *,
    metric: str = "accuracy",
    extra: dict[str, float] | None = None,
    model: str = "minilm",
    step_loss: list[float] | None = None,
    validation: float | None = None,
    examples: int | None = None,
) -> dict:
    """One result record: `score` is the primary metric in merge mode (AdaMix) or the single mode.

    Args:
        extra: other metrics, as offsets from `score` (e.g. {"f1": 0.01}).
        step_loss: per-step task loss; default a short decreasing curve.
        validation: the primary metric on validation at the last epoch; default none recorded.
        examples: with a number, the per-example fields evaluate writes for that many test examples (see
            `per_example`); without, the record is shaped as result files were before them.
    """

    def scores(value: float) -> dict[str, float]:
        return {metric: value, **{name: value + offset for name, offset in (extra or {}).items()}}

    adamix = method.startswith("adamix")
    modes = (
        {mode: scores(score - drop) for mode, drop in MODE_DROP.items()}
        if adamix
        else {"single": scores(score)}
    )
    steps = step_loss if step_loss is not None else [1.0 / (1 + step) for step in range(8)]
    last = {} if validation is None else {f"validation/{metric}": validation}
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "model": model,
        "primary_metric": metric,
        "metrics": [metric, *(extra or {})],
        "params": {"trainable": 310_000, "deployed": 22_700_000 if method == "full" else 310_000},
        "modes": modes,
        "history": [
            {"epoch": 1, "train_loss": sum(steps[:4]) / 4},
            {"epoch": 2, "train_loss": sum(steps[4:]) / 4, **last},
        ],
        "step_loss": steps,
    } | (per_example(modes, metric, examples) if examples else {})


def per_example(modes: dict[str, dict[str, float]], metric: str, examples: int) -> dict:
    """Gold labels alternating 0, 1 and, in each mode, predictions right on the first round(score x examples)
    examples and wrong on the rest (so a higher score is right on a superset); validation is half of each class."""
    labels = [i % 2 for i in range(examples)]

    def predicted(score: float) -> list[int]:
        right = round(score * examples)
        return [label if i < right else 1 - label for i, label in enumerate(labels)]

    return {
        "predictions": {mode: {"test": pack_values(predicted(m[metric]))} for mode, m in modes.items()},
        "labels": {"test": pack_values(labels)},
        "validation_majority": 0.5,
    }


def write_result(results: Path, record: dict) -> Path:
    """Write a record where the report looks for it: <results>/<task>/<method>/seed<seed>.json."""
    path = results / record["task"] / record["method"] / f"seed{record['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def write_scores(results: Path, scores: dict[tuple[str, str], tuple[float, ...]], **kwargs) -> None:
    """Write one record per seed of each (task, method) -> per-seed scores (in SEEDS order)."""
    for (task, method), values in scores.items():
        for seed, value in zip(SEEDS, values, strict=False):
            write_result(results, make_result(task, method, seed, value, **kwargs))


def report_params(**top) -> dict:
    """Full default params with top-level keys replaced (tasks, methods, seeds, ablations, ...)."""
    params = copy.deepcopy(DEFAULTS)
    # Both adapter methods at `train.learning_rate`, as the tests set it (params.yaml gives the adapter its own).
    params["method_overrides"].pop("adapter", None)
    params["seeds"] = list(SEEDS)
    params.update(copy.deepcopy(top))
    return params


RT = "rotten_tomatoes"
# The main grid of the report tests: AdaMix Adapter, LoRA and full fine-tuning on two tasks, two seeds.
MAIN_SCORES = {
    (RT, "adamix_adapter"): (0.80, 0.82),
    (RT, "lora"): (0.75, 0.79),
    (RT, "full"): (0.70, 0.70),
    ("mnli", "adamix_adapter"): (0.60, 0.64),
    ("mnli", "lora"): (0.66, 0.62),
    ("mnli", "full"): (0.50, 0.54),
}
# The default ablation grids on rotten_tomatoes; the method's own values (4 experts, bottleneck 16, share up,
# consistency 1.0) are the main AdaMix Adapter runs (0.80, 0.82).
ABLATION_SCORES = {
    "adamix_adapter.num_experts=1": (0.74, 0.76),
    "adamix_adapter.num_experts=2": (0.78, 0.80),
    "adamix_adapter.num_experts=8": (0.81, 0.83),
    "adamix_adapter.num_experts=16": (0.77, 0.79),
    "adamix_adapter.bottleneck=8": (0.79, 0.81),
    "adamix_adapter.bottleneck=32": (0.80, 0.82),
    "adamix_adapter.bottleneck=48": (0.80, 0.82),
    "adamix_adapter.bottleneck=64": (0.81, 0.81),
    "adamix_adapter.share=down": (0.80, 0.82),
    "adamix_adapter.share=none": (0.70, 0.71),
    "adamix_adapter.consistency=0.0": (0.82, 0.84),
}
STEPS = 40


def sharing_loss(method: str, seed: int) -> list[float]:
    """Per-step loss: without sharing it falls half as fast."""
    rate = 0.5 if method.endswith("share=none") else 1.0
    return [1.0 / (1 + rate * step) + seed / 10_000 for step in range(STEPS)]


def write_ablation_project(results: Path) -> dict:
    """Main and ablation results (the default grids on rotten_tomatoes) and the params that report them."""
    for (task, method), values in MAIN_SCORES.items():
        for seed, value in zip(SEEDS, values, strict=True):
            write_result(
                results, make_result(task, method, seed, value, step_loss=sharing_loss(method, seed))
            )
    for method, values in ABLATION_SCORES.items():
        for seed, value in zip(SEEDS, values, strict=True):
            write_result(results, make_result(RT, method, seed, value, step_loss=sharing_loss(method, seed)))
    params = report_params(tasks=[RT, "mnli"], methods=["adamix_adapter", "lora", "full"])
    params["ablations"]["tasks"] = [RT]
    return params
