"""The optimizer and learning-rate schedule of a training run (the benchmarks build the same optimizer)."""

from __future__ import annotations

from typing import Any

import torch
from transformers.trainer_pt_utils import get_parameter_names

# The Hugging Face Trainer's rule, as the official AdaMix scripts train with it: no weight decay on biases and
# normalisation weights, by module type and by name. Not by tensor rank: a stacked expert bias (M, out) is 2-d.
_NO_DECAY_NAMES = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases (stacked expert biases too) and norm weights.

    Fused when every trainable parameter is on CUDA (one kernel for the whole update).
    """
    decayed = set(get_parameter_names(model, [torch.nn.LayerNorm], _NO_DECAY_NAMES))
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    trainable = [p for _, p in named]
    decay = [p for name, p in named if name in decayed]
    no_decay = [p for name, p in named if name not in decayed]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(p.is_cuda for p in trainable)
    return torch.optim.AdamW(groups, lr=lr, fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_ratio: float, total_steps: int) -> Any:
    """Linear warmup over the first `warmup_ratio` of the steps, then linear decay to zero."""
    from transformers import get_linear_schedule_with_warmup  # lazy: importing the stage stays light

    return get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
