"""Examples into tensors: tokenised, dynamically padded batches, and the order in which a run visits them."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .generation import GenerationEncoder
from .prompting import TemplateEncoder


def text_length(example: dict) -> int:
    """Characters of an example's text(s) (and of its target, for generation): a free proxy of its token count,
    to batch similar lengths together."""
    target = example.get("label")
    return (
        len(example["text_a"])
        + len(example.get("text_b") or "")
        + (len(target) if isinstance(target, str) else 0)
    )


def batches(
    examples: list[dict], tokenizer, max_length: int, batch_size: int
) -> Iterator[tuple[dict, torch.Tensor]]:
    """Tokenised batches (dynamic padding) and their labels, in order."""
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        yield encode(chunk, tokenizer, max_length)


def encode(chunk: list[dict], tokenizer, max_length: int) -> tuple[dict, torch.Tensor]:
    """Tokenise one batch of normalised examples (text_a, optional text_b, label)."""
    # prompt-based: each example rendered in its template; generation: source + target sequences
    if isinstance(tokenizer, TemplateEncoder | GenerationEncoder):
        return tokenizer(chunk, max_length)
    pair = chunk[0].get("text_b") is not None
    inputs = tokenizer(
        [e["text_a"] for e in chunk],
        [e["text_b"] for e in chunk] if pair else None,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    label_type = torch.float32 if isinstance(chunk[0]["label"], float) else torch.long
    return dict(inputs), torch.tensor([e["label"] for e in chunk], dtype=label_type)


def length_grouped_batches(
    lengths: list[int], batch_size: int, group_batches: int, generator: torch.Generator
) -> list[list[int]]:
    """One epoch's batches of example indices: a random permutation cut into batches of `batch_size`.

    With `group_batches` > 1, each run of `group_batches * batch_size` shuffled examples is sorted by length
    (longest first) before it is cut, and the batches are shuffled again: batches pad to about their own length
    (on short texts random batches pad ~2x) yet stay random, as Hugging Face's `group_by_length`. Every example
    appears once and there are ceil(n / batch_size) batches, as without grouping.

    Why not transformers' `LengthGroupedSampler` (`get_length_grouped_indices`): it sorts each mega-batch longest
    first and keeps that order, so within a mega-batch the batches run from long to short texts (the batch order
    follows length, not chance), and it moves the longest example of the epoch into the first batch. Both bias
    what the optimizer sees early in every epoch; here the batches themselves are shuffled after grouping. It
    also yields indices for a DataLoader to cut, while the loop here takes whole batches.
    """
    permutation = torch.randperm(len(lengths), generator=generator).tolist()
    if group_batches <= 1:
        return [permutation[i : i + batch_size] for i in range(0, len(permutation), batch_size)]
    span = group_batches * batch_size
    grouped: list[list[int]] = []
    for start in range(0, len(permutation), span):
        run = sorted(permutation[start : start + span], key=lambda i: -lengths[i])
        grouped += [run[i : i + batch_size] for i in range(0, len(run), batch_size)]
    shuffle = torch.randperm(len(grouped), generator=generator).tolist()
    return [grouped[i] for i in shuffle]
