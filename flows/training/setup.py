"""Everything a training run is built from, built once before the loop: model, optimizer, schedule, data.

`Setup` is what the loop reads and never reassigns (the model and optimizer change in place, as torch objects
do); what the loop changes between steps is its `TrainState` (flows.training.state).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import adamix

from ..modeling.base import autocast_dtype, pick_device
from ..modeling.batching import text_length
from ..modeling.generation import task_objective
from ..modeling.models import Method, build_model, cap_max_length, load_tokenizer, parameter_counts
from . import guards
from .distributed import DataParallel
from .optim import build_optimizer, build_scheduler


def set_seed(seed: int) -> None:
    """Seed every generator a run uses (Python, torch CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Setup:
    """One run's model, optimizer, schedule, data and settings, as the loop uses them."""

    name: str  # "task/method/seed<seed>", for messages
    bar: str  # "task/method/<seed>", the progress bars' prefix
    run: dict[str, Any]  # the run's params (`train` is `cfg`)
    meta: dict[str, Any]  # the task's meta.json
    spec: Method
    model: nn.Module  # what is validated and saved
    forward: nn.Module  # what trains: the model, data-parallel and/or compiled
    optimizer: torch.optim.Optimizer
    scheduler: Any
    dp: DataParallel
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype; None: no autocast
    tokenizer: Any
    train_data: list[dict]
    val_data: list[dict]
    lengths: list[int]  # text length of each training example, for length-grouped batches
    steps_per_epoch: int
    trainable: list[nn.Parameter]
    # Classification: cross-entropy (MSE for regression) on the head. Generation: token cross-entropy on the
    # target tokens, and the consistency term on those positions only (the mask, from the labels).
    task_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    consistency_mask: Callable[[torch.Tensor], torch.Tensor] | None
    counts: dict[str, int]  # parameter counts
    # Expert diagnostics for our library's methods: do the experts diverge, how far the merged module travels.
    start_merged: Any
    check_every: int  # steps between reads of the non-finite flag

    @property
    def cfg(self) -> dict[str, Any]:
        """The run's `train` params."""
        return self.run["train"]

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run."""
        return self.steps_per_epoch * self.cfg["epochs"]


def build_setup(
    run: dict[str, Any],
    method: str,
    meta: dict[str, Any],
    data: tuple[list[dict], list[dict]],
    dp: DataParallel,
    *,
    task: str,
    seed: int,
) -> Setup:
    """Build the model of `method` with its optimizer and schedule, for `data` (training, validation examples).

    Call `set_seed` first: the new weights (adapters, head) are drawn here."""
    cfg = run["train"]
    device = pick_device(cfg["device"])
    tokenizer = load_tokenizer(run, meta)  # a PromptEncoder with fewshot.prompt
    model, spec = build_model(run, method, meta)
    cap_max_length(run, model)  # cfg is run["train"]: training and validation use the capped length
    model.to(device)
    counts = parameter_counts(model, spec)
    forward = torch.compile(dp.wrap(model)) if cfg["compile"] else dp.wrap(model)
    steps_per_epoch = math.ceil(len(data[0]) / cfg["batch_size"])
    optimizer = build_optimizer(model, cfg["learning_rate"], cfg["weight_decay"])
    scheduler = build_scheduler(optimizer, cfg["warmup_ratio"], steps_per_epoch * cfg["epochs"])
    task_loss, consistency_mask = task_objective(meta, cfg["label_smoothing"])
    return Setup(
        name=f"{task}/{method}/seed{seed}",
        bar=f"{task}/{method}/{seed}",
        run=run,
        meta=meta,
        spec=spec,
        model=model,
        forward=forward,
        optimizer=optimizer,
        scheduler=scheduler,
        dp=dp,
        device=device,
        dtype=autocast_dtype(cfg["precision"], device),
        tokenizer=tokenizer,
        train_data=data[0],
        val_data=data[1],
        lengths=[text_length(e) for e in data[0]],
        steps_per_epoch=steps_per_epoch,
        trainable=[p for p in model.parameters() if p.requires_grad],
        task_loss=task_loss,
        consistency_mask=consistency_mask,
        counts=counts,
        start_merged=adamix.snapshot_merged(model) if spec.has_mixture else None,
        check_every=guards.check_every(device),
    )
