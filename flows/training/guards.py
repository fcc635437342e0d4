"""The non-finite stop: a loss or gradient norm that is NaN or infinite ends the run before anything is written.

On the CPU every step is checked. On an accelerator the flag stays on the device and is read only every few
steps (each read is a host sync), so the loop keeps running ahead of the device in between.
"""

from __future__ import annotations

import torch

from ..errors import InputError

NONFINITE_CHECK_EVERY = 16  # steps between reads of the non-finite flag on an accelerator (each read syncs)


class NonFiniteLossError(InputError):
    """Training produced a non-finite loss or gradient norm: a learning rate too large, or fp16 overflow."""


def check_every(device: torch.device) -> int:
    """Steps between two reads of the non-finite flag on `device`."""
    return 1 if device.type == "cpu" else NONFINITE_CHECK_EVERY


def require_finite(finite: torch.Tensor, run: str, epoch: int, step: int, cfg: dict) -> None:
    """Raise NonFiniteLossError (the run writes nothing) unless every step so far had a finite loss and norm."""
    if bool(finite):
        return
    causes = [f"learning rate {cfg['learning_rate']} too large"]
    if cfg["precision"] == "fp16":
        causes.append("fp16 overflow (try precision: bf16 or fp32)")
    raise NonFiniteLossError(
        f"run {run}: non-finite loss or gradient norm at epoch {epoch}, by step {step}; nothing was saved. "
        f"Likely cause: {' or '.join(causes)}"
    )
