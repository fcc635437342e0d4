"""The `train` stage: one run of (task, method, seed), read top to bottom.

AdaMix runs two stochastic views of every batch (different random routes and dropout masks), takes the task
loss on the first view only and adds the weighted consistency term; the other methods run one forward.
Only adapters + head are saved (the whole model for full fine-tuning), with the per-epoch history.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers.trainer_pt_utils import get_parameter_names

import adamix

from ..atomic import ordinary_modes, staging_dir
from ..config import paths
from ..config.files import write_if_changed
from ..config.grid import lr_variants, run_params
from ..config.schema import ParamsError
from ..data import load_split, read_meta
from ..errors import InputError
from ..modeling import checkpoint, distributed
from ..modeling.base import autocast_dtype, pick_device
from ..modeling.batching import encode, length_grouped_batches, text_length
from ..modeling.generation import task_objective
from ..modeling.inference import score
from ..modeling.models import (
    build_model,
    cap_max_length,
    load_tokenizer,
    parameter_counts,
    save_run_model,
)


def set_seed(seed: int) -> None:
    """Seed every generator a run uses (Python, torch CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)


# The Hugging Face Trainer's rule, as the official AdaMix scripts train with it: no weight decay on biases and
# normalisation weights, by module type and by name. Not by tensor rank: a stacked expert bias (M, out) is 2-d.
_NO_DECAY_NAMES = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases (stacked expert biases too) and norm weights."""
    decayed = set(get_parameter_names(model, [torch.nn.LayerNorm], _NO_DECAY_NAMES))
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    trainable = [p for _, p in named]
    decay = [p for name, p in named if name in decayed]
    no_decay = [p for name, p in named if name not in decayed]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(p.is_cuda for p in trainable)
    return torch.optim.AdamW(groups, lr=lr, fused=fused or None)


def train_run(
    params: dict, task: str, method: str, seed: int, *, root: Path | None = None, track: bool = True
) -> dict:
    """Train one run and write runs/<task>/<method>/seed<seed>/ (replaced atomically when complete).

    With ``train.select: best`` the saved weights are those of the epoch with the best validation primary metric
    (scored in the run's inference mode), and ``selection`` says which epoch that was.

    Returns:
        Run info (run.json's content): parameter counts, epochs, final and selected validation metrics, and the
        wall-clock ``seconds`` (not in run.json: timings/<task>/<method>/seed<seed>.json has it).
    """
    from transformers import get_linear_schedule_with_warmup

    run = run_params(params, method)
    cfg = run["train"]
    if isinstance(cfg["learning_rate"], list):
        candidates = ", ".join(v.method for v in lr_variants(params, method))
        raise ParamsError(
            f"method {method!r} trains at several learning rates {cfg['learning_rate']}: train one of its "
            f"candidates ({candidates})"
        )
    split = paths.split_dir(task, seed, root)
    meta = read_meta(split)
    train_data, val_data = load_split(split, "train"), load_split(split, "validation")
    dp = distributed.start(cfg, seed, len(train_data))  # under torchrun: this process's part; else inactive

    set_seed(seed)
    device = pick_device(cfg["device"])
    dtype = autocast_dtype(cfg["precision"], device)
    tokenizer = load_tokenizer(run, meta)  # a PromptEncoder with fewshot.prompt
    model, spec = build_model(run, method, meta)
    cap_max_length(run, model)  # cfg is run["train"]: training and validation use the capped length
    model.to(device)
    counts = parameter_counts(model, spec)
    forward = torch.compile(dp.wrap(model)) if cfg["compile"] else dp.wrap(model)

    steps_per_epoch = math.ceil(len(train_data) / cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]
    optimizer = _optimizer(model, cfg["learning_rate"], cfg["weight_decay"])
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(cfg["warmup_ratio"] * total_steps), total_steps
    )
    order = torch.Generator().manual_seed(seed)
    lengths = [text_length(e) for e in train_data]
    trainable = [p for p in model.parameters() if p.requires_grad]
    # Classification: cross-entropy (MSE for regression) on the head. Generation: token cross-entropy on the
    # target tokens, and the consistency term on those positions only.
    task_loss_fn, consistency_mask = task_objective(meta, cfg["label_smoothing"])

    history: list[dict] = []
    epoch_seconds: list[float] = []  # seconds since the start, at the end of each epoch
    step_loss = torch.zeros(total_steps, device=device)  # task loss of every step: the training curve
    select_best, primary = cfg["select"] == "best", meta["primary_metric"]
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # (validation score, epoch, weights)
    # Expert diagnostics for our library's methods: do the experts diverge, how far the merged module travels.
    start_merged = adamix.snapshot_merged(model) if spec.has_mixture else None
    # A non-finite loss or gradient norm stops the run (nothing is written). On CPU every step is checked; on an
    # accelerator the flag stays on the device and is read every few steps, so the loop keeps running ahead.
    check_every = 1 if device.type == "cpu" else NONFINITE_CHECK_EVERY
    # Resume: a checkpoint beside the run (written every train.checkpoint_every steps and at each epoch end)
    # restores weights, optimizer, scheduler, RNGs, batch order and history; other params are refused.
    ckpt_dir = checkpoint.checkpoint_dir(paths.run_dir(task, method, seed, root))
    ckpt_id = checkpoint.fingerprint(run, task, method, seed, checkpoint.data_hash(split))
    resumed = checkpoint.load(ckpt_dir, model, optimizer, scheduler, ckpt_id, device)
    done = resumed.step if resumed else 0  # optimizer steps already taken
    if resumed:
        history, epoch_seconds, best = resumed.history, resumed.epoch_seconds, resumed.best
        step_loss = resumed.step_loss
        tqdm.write(f"[{task}/{method}/seed{seed}] resuming from {ckpt_dir} at step {done} of {total_steps}")
    started = time.perf_counter() - (epoch_seconds[-1] if epoch_seconds else 0.0)
    tracker_cm = (
        _tracker(params, run, task, method, seed, split, resumed.run_id if resumed else None)
        if track and dp.is_main
        else contextlib.nullcontext()
    )
    with tracker_cm as tracker:
        if tracker and not resumed:
            tracker.log_metrics({f"params/{k}": v for k, v in counts.items()})

        def save_checkpoint(
            global_step: int, order_state: torch.Tensor, sums: dict[str, torch.Tensor]
        ) -> None:
            if not dp.is_main:
                return
            state = checkpoint.TrainState(
                global_step,
                order_state,
                sums,
                step_loss,
                history,
                epoch_seconds,
                best,
                tracker and tracker.run_id,
            )
            checkpoint.save(ckpt_dir, state, model, optimizer, scheduler, ckpt_id)

        for epoch in range(done // steps_per_epoch + 1, cfg["epochs"] + 1):
            model.train()
            first_step = done - (epoch - 1) * steps_per_epoch if resumed else 0  # > 0: resuming mid-epoch
            if resumed and first_step >= 0:
                order.set_state(resumed.order_state)  # this epoch's batches, as they were drawn
            epoch_order = order.get_state()
            epoch_batches = length_grouped_batches(
                lengths, cfg["batch_size"], cfg["length_group_batches"], order
            )
            epoch_batches = dp.shard(epoch_batches)  # data-parallel: this process's part of each batch
            # Sums stay on the device: no host sync inside the loop, one per epoch.
            sums = {
                "task": torch.zeros((), device=device),
                "consistency": torch.zeros((), device=device),
                "finite": torch.ones((), dtype=torch.bool, device=device),
            }
            if resumed and first_step > 0:
                sums.update(resumed.sums)
            task_sum, consistency_sum, finite = sums["task"], sums["consistency"], sums["finite"]
            first_step = max(first_step, 0)
            bar = tqdm(
                range(first_step, steps_per_epoch),
                desc=f"{task}/{method}/{seed} epoch {epoch}",
                leave=False,
                initial=first_step,
                total=steps_per_epoch,
            )
            for step in bar:
                dp.begin_step(step, (epoch - 1) * steps_per_epoch + step)
                chunk = [train_data[i] for i in epoch_batches[step]]
                inputs, labels = encode(chunk, tokenizer, cfg["max_length"])
                inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
                labels = labels.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    if spec.consistency:
                        out = adamix.adamix_loss(
                            forward,
                            inputs,
                            labels,
                            consistency_weight=cfg["consistency_weight"],
                            batched=cfg["two_view"] == "batched",
                            task_loss=task_loss_fn,
                            mask=None if consistency_mask is None else consistency_mask(labels),
                        )
                        loss, consistency = out.loss, out.consistency
                        task_loss = out.task_loss
                    else:
                        task_loss = task_loss_fn(forward(**inputs).logits, labels)
                        loss, consistency = task_loss, None
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(trainable, cfg["grad_clip"])
                finite &= torch.isfinite(loss.detach()) & torch.isfinite(norm)
                global_step = (epoch - 1) * steps_per_epoch + step + 1
                if check_every == 1 or global_step % check_every == 0 or step + 1 == steps_per_epoch:
                    _require_finite(finite, f"{task}/{method}/seed{seed}", epoch, global_step, cfg)
                optimizer.step()
                scheduler.step()
                task_loss, consistency = dp.global_mean(task_loss, consistency)  # the global batch's
                task_sum += task_loss.detach()
                step_loss[(epoch - 1) * steps_per_epoch + step] = task_loss.detach()
                if consistency is not None:
                    consistency_sum += consistency.detach()
                every = cfg["checkpoint_every"]
                if every and global_step % every == 0 and step + 1 < steps_per_epoch:
                    _require_finite(finite, f"{task}/{method}/seed{seed}", epoch, global_step, cfg)
                    save_checkpoint(
                        global_step,
                        epoch_order,
                        {"task": task_sum, "consistency": consistency_sum, "finite": finite},
                    )
            record = {"epoch": epoch, "train_loss": task_sum.item() / steps_per_epoch}
            if spec.consistency:
                record["consistency_loss"] = consistency_sum.item() / steps_per_epoch
            record["step"] = epoch * steps_per_epoch  # optimizer steps so far: the learning curves' x axis
            if cfg["eval_every_epoch"] or select_best or epoch == cfg["epochs"]:
                # AdaMix validates in its configured inference mode (merge by default: current averaged weights)
                metrics = score(model, val_data, meta, tokenizer, run, device)
                record.update({f"validation/{k}": v for k, v in metrics.items()})
                if select_best and (best is None or metrics[primary] > best[0]):
                    best = (metrics[primary], epoch, _trainable_state(model))
            if start_merged is not None:
                diagnostics = adamix.expert_diagnostics(model, start_merged)
                record.update({f"experts/{k}": v for k, v in diagnostics.items()})
            history.append(record)
            # Wall-clock time goes to the log, MLflow and timings/, never into the run folder: DVC hashes that, and
            # a retrain with the same seed must give the same bytes.
            epoch_seconds.append(round(time.perf_counter() - started, 2))
            shown = {**record, "seconds": epoch_seconds[-1]}
            tqdm.write(
                f"[{task}/{method}/seed{seed}] " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
            )
            if tracker:
                tracker.log_metrics({k: v for k, v in shown.items() if k != "epoch"}, step=epoch)
            if epoch < cfg["epochs"]:  # each epoch end, except the last: the run folder follows at once
                save_checkpoint(epoch * steps_per_epoch, order.get_state(), {})

        if not dp.is_main:  # data-parallel: rank 0 alone writes the run
            return {"task": task, "method": method, "seed": seed, "rank": dp.rank}
        # `select: best` keeps the weights of the epoch with the best validation score (ties: the earliest), as
        # the official scripts' --load_best_model_at_end; test is scored once, on what is saved.
        kept = best[1] if best is not None else cfg["epochs"]
        if best is not None and kept != cfg["epochs"]:
            _load_trainable_state(model, best[2])
        info = {
            "task": task,
            "method": method,
            "seed": seed,
            "params": counts,
            "epochs": cfg["epochs"],
            "train_examples": len(train_data),
            "device": str(device),
            "final_validation": {k: v for k, v in history[-1].items() if k.startswith("validation/")},
            "selection": {
                "rule": cfg["select"],
                "epoch": kept,
                "metric": primary,
                "validation": {k: v for k, v in history[kept - 1].items() if k.startswith("validation/")},
            },
            "learning_rate": cfg["learning_rate"],
            "step_loss": [round(v, 5) for v in step_loss.tolist()],
        }
        out_dir = paths.run_dir(task, method, seed, root)
        _write_run(model, spec, out_dir, history, info)
        checkpoint.remove(ckpt_dir)  # the run is complete: nothing to resume
        seconds = round(time.perf_counter() - started, 2)
        write_if_changed(
            paths.timing_path(task, method, seed, root),
            json.dumps({"seconds": seconds, "epoch_seconds": epoch_seconds, "device": str(device)}) + "\n",
        )
        if tracker:
            tracker.log_metrics({"seconds_total": seconds})
            tracker.log_artifact(out_dir / "history.json")
    return {**info, "seconds": seconds}


NONFINITE_CHECK_EVERY = 16  # steps between reads of the non-finite flag on an accelerator (each read syncs)


class NonFiniteLossError(InputError):
    """Training produced a non-finite loss or gradient norm: a learning rate too large, or fp16 overflow."""


def _require_finite(finite: torch.Tensor, run: str, epoch: int, step: int, cfg: dict) -> None:
    """Raise NonFiniteLossError (the run writes nothing) unless every step so far had a finite loss and norm."""
    if bool(finite):
        return
    causes = [f"learning rate {cfg['learning_rate']} too large"]
    if cfg["precision"] == "fp16":
        causes.append("fp16 overflow (try precision: bf16 or fp32)")
    raise NonFiniteLossError(
        f"run {run}: non-finite loss or gradient norm at epoch {epoch}, by step {step}; nothing was saved. "
        f"Likely cause: {' or '.join(causes)}"
    )


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable parameters: what `select: best` keeps of its best epoch."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def _load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put kept trainable parameters back in place (in-place copies: the optimizer keeps its references)."""
    for name, p in model.named_parameters():
        if name in state:
            p.copy_(state[name])


def _write_run(model, spec, out_dir: Path, history: list[dict], info: dict) -> None:
    """Write the run into a staging folder, then swap it in: a crash never leaves a run that looks complete."""
    staging = staging_dir(out_dir)
    try:
        save_run_model(model.cpu(), spec, staging)
        (staging / "history.json").write_text(json.dumps(history, indent=2) + "\n")
        (staging / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        ordinary_modes(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _tracker(
    params: dict, run: dict, task: str, method: str, seed: int, split: Path, resume: str | None = None
):
    from ..tracking import StageRun, run_tags

    tags = run_tags(task, method, seed, split)
    return StageRun(params, "train", f"train {task}/{method}/{seed}", run, tags=tags, resume=resume)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    from .common import run_stage

    parser = argparse.ArgumentParser(description="Train one (task, method, seed) run.")
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, a: train_run(params, a.task, a.method, a.seed))


if __name__ == "__main__":
    sys.exit(main())
