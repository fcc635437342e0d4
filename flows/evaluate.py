"""The `evaluate` stage: score a trained run on the test split(s) in every requested inference mode."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

import adamix

from . import paths
from .data import load_split, read_meta
from .grid import base_method
from .metrics import compute_metrics
from .modeling import autocast_dtype, load_run_model, method_spec, pick_device
from .prompt import PromptEncoder


def text_length(example: dict) -> int:
    """Characters of an example's text(s): a free proxy of its token count, to batch similar lengths together."""
    return len(example["text_a"]) + len(example.get("text_b") or "")


def batches(
    examples: list[dict], tokenizer, max_length: int, batch_size: int
) -> Iterator[tuple[dict, torch.Tensor]]:
    """Tokenised batches (dynamic padding) and their labels, in order."""
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        yield encode(chunk, tokenizer, max_length)


def encode(chunk: list[dict], tokenizer, max_length: int) -> tuple[dict, torch.Tensor]:
    """Tokenise one batch of normalised examples (text_a, optional text_b, label)."""
    if isinstance(tokenizer, PromptEncoder):  # prompt-based: each example rendered in its template
        return tokenizer(chunk, max_length)
    pair = chunk[0].get("text_b") is not None
    inputs = tokenizer(
        [e["text_a"] for e in chunk],
        [e["text_b"] for e in chunk] if pair else None,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    label_type = torch.float32 if isinstance(chunk[0]["label"], float) else torch.long
    return dict(inputs), torch.tensor([e["label"] for e in chunk], dtype=label_type)


@torch.no_grad()
def predict(model: nn.Module, examples: list[dict], tokenizer, params: dict, device: torch.device) -> list:
    """Class ids (or regression values) for `examples`; the model is put in eval mode."""
    model.eval()
    train = params["train"]
    dtype = autocast_dtype(train["precision"], device)
    # Longest first, so that each batch pads to about its own length (random order pads ~2x on short texts);
    # predictions go back to the input order.
    order = sorted(range(len(examples)), key=lambda i: -text_length(examples[i]))
    ordered: list = []
    for inputs, _ in batches(
        [examples[i] for i in order], tokenizer, train["max_length"], train["eval_batch_size"]
    ):
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(**inputs).logits.float()
        values = logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1)
        ordered.extend(values.cpu().tolist())
    predictions: list = [None] * len(examples)
    for position, value in zip(order, ordered, strict=True):
        predictions[position] = value
    return predictions


def score(
    model: nn.Module, examples: list[dict], meta: dict, tokenizer, params: dict, device
) -> dict[str, float]:
    """The task's metrics on `examples`."""
    predictions = predict(model, examples, tokenizer, params, device)
    return compute_metrics(meta["metrics"], predictions, [e["label"] for e in examples])


def evaluate_run(
    params: dict, task: str, method: str, seed: int, *, root: Path | None = None, track: bool = True
) -> dict:
    """Evaluate one trained run on its test split(s) and write the result JSON the report reads.

    AdaMix methods are scored in every mode of `evaluate.inference_modes`: "merge" uses the merged artifact
    (exactly what is deployed), "random" and "fixed" the unmerged experts. Other methods have one mode, "single".

    Returns:
        The result record (also written to results/<task>/<method>/seed<seed>.json).
    """
    from .modeling import load_tokenizer
    from .params import run_params

    run = run_params(params, method)
    spec, _ = method_spec(method, run)
    split = paths.split_dir(task, seed, root)
    meta = read_meta(split)
    device = pick_device(run["train"]["device"])
    tokenizer = load_tokenizer(run, meta)
    test_splits = ["test", *meta.get("extra_test_splits", [])]
    data = {name: load_split(split, name) for name in test_splits}
    counts = json.loads((paths.merged_dir(task, method, seed, root) / "params.json").read_text())

    def score_all(model: nn.Module) -> dict[str, float]:
        model.to(device)
        out: dict[str, float] = {}
        for name, examples in data.items():
            for metric, value in score(model, examples, meta, tokenizer, run, device).items():
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
            modes[mode] = score_all(model)
    else:
        modes["single"] = score_all(load_run_model(run, spec, meta, paths.run_dir(task, method, seed, root)))

    run_dir = paths.run_dir(task, method, seed, root)
    history = json.loads((run_dir / "history.json").read_text())
    step_loss = json.loads((run_dir / "run.json").read_text()).get("step_loss", [])
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
        "step_loss": step_loss,
    }
    out = paths.result_path(task, method, seed, root)
    _write_json_atomic(out, result)
    if track:
        from .tracking import StageRun, run_tags

        tags = run_tags(task, method, seed, split)
        with StageRun(params, "evaluate", f"evaluate {task}/{method}/{seed}", run, tags=tags) as mlrun:
            for mode, metrics in modes.items():
                mlrun.log_metrics({f"{mode}/{k}": v for k, v in metrics.items()})
            mlrun.log_artifact(out)
            # The deployable artifact: merged experts for AdaMix (a few hundred KB); params.json for the rest.
            mlrun.log_artifacts(paths.merged_dir(task, method, seed, root), "merged")
    return result


def _write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    from .cli import run_stage

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, a: evaluate_run(params, a.task, a.method, a.seed))


if __name__ == "__main__":
    sys.exit(main())
