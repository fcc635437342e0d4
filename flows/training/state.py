"""The training loop's mutable state: one TrainState per run, and the best epoch `train.select: best` keeps.

Everything the loop changes between two optimizer steps lives here, so a checkpoint is this object (plus the
model, optimizer and scheduler it trains) and resuming is building it once, at the start, from the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class BestEpoch:
    """The epoch with the best validation primary metric so far, with CPU copies of its trainable weights."""

    score: float
    epoch: int
    weights: dict[str, torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module, score: float, epoch: int) -> BestEpoch:
        """Keep `model`'s trainable parameters as they are now (copied to the CPU), scored `score`."""
        weights = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
        return cls(score, epoch, weights)

    @torch.no_grad()
    def restore(self, model: nn.Module) -> None:
        """Put the kept weights back (in-place copies: the optimizer keeps its references)."""
        for name, p in model.named_parameters():
            if name in self.weights:
                p.copy_(self.weights[name])


@dataclass
class TrainState:
    """The loop's state at an optimizer step boundary: `step` optimizer steps done."""

    step: int
    # The batch-order generator's state at the start of the epoch that holds the next step: an epoch draws its
    # batches from it, so a run resumed mid-epoch draws the same batches again.
    order_state: torch.Tensor
    step_loss: torch.Tensor  # the task loss of every step of the run (the training curve), on the device
    # The current epoch's running task and consistency sums and its non-finite flag, on the device: no host
    # sync inside the loop, one per epoch.
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch
    epoch_seconds: list[float] = field(default_factory=list)  # seconds since the start, at each epoch's end
    best: BestEpoch | None = None
    run_id: str | None = None  # the MLflow run, so a resumed run logs into the same one

    @classmethod
    def fresh(cls, seed: int, total_steps: int, device: torch.device) -> TrainState:
        """The state before the first step: nothing done, the batch order seeded from the run's seed."""
        order = torch.Generator().manual_seed(seed)
        return cls(0, order.get_state(), torch.zeros(total_steps, device=device))

    def start_sums(self, device: torch.device) -> None:
        """Zero the running sums (at the start of an epoch, unless resuming in its middle)."""
        self.sums = {
            "task": torch.zeros((), device=device),
            "consistency": torch.zeros((), device=device),
            "finite": torch.ones((), dtype=torch.bool, device=device),
        }
