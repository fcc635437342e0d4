"""Data-parallel training of one run (DDP): each process trains on its shard of every global batch.

Launched by `torchrun` (or anything that sets the torch.distributed environment: WORLD_SIZE, RANK, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), the train stage runs one (task, method, seed) over WORLD_SIZE processes:

- `train.batch_size` stays the GLOBAL batch: every process builds the same epoch order and takes its equal,
  contiguous shard of each global batch (the last, partial batch is split as evenly as it goes);
- gradients are summed over the processes, each weighted by its shard's share of the global batch, so a step
  is the step of one process on the whole global batch (the mean loss over all its examples);
- shared routing (`adamix.shared_routing`): the routing generator is reseeded from (seed, step) before every
  step, so all processes draw the same expert for each mixture, and the whole global batch goes through it as
  on one device; dropout stays per process, reseeded from (seed, step, rank);
- the losses recorded (history, step_loss, MLflow) are those of the global batch, the same on every process;
- rank 0 alone writes the run folder, checkpoints, timings and MLflow; every process validates (the same
  weights give the same metrics), the others write nothing.

Outside such a launch, `start` returns an inactive `DataParallel` whose every method leaves the run exactly as
it was (the single-process run, bit for bit).
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

import adamix

from ..errors import InputError
from ..modeling.base import pick_device


class DistributedError(InputError):
    """A data-parallel launch this run cannot take (batch size, device)."""


def launched() -> bool:
    """Whether this process is one of a torchrun-style launch (WORLD_SIZE > 1, or any torchrun launch)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def _mix(*values: int) -> int:
    seed = 0
    for value in values:
        seed = adamix.routing_seed(seed, value)
    return seed


class DataParallel:
    """One process's part of a run: its rank, its shards, the shared routing and the gradient weighting.

    `DataParallel()` (world 1, inactive) changes nothing: `wrap` returns the model, `shard` the batches.
    """

    def __init__(
        self,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        *,
        active: bool = False,
        share_routing: bool = True,
    ) -> None:
        self.rank, self.world, self.seed, self.active = rank, world, seed, active
        self.share_routing = share_routing  # False only to show what goes wrong without it (tests)
        self.routing: adamix.SharedRouting | None = None
        self.weight = 1.0 / world  # this process's share of the current global batch
        self._weights: list[float] = []

    @property
    def is_main(self) -> bool:
        """Whether this process writes (rank 0; the only process outside a launch)."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train with: DistributedDataParallel over `model` (already on its device), with shared
        routing on; `model` itself when inactive. Every process starts from rank 0's weights."""
        if not self.active:
            return model
        if self.share_routing:
            self.routing = adamix.shared_routing(model, self.seed)
        else:  # the naive setup: one stream per process, for dropout and routing alike
            torch.manual_seed(_mix(self.seed, self.rank))
        device = next(model.parameters()).device
        ids = None
        if device.type == "cuda":
            ids = [device.index if device.index is not None else torch.cuda.current_device()]
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        ddp.register_comm_hook(self, _weighted_allreduce)
        return ddp

    def shard(self, batches: list[list[int]]) -> list[list[int]]:
        """This process's part of each global batch of example indices (all of them when inactive)."""
        if not self.active:
            return batches
        mine = [
            batch[self.rank * len(batch) // self.world : (self.rank + 1) * len(batch) // self.world]
            for batch in batches
        ]
        self._weights = [len(part) / len(batch) for part, batch in zip(mine, batches, strict=True)]
        return mine

    def begin_step(self, step: int, global_step: int) -> None:
        """Before the epoch's `step` (the run's `global_step`, counted from 0): the routing and dropout seeds,
        and this process's gradient weight. Stateless, so a resumed run draws as an uninterrupted one."""
        if not self.active:
            return
        self.weight = self._weights[step]
        if self.share_routing:
            if self.routing is not None:
                self.routing.reseed(global_step)
            torch.manual_seed(_mix(self.seed, global_step, self.rank))  # dropout: per process and step

    def global_mean(self, *values: torch.Tensor | None) -> Any:
        """The global batch's value of per-shard means (losses), on every process; as given when inactive.

        One small all-reduce, on the device: no host sync."""
        if not self.active:
            return values if len(values) > 1 else values[0]
        present = [v.detach().float() for v in values if v is not None]
        stacked = torch.stack(present) * self.weight
        dist.all_reduce(stacked)
        reduced = iter(stacked.unbind())
        out = tuple(None if v is None else next(reduced).to(v.dtype) for v in values)
        return out if len(out) > 1 else out[0]


def _weighted_allreduce(state, bucket):  # no annotations: DDP checks them, and these are strings here
    """DDP communication hook: sum of each process's gradients times its share of the global batch.

    With equal shards this is DDP's own average; with the last, uneven batch it is still the gradient of the
    mean loss over the global batch (DDP's plain average would weight a smaller shard's examples more)."""
    tensor = bucket.buffer()
    tensor.mul_(state.weight)
    work = dist.all_reduce(tensor, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def start(cfg: dict, seed: int, train_examples: int, *, share_routing: bool = True) -> DataParallel:
    """Join the launch this process is part of (process group: nccl on CUDA, gloo otherwise), after checking
    that `cfg["batch_size"]` (the global batch) splits over its processes; inactive outside a launch."""
    if not launched():
        return DataParallel()
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ.get("RANK", "0"))
    batch = cfg["batch_size"]
    if batch % world:
        raise DistributedError(
            f"train.batch_size {batch} is the global batch and must split evenly over the {world} processes "
            f"of this launch: use a multiple of {world}, or a number of processes that divides {batch}"
        )
    last = train_examples % batch
    if last and last < world:
        raise DistributedError(
            f"the last batch of each epoch has {last} of the {train_examples} training examples, fewer than the "
            f"{world} processes: change train.batch_size or the number of processes"
        )
    device = pick_device(cfg["device"])
    if device.type not in ("cpu", "cuda"):
        raise DistributedError(f"data-parallel training runs on CPU (gloo) or CUDA (nccl), not {device.type}")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_close)
    return DataParallel(rank, world, seed, active=True, share_routing=share_routing)


def _close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
