"""Consistency regularisation between two stochastic forward passes, and the two-view forward that feeds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ExpertLinear


def consistency_loss(
    logits_a: torch.Tensor, logits_b: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetrised consistency between two views' predictions, each pulled toward the detached other.

    For class or token logits (last dimension > 1): `0.5 * (KL(sg(q) || p) + KL(sg(p) || q))` with p, q the
    softmax of the two views, summed over classes and averaged over examples (or over unmasked tokens).
    The gradient on view a's logits is proportional to p - q. For single-output regression (last dimension 1,
    or 1-d logits) the softmax is meaningless (always 1), so the term is the symmetric squared error
    `0.5 * ((a - sg(b))^2 + (b - sg(a))^2)`, whose gradient is proportional to a - b: it is never silently zero
    when the two views differ.

    Args:
        logits_a: first view, shape (batch, classes), (batch, tokens, vocab), (batch, 1) or (batch,).
        logits_b: second view, same shape.
        mask: optional (batch, tokens) (or (batch,)) with 1 where a position counts; padding is 0.

    Returns:
        A scalar tensor (float32).

    Example:
        >>> a, b = torch.randn(4, 3), torch.randn(4, 3)
        >>> bool(consistency_loss(a, b) > 0)
        True
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(
            f"consistency_loss needs equal shapes, got {tuple(logits_a.shape)} and {tuple(logits_b.shape)}"
        )
    a, b = logits_a.float(), logits_b.float()
    if a.dim() == 1 or a.shape[-1] == 1:
        a, b = a.reshape(a.shape[0], -1).squeeze(-1), b.reshape(b.shape[0], -1).squeeze(-1)
        per_item = 0.5 * ((a - b.detach()) ** 2 + (b - a.detach()) ** 2)
    else:
        log_p, log_q = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
        kl_q_p = F.kl_div(log_p, log_q.detach(), log_target=True, reduction="none").sum(-1)  # KL(sg(q) || p)
        kl_p_q = F.kl_div(log_q, log_p.detach(), log_target=True, reduction="none").sum(-1)  # KL(sg(p) || q)
        per_item = 0.5 * (kl_q_p + kl_p_q)
    if mask is None:
        return per_item.mean()
    mask = mask.to(per_item.dtype)
    if mask.shape != per_item.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match the positions {tuple(per_item.shape)}"
        )
    return (per_item * mask).sum() / mask.sum().clamp_min(1.0)


@contextmanager
def route_groups(model: nn.Module, groups: int) -> Iterator[None]:
    """Within the block, every mixture splits the batch into `groups` parts, each through its own expert."""
    projections = [m for m in model.modules() if isinstance(m, ExpertLinear)]
    previous = [p.route_groups for p in projections]
    for p in projections:
        p.route_groups = groups
    try:
        yield
    finally:
        for p, g in zip(projections, previous, strict=True):
            p.route_groups = g


def two_view_logits(
    model: nn.Module, inputs: Mapping[str, Any], *, batched: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of two stochastic views of the same batch (different routes and dropout masks).

    With `batched=True` the batch is doubled and run as one forward, each half routed through its own
    experts (one kernel per projection); otherwise two forwards run one after the other. Both give two
    independent draws of the routes; batched is faster wherever a larger batch uses the hardware better.

    Args:
        model: an AdaMix model in train mode.
        inputs: the model's keyword inputs (no labels); tensors have the batch as first dimension.
        batched: one doubled forward (True) or two sequential forwards (False).

    Returns:
        (logits of view a, logits of view b).
    """
    if not batched:
        return model(**inputs).logits, model(**inputs).logits
    doubled = {k: torch.cat([v, v]) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    with route_groups(model, 2):
        logits = model(**doubled).logits
    view_a, view_b = logits.chunk(2)
    return view_a, view_b


class AdaMixLoss(NamedTuple):
    """The parts of one training step's objective."""

    loss: torch.Tensor
    task_loss: torch.Tensor
    consistency: torch.Tensor
    logits: torch.Tensor


def default_task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classification logits, mean squared error for a single regression output."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def adamix_loss(
    model: nn.Module,
    inputs: Mapping[str, Any],
    labels: torch.Tensor,
    *,
    consistency_weight: float = 1.0,
    task_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = default_task_loss,
    mask: torch.Tensor | None = None,
    batched: bool = True,
) -> AdaMixLoss:
    """AdaMix's training objective: task loss on the first view plus the weighted consistency term.

    With `consistency_weight == 0` only one forward runs (no second view is needed).

    Args:
        model: an AdaMix model in train mode.
        inputs: keyword inputs for the model, without labels.
        labels: targets for `task_loss`.
        consistency_weight: weight of the consistency term (1.0 for NLU in the paper).
        task_loss: callable (logits, labels) -> scalar; cross-entropy / MSE by default.
        mask: positions that count for the consistency term (token-level tasks).
        batched: run the two views as one doubled batch.

    Returns:
        AdaMixLoss(loss, task_loss, consistency, logits of the first view).

    Example:
        >>> out = adamix_loss(model, {"input_ids": ids, "attention_mask": am}, labels)  # doctest: +SKIP
        >>> out.loss.backward()  # doctest: +SKIP
    """
    if consistency_weight == 0:
        logits = model(**inputs).logits
        task = task_loss(logits, labels)
        return AdaMixLoss(task, task, torch.zeros((), device=task.device), logits)
    logits_a, logits_b = two_view_logits(model, inputs, batched=batched)
    task = task_loss(logits_a, labels)
    consistency = consistency_loss(logits_a, logits_b, mask)
    return AdaMixLoss(task + consistency_weight * consistency, task, consistency, logits_a)
