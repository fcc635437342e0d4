"""Prediction: a model's class ids (or regression values) on examples, and the task's metrics on them."""

from __future__ import annotations

import torch
from torch import nn

from ..metrics import compute_metrics
from .base import autocast_dtype
from .batching import batches, text_length
from .generation import Decoding, generate_texts, is_generation


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
    """The task's metrics on `examples` (a generation task: the validation BLEU of its cheap decoding)."""
    if is_generation(meta):
        return validation_bleu(model, examples, meta, tokenizer, params, device)
    return predict_and_score(model, examples, meta, tokenizer, params, device)[0]


def predict_and_score(
    model: nn.Module, examples: list[dict], meta: dict, tokenizer, params: dict, device
) -> tuple[dict[str, float], list]:
    """A classification or regression task's metrics on `examples`, and the predictions they were computed from."""
    predictions = predict(model, examples, tokenizer, params, device)
    return compute_metrics(meta["metrics"], predictions, [e["label"] for e in examples]), predictions


def validation_bleu(
    model: nn.Module, examples: list[dict], meta: dict, encoder, params: dict, device: torch.device
) -> dict[str, float]:
    """BLEU (as a fraction) of the per-epoch decoding (params `generation.validation_num_beams`) of the first
    `generation.validation_examples` validation sources: the score `select: best` and the learning curves use.
    The full metric suite on the test split, with the test decoding, is the evaluate stage's."""
    from .. import nlg_metrics

    cap = params["generation"]["validation_examples"]
    chosen = examples[:cap] if cap else examples
    outputs = generate_texts(
        model,
        encoder,
        [e["text_a"] for e in chosen],
        Decoding.from_params(params, validation=True),
        max_length=params["train"]["max_length"],
        batch_size=params["train"]["eval_batch_size"],
        device=device,
        dtype=autocast_dtype(params["train"]["precision"], device),
        desc="validation decoding",
    )
    references = [e.get("references") or [e["label"]] for e in chosen]
    return {meta["primary_metric"]: nlg_metrics.corpus_bleu(meta["metric_suite"], references, outputs)}


def deployable(model: nn.Module, kind: str) -> nn.Module:
    """The model as served: LoRA (ours, merged, or PEFT's) folded into the base weights, so decoding costs
    exactly the base model; an adapter stays one module per layer (its nonlinearity cannot fold)."""
    if kind == "peft_lora":
        return model.merge_and_unload()
    config = getattr(model, "adamix_config", None)
    if config is not None and config.method == "lora" and config.inference == "merge":
        import adamix

        return adamix.merge_and_unload(model)
    return model


def score_generation(
    model: nn.Module, examples: list[dict], meta: dict, encoder, params: dict, device: torch.device, desc: str
) -> tuple[dict, list[str]]:
    """Decode the test sources as the official NLG evaluation does (params `generation`) and score the outputs
    with the task's metric suite. Returns (metrics, outputs); a metric that could not run is None, with its
    reason under metrics["unavailable"]."""
    from .. import nlg_metrics

    outputs = generate_texts(
        model,
        encoder,
        [e["text_a"] for e in examples],
        Decoding.from_params(params),
        max_length=params["train"]["max_length"],
        batch_size=params["train"]["eval_batch_size"],
        device=device,
        dtype=autocast_dtype(params["train"]["precision"], device),
        desc=desc,
    )
    references = [e.get("references") or [e["label"]] for e in examples]
    return nlg_metrics.suite_scores(meta["metric_suite"], references, outputs), outputs
