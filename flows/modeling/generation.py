"""Generation tasks on a causal LM: source + target sequences, the target-only loss, and beam-search decoding.

A training sequence is the linearised source, the separator (params `generation.separator`), the target and
the end-of-sequence token. Only target tokens (the end-of-sequence token included) count in the loss and in
AdaMix's token-level consistency term; the source and the padding are masked, as in the official NLG code
(its `lm_mask`). Decoding feeds the same source + separator tokens, left-padded, to transformers' `generate`
and keeps the first line of the new text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from adamix.consistency import default_task_loss

GENERATION_KIND = "generation"
IGNORE_INDEX = -100  # label of a position that is not a target token (source, padding)


def is_generation(meta: dict | None) -> bool:
    """Whether a prepared task (its meta.json) is a generation task."""
    return bool(meta) and meta.get("kind") == GENERATION_KIND


@dataclass(frozen=True)
class Decoding:
    """How outputs are decoded; the defaults are the official NLG evaluation's (NLG/run_eval_e2e.sh)."""

    num_beams: int = 10
    length_penalty: float = 0.8
    no_repeat_ngram_size: int = 4
    max_new_tokens: int = 64

    @classmethod
    def from_params(cls, params: dict, *, validation: bool = False) -> Decoding:
        """The test-time decoding of params `generation`; with `validation`, its cheaper per-epoch variant."""
        section = params["generation"]
        beams = section["validation_num_beams"] if validation else section["num_beams"]
        return cls(
            num_beams=beams,
            length_penalty=section["length_penalty"],
            no_repeat_ngram_size=section["no_repeat_ngram_size"],
            max_new_tokens=section["max_new_tokens"],
        )

    def generate_kwargs(self) -> dict:
        """Keyword arguments of transformers' `generate` (deterministic: no sampling)."""
        return {
            "num_beams": self.num_beams,
            "length_penalty": self.length_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "early_stopping": self.num_beams > 1,
        }


class GenerationEncoder:
    """Turns generation examples (`text_a` = source, `label` = target) into causal-LM batches.

    Called like `flows.modeling.batching.encode`: `encoder(chunk, max_length) -> (inputs, labels)`, right-padded,
    labels IGNORE_INDEX outside the target. `prompts(...)` gives the left-padded inputs that decoding starts from.
    """

    def __init__(self, tokenizer, separator: str) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token: generation needs one to stop")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.separator = separator

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def eos_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    def source_ids(self, source: str) -> list[int]:
        """Token ids of the source and separator (with the tokenizer's own BOS, where it adds one)."""
        return self.tokenizer(source + self.separator, add_special_tokens=True)["input_ids"]

    def target_ids(self, target: str) -> list[int]:
        return self.tokenizer(target, add_special_tokens=False)["input_ids"] + [self.eos_token_id]

    def __call__(self, chunk: Sequence[dict], max_length: int) -> tuple[dict, torch.Tensor]:
        rows = [
            self._fit(self.source_ids(e["text_a"]), self.target_ids(e["label"]), max_length) for e in chunk
        ]
        width = max(len(src) + len(tgt) for src, tgt in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, (src, tgt) in enumerate(rows):
            n = len(src) + len(tgt)
            ids[i, :n] = torch.tensor(src + tgt)
            mask[i, :n] = 1
            labels[i, len(src) : n] = torch.tensor(tgt)
        return {"input_ids": ids, "attention_mask": mask}, labels

    @staticmethod
    def _fit(src: list[int], tgt: list[int], max_length: int) -> tuple[list[int], list[int]]:
        """Cut a pair to `max_length` tokens: the target keeps at least half, the source keeps its end."""
        if len(src) + len(tgt) <= max_length:
            return src, tgt
        tgt = tgt[: max(max_length - len(src), max_length // 2)]
        return src[len(src) - (max_length - len(tgt)) :], tgt

    def prompts(self, sources: Sequence[str], max_length: int) -> dict:
        """Left-padded source + separator ids (their ends kept within `max_length`) for `generate`."""
        rows = [self.source_ids(s)[-max_length:] for s in sources]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def decode(self, new_tokens: torch.Tensor) -> list[str]:
        """The generated texts: special tokens dropped, the first line kept, spaces trimmed."""
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [(t.strip().splitlines() or [""])[0].strip() for t in texts]


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of the next-token predictions at target positions (labels != IGNORE_INDEX).

    With `label_smoothing` e: (1 - e) * NLL + e * the mean over the vocabulary of -log p, as the official NLG
    code's `label_smooth`.
    """
    predicted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(
        predicted, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing
    )


def next_token_mask(labels: torch.Tensor) -> torch.Tensor:
    """(batch, tokens) mask of the logit positions that predict a target token: where the consistency counts."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return mask


def task_objective(
    meta: dict, label_smoothing: float = 0.0
) -> tuple[
    Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor] | None
]:
    """(task loss, consistency mask from the labels or None) of a task: the head's loss for classification,
    the target-token loss and the next-token mask for generation."""
    if is_generation(meta):
        return partial(causal_lm_loss, label_smoothing=label_smoothing), next_token_mask
    return default_task_loss, None


@torch.no_grad()
def generate_texts(
    model: nn.Module,
    encoder: GenerationEncoder,
    sources: Sequence[str],
    decoding: Decoding,
    *,
    max_length: int,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
    desc: str = "decoding",
) -> list[str]:
    """Decode every source (batched, longest first, with a progress bar); outputs in the input order."""
    model.eval()
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    outputs: list[str] = [""] * len(sources)
    bar = tqdm(total=len(sources), desc=desc, leave=False, unit="src")
    for start in range(0, len(order), batch_size):
        picked = order[start : start + batch_size]
        inputs = encoder.prompts([sources[i] for i in picked], max_length)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model.generate(
                **inputs,
                **decoding.generate_kwargs(),
                pad_token_id=encoder.pad_token_id,
                eos_token_id=encoder.eos_token_id,
            )
        for i, text in zip(picked, encoder.decode(out[:, inputs["input_ids"].shape[1] :]), strict=True):
            outputs[i] = text
        bar.update(len(picked))
    bar.close()
    return outputs
