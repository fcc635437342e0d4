"""Training checkpoints for resume after a crash: everything a run needs to continue bit-identically.

A checkpoint is a folder beside the run, ``runs/<task>/<method>/.seed<seed>.checkpoint/`` (outside the DVC output
``seed<seed>/``), replaced atomically each time, holding:

- ``tensors.safetensors``: the trainable weights, the optimizer's per-parameter state, the best epoch's weights
  (``train.select: best``), the per-step losses so far, the epoch's running sums, and the RNG states (torch CPU
  and CUDA, the batch-order generator);
- ``state.json``: the optimizer's hyperparameters, the scheduler, the position (optimizer steps done), Python's
  RNG state, the history so far, the MLflow run id, and a fingerprint of the run's params and data.

Safetensors and JSON only: a checkpoint is never unpickled. A checkpoint whose fingerprint differs (other params,
other data, other code version of this format) is refused with a message naming it, rather than mixed in.

As in nanoGPT, a run reads its checkpoint once, before the loop (`Checkpoints.resume`): the model, optimizer,
scheduler and RNGs are restored in place and the loop starts from the TrainState it returns.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import ordinary_modes, staging_dir
from ..errors import InputError
from .state import BestEpoch, TrainState

FORMAT = 1
_TENSORS, _STATE = "tensors.safetensors", "state.json"


class CheckpointError(InputError):
    """A checkpoint that cannot be resumed: written for other params or data, or unreadable (named)."""


def checkpoint_dir(run_dir: Path) -> Path:
    """Where the checkpoint of the run folder `run_dir` lives: a hidden sibling, never inside the DVC output."""
    return run_dir.with_name(f".{run_dir.name}.checkpoint")


def data_hash(split: Path) -> str:
    """A hash of the split's files (names and bytes): a checkpoint resumes only on the data it was trained on."""
    digest = hashlib.sha256()
    for path in sorted(p for p in split.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(split)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(run_params: dict[str, Any], task: str, method: str, seed: int, data_hash: str) -> str:
    """What a checkpoint must match to be resumed: the run's params, its identity and its data split."""
    payload = json.dumps({"params": run_params, "run": [task, method, seed], "data": data_hash, "format": FORMAT},
                         sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Checkpoints:
    """The checkpoint of one run: where it lives, what it must match, and what it saves and restores.

    `enabled` is False on the data-parallel processes other than rank 0: they never write one.
    """

    folder: Path
    fingerprint: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    enabled: bool = True

    def resume(self, device: torch.device) -> TrainState | None:
        """Restore model, optimizer, scheduler and RNGs from the checkpoint; its TrainState, or None if none."""
        return load(self.folder, self.model, self.optimizer, self.scheduler, self.fingerprint, device)

    def save(self, state: TrainState) -> None:
        """Write the checkpoint of `state` (at an optimizer step boundary)."""
        if self.enabled:
            save(self.folder, state, self.model, self.optimizer, self.scheduler, self.fingerprint)

    def remove(self) -> None:
        """Delete the checkpoint once the run folder is complete: nothing is left to resume."""
        remove(self.folder)


def capture_rng() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Python's RNG state (JSON) and torch's (tensors): the routing draws and dropout masks depend on them."""
    version, internal, gauss = random.getstate()
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = state
    return {"version": version, "internal": list(internal), "gauss": gauss}, tensors


def restore_rng(python: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Put back the RNG states `capture_rng` took."""
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _optimizer_tensors(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """The optimizer's groups (hyperparameters, parameters by name) and its per-parameter state, by name."""
    index = {id(p): n for n, p in model.named_parameters()}
    optimizer_state = optimizer.state_dict()
    groups, tensors = [], {}
    for group, live in zip(optimizer_state["param_groups"], optimizer.param_groups, strict=True):
        hyper = {k: v for k, v in group.items() if k != "params"}
        groups.append({**hyper, "params": [index[id(p)] for p in live["params"]]})
        for key, p in zip(group["params"], live["params"], strict=True):
            for slot, value in optimizer_state["state"].get(key, {}).items():
                tensors[f"optim/{index[id(p)]}/{slot}"] = value
    return groups, tensors


def save(
    folder: Path,
    state: TrainState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    fingerprint_: str,
) -> None:
    """Write the checkpoint into a staging folder, then swap it in (a crash leaves the previous one whole)."""
    tensors = {f"weight/{n}": p.detach() for n, p in model.named_parameters() if p.requires_grad}
    groups, optimizer_tensors = _optimizer_tensors(model, optimizer)
    tensors.update(optimizer_tensors)
    python_rng, rng_tensors = capture_rng()
    tensors.update(rng_tensors)
    tensors["order"] = state.order_state
    tensors["step_loss"] = state.step_loss
    tensors.update({f"sum/{k}": v.reshape(1) for k, v in state.sums.items()})
    best = None
    if state.best is not None:
        best = {"score": state.best.score, "epoch": state.best.epoch}
        tensors.update({f"best/{k}": v for k, v in state.best.weights.items()})
    meta = {
        "format": FORMAT,
        "fingerprint": fingerprint_,
        "step": state.step,
        "optimizer_groups": groups,
        "scheduler": scheduler.state_dict(),
        "python_rng": python_rng,
        "history": state.history,
        "epoch_seconds": state.epoch_seconds,
        "best": best,
        "run_id": state.run_id,
    }
    _write(folder, tensors, meta)


def _write(folder: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write both files into a staging folder, then swap it in place of `folder`."""
    staging = staging_dir(folder)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, staging / _TENSORS)
        (staging / _STATE).write_text(json.dumps(meta) + "\n", encoding="utf-8")  # key order kept: history
        ordinary_modes(staging)
        old = folder.with_name(folder.name + ".old")
        if folder.exists():
            folder.replace(old)
        staging.replace(folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _read(folder: Path, fingerprint_: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The checkpoint's state.json and tensors, after checking it was written for this run."""
    try:
        meta = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        tensors = load_file(folder / _TENSORS)
    except (OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(
            f"checkpoint {folder} is unreadable ({err}); delete it to start the run over"
        ) from None
    if meta.get("format") != FORMAT or meta.get("fingerprint") != fingerprint_:
        raise CheckpointError(
            f"checkpoint {folder} was written for other params, data or code (its fingerprint differs); "
            "delete it to start the run over, or restore the params it was written with"
        )
    return meta, tensors


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, saved_groups: list[dict[str, Any]], tensors: dict[str, torch.Tensor]
) -> None:
    """Load the saved groups and per-parameter state into `optimizer`, built as it was for the saved run."""
    # optimizer.state_dict() numbers the parameters 0, 1, ... across its groups, in the order the groups hold
    # them; the optimizer is rebuilt the same way, so the saved names in saved order map back one to one.
    state: dict[int, dict[str, torch.Tensor]] = {}
    groups, position = [], 0
    for group in saved_groups:
        hyper = {
            k: tuple(v) if k == "betas" else v for k, v in group.items() if k != "params"
        }  # JSON made it a list
        groups.append({**hyper, "params": []})
        for name in group["params"]:
            slots = {k.rsplit("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"optim/{name}/")}
            if slots:
                state[position] = slots  # load_state_dict moves them to the parameter's device
            groups[-1]["params"].append(position)
            position += 1
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def load(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    fingerprint_: str,
    device: torch.device,
) -> TrainState | None:
    """Restore model, optimizer, scheduler and RNGs from `folder`; None when there is no checkpoint.

    Raises:
        CheckpointError: the checkpoint was written for other params or data, or is unreadable.
    """
    if not (folder / _STATE).is_file():
        return None
    meta, tensors = _read(folder, fingerprint_)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(tensors[f"weight/{name}"])
    _restore_optimizer(optimizer, meta["optimizer_groups"], tensors)
    scheduler.load_state_dict(meta["scheduler"])
    restore_rng(meta["python_rng"], tensors)
    best = None
    if meta["best"] is not None:
        weights = {k.removeprefix("best/"): v for k, v in tensors.items() if k.startswith("best/")}
        best = BestEpoch(meta["best"]["score"], meta["best"]["epoch"], weights)
    sums = {
        k.removeprefix("sum/"): v.reshape(()).to(device) for k, v in tensors.items() if k.startswith("sum/")
    }
    return TrainState(
        step=meta["step"],
        order_state=tensors["order"],
        step_loss=tensors["step_loss"].to(device),
        sums=sums,
        history=meta["history"],
        epoch_seconds=meta["epoch_seconds"],
        best=best,
        run_id=meta["run_id"],
    )


def remove(folder: Path) -> None:
    """Delete the checkpoint once the run folder is complete."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.with_name(folder.name + ".old"), ignore_errors=True)
