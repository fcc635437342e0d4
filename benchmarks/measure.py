"""Timing and memory primitives: the training step as the pipeline runs it, per-step timers, memory accounting."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

import adamix
from adamix.consistency import default_task_loss
from flows.training.optim import build_optimizer

from .models import MethodSpec


def pick_device(setting: str) -> torch.device:
    """`auto` takes CUDA when present, else the CPU; `cuda` must exist."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return torch.device(setting)


def random_batch(vocab: int, batch: int, length: int, seed: int, device: torch.device):
    """The one batch every method sees: random ids (no padding), all-ones mask, random binary labels."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    labels = torch.randint(0, 2, (batch,), generator=g)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return {k: v.to(device) for k, v in inputs.items()}, labels.to(device)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The pipeline's AdamW (flows/training/optim.py: parameter groups, fused on CUDA) at a fixed rate."""
    return build_optimizer(model, lr=1e-4, weight_decay=0.1)


def make_train_step(
    model: nn.Module,
    spec: MethodSpec,
    inputs: dict,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    dtype: torch.dtype | None,
    grad_clip: float,
    forward: Callable | None = None,
) -> Callable[[], None]:
    """One training step as flows/training/loop.py runs it: forward (two views with consistency), backward,
    clip, AdamW.

    No host synchronisation inside: the loss stays on the device.
    """
    forward = model if forward is None else forward
    trainable = [p for p in model.parameters() if p.requires_grad]
    device_type = labels.device.type

    def step() -> None:
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            if spec.two_view:
                batched = spec.two_view == "batched"
                loss = adamix.adamix_loss(
                    forward, inputs, labels, consistency_weight=1.0, batched=batched
                ).loss
            else:
                loss = default_task_loss(forward(**inputs).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
        optimizer.step()

    return step


def make_inference_step(
    model: nn.Module, inputs: dict, dtype: torch.dtype | None, forward: Callable | None = None
) -> Callable[[], None]:
    """One forward of the deployed model (eval mode, no autograd)."""
    forward = model if forward is None else forward
    device_type = inputs["input_ids"].device.type

    def step() -> None:
        with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            forward(**inputs)

    return step


def time_steps(fn: Callable[[], None], count: int, device: torch.device) -> list[float]:
    """Milliseconds of each of `count` calls of `fn`.

    On CUDA one event is recorded between consecutive calls and the host synchronises only before and after
    the whole run, so the timing never adds a sync inside a step; the gap between two events is the step's
    wall time on the GPU stream, host-launch stalls included.
    """
    if device.type == "cuda":
        events = [torch.cuda.Event(enable_timing=True) for _ in range(count + 1)]
        torch.cuda.synchronize(device)
        events[0].record()
        for i in range(count):
            fn()
            events[i + 1].record()
        torch.cuda.synchronize(device)
        return [events[i].elapsed_time(events[i + 1]) for i in range(count)]
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def warm_up(fn: Callable[[], None], count: int, device: torch.device) -> None:
    """Untimed calls (compilation, allocator, optimizer state), then a sync."""
    for _ in range(count):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summary(times: list[float]) -> dict[str, float]:
    """Median, quartiles and minimum (ms) of per-step times."""
    if len(times) == 1:
        return {"median": times[0], "p25": times[0], "p75": times[0], "min": times[0], "count": 1}
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return {"median": statistics.median(times), "p25": q1, "p75": q3, "min": min(times), "count": len(times)}


def resident_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Bytes of the model's parameters and buffers and the optimizer's state (each storage counted once)."""
    tensors = [*model.parameters(), *model.buffers()]
    if optimizer is not None:
        tensors += [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
    storages = {}
    for t in tensors:
        storage = t.untyped_storage()
        storages[(storage.device, storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


def cuda_peak_context(device: torch.device):
    """Resets CUDA's peak counter on entry; `.extra` is the peak above what was allocated on entry."""
    if device.type != "cuda":
        return nullcontext(None)
    return _CudaPeak(device)


class _CudaPeak:
    def __init__(self, device: torch.device) -> None:
        self.device, self.extra = device, 0

    def __enter__(self) -> _CudaPeak:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.start = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc) -> None:
        torch.cuda.synchronize(self.device)
        self.extra = torch.cuda.max_memory_allocated(self.device) - self.start
