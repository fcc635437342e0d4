"""Prediction: a model's class ids (or regression values) on examples, and the task's metrics on them."""

from __future__ import annotations

import torch
from torch import nn

from ..metrics import compute_metrics
from .base import autocast_dtype
from .batching import batches, text_length


@torch.no_grad()
def predict(model: nn.Module, examples: list[dict], tokenizer, params: dict, device: torch.device) -> list:
    """Class ids (or regression values) for `examples`; the model is put in eval mode."""
    model.eval()
    train = params["train"]
    dtype = autocast_dtype(train["precision"], device)
    # Longest first, so that each batch pads to about its own length (random order pads ~2x on short texts);
    # predictions go back to the input order.
    order = sorted(range(len(examples)), key=lambda i: -text_length(examples[i]))
    ordered: list = []
    for inputs, _ in batches(
        [examples[i] for i in order], tokenizer, train["max_length"], train["eval_batch_size"]
    ):
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(**inputs).logits.float()
        values = logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1)
        ordered.extend(values.cpu().tolist())
    predictions: list = [None] * len(examples)
    for position, value in zip(order, ordered, strict=True):
        predictions[position] = value
    return predictions


def score(
    model: nn.Module, examples: list[dict], meta: dict, tokenizer, params: dict, device
) -> dict[str, float]:
    """The task's metrics on `examples`."""
    predictions = predict(model, examples, tokenizer, params, device)
    return compute_metrics(meta["metrics"], predictions, [e["label"] for e in examples])
