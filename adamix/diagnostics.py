"""Expert diagnostics: do a mixture's experts diverge, and how far has the merged module travelled?

Two numbers a user can follow per epoch, for every routed projection (an `ExpertLinear` with more than one
expert) and every mixture:

- **expert spread**: the mean, over pairs of experts i < j, of ``||W_i - W_j|| / ((||W_i|| + ||W_j||) / 2)``, the
  weight and bias of an expert taken as one vector. 0 means the experts are identical; identically initialised
  experts start at 0 and move apart only as random routing trains them on different steps.
- **merged travel**: ``||theta - theta_0|| / ||theta_0||`` for the merged (expert-averaged) module of each mixture,
  every projection's weight and bias as one vector, against its value at `snapshot_merged` time. A single module
  (M = 1) gets the same number, so the distance AdaMix's merged module moved can be set beside a single adapter's.

Example:
    >>> start = snapshot_merged(model)  # doctest: +SKIP
    >>> ...train...                     # doctest: +SKIP
    >>> expert_diagnostics(model, start)  # doctest: +SKIP
    {'expert_spread': 0.41, 'expert_spread/adamix_down': 0.52, 'expert_spread/adamix_up': 0.30, 'merged_travel': 0.12}
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .layers import ExpertLinear
from .model import iter_adamix_layers


def _flat(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    parts = [weight.detach().float().flatten()]
    if bias is not None:
        parts.append(bias.detach().float().flatten())
    return torch.cat(parts)


def _merged_vector(layer: nn.Module) -> torch.Tensor:
    return torch.cat([_flat(*projection.merged_weights()) for projection in layer.expert_projections()])


@torch.no_grad()
def snapshot_merged(model: nn.Module) -> dict[str, torch.Tensor]:
    """The merged parameters of every mixture now (CPU copies), the reference for `merged_travel`.

    Args:
        model: a model adapted by `get_adamix_model`.

    Returns:
        ``{mixture name: flat vector of its merged weights and biases}``.
    """
    return {name: _merged_vector(layer).cpu() for name, layer in iter_adamix_layers(model)}


@torch.no_grad()
def expert_spread(projection: ExpertLinear) -> float:
    """Mean pairwise relative distance between the experts of one projection (0.0 for a stack of one)."""
    experts = [
        _flat(projection.weight[i], None if projection.bias is None else projection.bias[i])
        for i in range(projection.num_experts)
    ]
    distances = []
    for a, b in itertools.combinations(experts, 2):
        scale = (a.norm() + b.norm()) / 2
        distances.append(0.0 if scale == 0 else float((a - b).norm() / scale))
    return sum(distances) / len(distances) if distances else 0.0


@torch.no_grad()
def expert_diagnostics(model: nn.Module, initial: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Expert spread (overall and per projection kind) and, given `initial`, the merged module's travel.

    Args:
        model: a model adapted by `get_adamix_model`.
        initial: what `snapshot_merged` returned at the start of training; None leaves out `merged_travel`.

    Returns:
        ``expert_spread`` (mean over routed projections) and ``expert_spread/<projection>`` (e.g.
        ``adamix_down``), absent when no projection is routed (M = 1 or everything shared); ``merged_travel``
        (mean over mixtures whose initial merged module is not zero) when `initial` is given.
    """
    spreads: dict[str, list[float]] = {}
    travels: list[float] = []
    for name, layer in iter_adamix_layers(model):
        for kind, projection in layer.named_children():
            if isinstance(projection, ExpertLinear) and projection.num_experts > 1:
                spreads.setdefault(kind, []).append(expert_spread(projection))
        if initial is not None and name in initial:
            start = initial[name]
            if start.norm() > 0:
                now = _merged_vector(layer).cpu()
                travels.append(float((now - start).norm() / start.norm()))
    out: dict[str, float] = {}
    every = [value for values in spreads.values() for value in values]
    if every:
        out["expert_spread"] = sum(every) / len(every)
        out.update({f"expert_spread/{kind}": sum(v) / len(v) for kind, v in sorted(spreads.items())})
    if travels:
        out["merged_travel"] = sum(travels) / len(travels)
    return out
