"""Shared routing: the mixtures' random expert draws from one dedicated generator instead of torch's global RNG.

By default every mixture draws its expert with `torch.randint` on the global RNG, the generator dropout uses
too. In data-parallel training each process holds a shard of the global batch and its own dropout stream, yet
the whole global batch must go through one expert per mixture and step, as on one device. `shared_routing`
gives a model a generator of its own for routing; reseeded from (seed, step) before every step, it makes every
process draw the same experts, whatever its dropout, its shard's size or the number of processes:

    >>> routing = adamix.shared_routing(model, seed=13)   # after model.to(device)   # doctest: +SKIP
    >>> for step, batch in enumerate(batches):                                       # doctest: +SKIP
    ...     routing.reseed(step)
    ...     adamix.adamix_loss(ddp_model, *batch).loss.backward()

A reseed is a host-side operation (no device sync), and the draws stay device tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ExpertLinear

_MASK64 = (1 << 64) - 1


def routing_seed(seed: int, step: int) -> int:
    """A well-mixed 63-bit seed for (seed, step) (splitmix64): neighbouring steps get unrelated streams."""
    z = (seed * 0x9E3779B97F4A7C15 + step + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


class SharedRouting:
    """The routing generator shared by every mixture of one model (what `shared_routing` returns)."""

    def __init__(self, projections: list[ExpertLinear], seed: int) -> None:
        self.projections, self.seed = projections, seed
        self.generator: torch.Generator | None = None
        self.reseed(0)

    def reseed(self, step: int) -> None:
        """Restart the draws from (seed, step): call it before each training step, on every process."""
        if not self.projections:
            return
        device = self.projections[0].weight.device
        if self.generator is None or self.generator.device != device:  # first use, or the model was moved
            self.generator = torch.Generator(device=device)
            for projection in self.projections:
                projection.routing_generator = self.generator
        self.generator.manual_seed(routing_seed(self.seed, step))

    def remove(self) -> None:
        """Back to the default: draws from torch's global RNG."""
        for projection in self.projections:
            projection.routing_generator = None
        self.generator = None


def shared_routing(model: nn.Module, seed: int) -> SharedRouting:
    """Make every mixture of `model` draw its experts from one dedicated generator, seeded from (seed, step 0).

    Dropout keeps using the global RNG. Two models (or two processes) with shared routing, the same seed and
    the same sequence of forwards and `reseed(step)` calls draw the same experts at every forward, whatever
    their batch sizes. A model without mixtures draws nothing (the handle does nothing). Call it after moving
    the model to its device (`reseed` follows a later move); a second call replaces the generator;
    `SharedRouting.remove` goes back to the global RNG.
    """
    return SharedRouting([m for m in model.modules() if isinstance(m, ExpertLinear)], seed)
