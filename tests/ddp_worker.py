"""The training the data-parallel tests compare: a few AdaMix steps, by one process or by each of several.

Kept apart from the test module so that the spawned processes import only torch, adamix and flows.modeling (the
tiny BERT, and with it transformers, only when asked for).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file
from torch import nn

import adamix
from flows.training import distributed
from flows.training.distributed import DataParallel

SEED, EXAMPLES, BATCH, EPOCHS, FEATURES, LR = (
    13,
    21,
    8,
    2,
    6,
    0.5,
)  # 3 steps an epoch; the last batch (5) splits 2 + 3
SCENARIOS = {  # name: (shared routing, batched two views)
    "shared": (True, True),
    "sequential": (True, False),
    "naive": (False, True),
}


class Toy(nn.Module):
    """A frozen projection, one AdaMix adapter mixture (M=4, every expert its own draw) and a head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(FEATURES, 8).requires_grad_(False)
        self.mix = adamix.AdaMixAdapterLayer(
            nn.Linear(8, 8).requires_grad_(False), 4, 3, "none", 0.0, expert_init="independent", init_std=0.3
        )
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.head(self.mix(torch.tanh(self.embed(x)))))


def model(kind: str) -> nn.Module:
    """`toy`, or the tiny BERT (dropout 0) with an AdaMix adapter M=4, independent experts."""
    if kind == "toy":
        return Toy().train()
    from tiny_models import tiny_classifier

    # experts drawn wide apart (std 0.3): which one a step goes through shows in the weights
    config = adamix.AdaMixConfig(
        method="adapter", num_experts=4, bottleneck=4, expert_init="independent", init_std=0.3
    )
    return adamix.get_adamix_model(tiny_classifier("bert", num_labels=3, seed=0), config).train()


def _inputs(kind: str, index: list[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (EXAMPLES,), generator=g)
    if kind == "toy":
        return {"x": torch.randn(EXAMPLES, FEATURES, generator=g)[index]}, labels[index]
    ids = torch.randint(5, 64, (EXAMPLES, 7), generator=g)[index]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, labels[index]


def train(kind: str, dp: DataParallel | None, batched: bool) -> tuple[dict[str, torch.Tensor], list[float]]:
    """A few AdaMix steps; `dp` None: one process on the global batches, shared routing reseeded per step as the
    processes do. Returns the trainable weights and the global batch's task loss of every step."""
    net = model(kind)
    forward, routing = (net, adamix.shared_routing(net, SEED)) if dp is None else (dp.wrap(net), None)
    trainable = [p for p in net.parameters() if p.requires_grad]
    order, losses = torch.Generator().manual_seed(SEED), []
    for epoch in range(EPOCHS):
        permutation = torch.randperm(EXAMPLES, generator=order).tolist()
        batches = [permutation[i : i + BATCH] for i in range(0, EXAMPLES, BATCH)]
        if dp is not None:
            batches = dp.shard(batches)
        for step, index in enumerate(batches):
            global_step = epoch * len(batches) + step
            if dp is not None:
                dp.begin_step(step, global_step)
            else:
                routing.reseed(global_step)
            inputs, labels = _inputs(kind, index)
            out = adamix.adamix_loss(forward, inputs, labels, batched=batched)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            with (
                torch.no_grad()
            ):  # plain SGD by hand: a torch.optim optimizer imports torch._dynamo (seconds)
                for p in trainable:
                    p -= LR * p.grad
                    p.grad = None
            task_loss = out.task_loss.detach()
            losses.append(float(dp.global_mean(task_loss) if dp is not None else task_loss))
    return {name: p.detach().clone() for name, p in net.named_parameters() if p.requires_grad}, losses


def worker(rank: int, world: int, port: int, out: str, kind: str) -> None:
    """One of `world` gloo processes: every scenario, its weights and losses written under `out`."""
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world)}
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    for name, (share, batched) in SCENARIOS.items():
        dp = distributed.start({"batch_size": BATCH, "device": "cpu"}, SEED, EXAMPLES, share_routing=share)
        assert dp.active and dp.world == world and dp.is_main == (rank == 0)
        weights, losses = train(kind, dp, batched)
        save_file(weights, f"{out}/{name}-rank{rank}.safetensors")
        Path(f"{out}/{name}-rank{rank}.json").write_text(json.dumps(losses))
