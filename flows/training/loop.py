"""The training loop: an epoch of optimizer steps, one step, and the epoch's record (validation, best epoch).

AdaMix runs two stochastic views of every batch (different random routes and dropout masks), takes the task
loss on the first view only and adds the weighted consistency term; the other methods run one forward.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

import adamix

from ..modeling.batching import encode, length_grouped_batches
from ..modeling.inference import score
from .checkpoint import Checkpoints
from .guards import require_finite
from .setup import Setup
from .state import BestEpoch, TrainState


def train_epoch(setup: Setup, state: TrainState, epoch: int, checkpoints: Checkpoints) -> None:
    """The optimizer steps of `epoch` not done yet (all of them, unless the run resumed in its middle)."""
    cfg, steps = setup.cfg, setup.steps_per_epoch
    first = state.step - (epoch - 1) * steps  # > 0: resuming mid-epoch, its sums restored with the state
    if first == 0:
        state.start_sums(setup.device)
    setup.model.train()
    order = torch.Generator()
    order.set_state(state.order_state)  # this epoch's batches, as they were drawn if it is being resumed
    batches = length_grouped_batches(setup.lengths, cfg["batch_size"], cfg["length_group_batches"], order)
    batches = setup.dp.shard(batches)  # data-parallel: this process's part of each batch
    bar = tqdm(
        range(first, steps), desc=f"{setup.bar} epoch {epoch}", leave=False, initial=first, total=steps
    )
    for step in bar:
        train_step(setup, state, epoch, step, batches[step])
        every = cfg["checkpoint_every"]
        if every and state.step % every == 0 and step + 1 < steps:  # the epoch's end saves its own
            require_finite(state.sums["finite"], setup.name, epoch, state.step, cfg)
            checkpoints.save(state)
    state.order_state = order.get_state()  # the next epoch draws its batches on from here


def train_step(setup: Setup, state: TrainState, epoch: int, step: int, batch: list[int]) -> None:
    """Optimizer step `step` of `epoch` (counted from 0 in the epoch), on the training examples `batch`."""
    cfg, device, sums = setup.cfg, setup.device, state.sums
    setup.dp.begin_step(step, state.step)
    inputs, labels = encode([setup.train_data[i] for i in batch], setup.tokenizer, cfg["max_length"])
    inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    labels = labels.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=setup.dtype, enabled=setup.dtype is not None):
        if setup.spec.consistency:  # AdaMix: two views, task loss on the first, + weight * consistency
            mask = setup.consistency_mask
            out = adamix.adamix_loss(
                setup.forward,
                inputs,
                labels,
                consistency_weight=cfg["consistency_weight"],
                batched=cfg["two_view"] == "batched",
                task_loss=setup.task_loss,
                mask=None if mask is None else mask(labels),
            )
            loss, task_loss, consistency = out.loss, out.task_loss, out.consistency
        else:  # one forward, the task loss alone
            task_loss = setup.task_loss(setup.forward(**inputs).logits, labels)
            loss, consistency = task_loss, None
    setup.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(setup.trainable, cfg["grad_clip"])
    sums["finite"] &= torch.isfinite(loss.detach()) & torch.isfinite(norm)
    done = state.step + 1  # optimizer steps done once this one is taken
    # Reading the flag syncs with the device: every step on the CPU, every few on an accelerator, and always
    # at the epoch's end, before its record is built.
    if done % setup.check_every == 0 or step + 1 == setup.steps_per_epoch:
        require_finite(sums["finite"], setup.name, epoch, done, cfg)
    setup.optimizer.step()
    setup.scheduler.step()
    state.step = done
    task_loss, consistency = setup.dp.global_mean(task_loss, consistency)  # the global batch's
    sums["task"] += task_loss.detach()
    state.step_loss[done - 1] = task_loss.detach()
    if consistency is not None:
        sums["consistency"] += consistency.detach()


def end_epoch(setup: Setup, state: TrainState, epoch: int) -> dict[str, Any]:
    """The epoch's history record (mean losses, validation metrics, expert diagnostics), appended to the
    history; with `train.select: best`, the epoch is kept if it validates best so far (ties: the earliest)."""
    cfg, steps = setup.cfg, setup.steps_per_epoch
    record: dict[str, Any] = {"epoch": epoch, "train_loss": state.sums["task"].item() / steps}
    if setup.spec.consistency:
        record["consistency_loss"] = state.sums["consistency"].item() / steps
    record["step"] = epoch * steps  # optimizer steps so far: the learning curves' x axis
    select_best, primary = cfg["select"] == "best", setup.meta["primary_metric"]
    if cfg["eval_every_epoch"] or select_best or epoch == cfg["epochs"]:
        # AdaMix validates in its configured inference mode (merge by default: current averaged weights)
        metrics = score(setup.model, setup.val_data, setup.meta, setup.tokenizer, setup.run, setup.device)
        record.update({f"validation/{k}": v for k, v in metrics.items()})
        if select_best and (state.best is None or metrics[primary] > state.best.score):
            state.best = BestEpoch.of(setup.model, metrics[primary], epoch)
    if setup.start_merged is not None:
        diagnostics = adamix.expert_diagnostics(setup.model, setup.start_merged)
        record.update({f"experts/{k}": v for k, v in diagnostics.items()})
    state.history.append(record)
    return record
