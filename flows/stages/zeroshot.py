"""The zero-shot floor of prompt-based fine-tuning: the task's prompt read by the untrained model, no training.

LM-BFF reports it beside the fine-tuned rows ("prompt-based zero-shot"): what the pretrained head says about the
label words before a single step. It is an evaluation of the untrained base model (`load_base_model` with
`fewshot.prompt`), not a method of the grid: it has no artifact, no learning rate and nothing to merge, so it
would only add empty stages to every table. One JSON per (task, seed) is written to
``zeroshot/<task>/seed<seed>.json``, outside the runs' ``results/`` folder the report reads; the seed only picks
the K-shot validation split it is also scored on (the test split is the same for every seed).

    python -m flows.stages.zeroshot --task rotten_tomatoes --seed 13
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import paths
from ..data import load_split, read_meta
from ..modeling.base import ModelError, pick_device, prompt_mode
from ..modeling.inference import predict_and_score
from ..modeling.models import cap_max_length, load_base_model, load_tokenizer


def zeroshot_path(task: str, seed: int, root: Path | None = None) -> Path:
    """Where the zero-shot scores of one (task, seed) are written."""
    return (
        (root or paths.project_root()) / "zeroshot" / paths.check_name("task", task) / f"seed{int(seed)}.json"
    )


def zero_shot_run(params: dict, task: str, seed: int, *, root: Path | None = None) -> dict:
    """Score the untrained prompt model on one seed's validation and test splits, and write the scores.

    Args:
        params: validated parameters with `fewshot.prompt` true (`train.max_length`, `eval_batch_size`,
            `device` and `precision` are read).
        task: task name; its split folder for `seed` must exist (the `fewshot` stage).
        seed: the K-shot split's seed.
        root: project root (default: `paths.project_root()`).

    Returns:
        The record written: task, seed, model, and `scores` (split -> metric -> value).

    Raises:
        ModelError: `fewshot.prompt` is false (without a prompt an untrained head is random).
    """
    if not prompt_mode(params):
        raise ModelError("the zero-shot floor reads the task's prompt: set fewshot.prompt: true")
    run = json.loads(json.dumps(params))  # cap_max_length writes into the params it is given
    split = paths.split_dir(task, seed, root)
    meta = read_meta(split)
    device = pick_device(run["train"]["device"])
    tokenizer = load_tokenizer(run, meta)
    model = load_base_model(run, meta)
    cap_max_length(run, model)
    model.to(device)
    scores = {}
    for name in ["validation", "test", *meta.get("extra_test_splits", [])]:
        examples = load_split(split, name)
        scores[name] = predict_and_score(model, examples, meta, tokenizer, run, device)[0]
    record = {"task": task, "seed": seed, "model": run["model"]["name_or_path"], "scores": scores}
    out = zeroshot_path(task, seed, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    print(f"[zeroshot] {task} seed {seed}: " + ", ".join(f"{k} {v}" for k, v in scores["test"].items()))
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m flows.stages.zeroshot --task TASK --seed SEED`."""
    from .common import run_stage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, args: zero_shot_run(params, args.task, args.seed))


if __name__ == "__main__":
    sys.exit(main())
