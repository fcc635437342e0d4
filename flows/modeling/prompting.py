"""Prompt-based fine-tuning on the masked-LM head: a masked LM read as a classifier through a task's prompt.

:class:`PromptClassifier` wraps an ``AutoModelForMaskedLM`` so that its output has ``.logits`` of shape
(batch, classes): the training loop, AdaMix's two-view consistency loss and the metrics work unchanged. With
AdaMix (or LoRA) the whole MLM head stays frozen, its decoder included (it is tied to the word embeddings): only
the adaptation modules train, and no new head is added. The prompts themselves live in `flows.data.prompts`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.prompts import PUNCTUATION, Prompt, PromptError, parse_template, task_prompt
from .base import ModelError, hub_hint, pretrained_tokenizer, resolve_model_path

# Modules that map hidden states to vocabulary logits, by attribute name on the MaskedLM model: BERT family
# (`cls`), RoBERTa family and MPNet (`lm_head`). Other architectures take the full MLM forward (same logits).
_HEAD_ATTRIBUTES = ("cls", "lm_head")


def label_word_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    """Vocabulary ids of the label words, each a single token as it follows a space (BPE: ``Ġgreat``).

    Raises:
        PromptError: a word that is several tokens or unknown to the vocabulary, or two words with one id.
    """
    ids = []
    for word in words:
        pieces = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1 or pieces[0] == tokenizer.unk_token_id:
            shown = tokenizer.convert_ids_to_tokens(pieces)
            raise PromptError(
                f"label word {word!r} is not a single token of this tokenizer's vocabulary (it encodes as "
                f"{shown}); choose a word that is one token, e.g. a common lower-case word"
            )
        ids.append(pieces[0])
    if len(set(ids)) != len(ids):
        raise PromptError(f"label words {list(words)} map to the same token ids {ids}")
    return ids


class TemplateEncoder:
    """Turns normalised examples into a padded batch of rendered prompts (the base of both prompt encoders).

    Passed where the pipeline passes a tokenizer: `flows.modeling.batching.encode` calls it. Subclasses say how
    the mask is rendered (`render`) and what every tokenised row must hold (`_check`).

    Args:
        tokenizer: the model's tokenizer.
        prompt: the task's template and label words.
        parts: the parsed template.
    """

    def __init__(self, tokenizer, prompt: Prompt, parts: list) -> None:
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.parts = parts
        self.label_word_ids = label_word_ids(tokenizer, prompt.label_words)

    def render(self, texts: dict[str, str]) -> str:
        """The template filled with the given sentence texts (and the mask, as the subclass renders it)."""
        raise NotImplementedError

    def __call__(self, chunk: list[dict], max_length: int) -> tuple[dict, torch.Tensor]:
        """Tokenised prompts (dynamic padding) and class labels of one batch."""
        texts = [self._texts(example) for example in chunk]
        rendered = [self.render(t) for t in texts]
        inputs = self.tokenizer(rendered, padding=True, return_tensors="pt")
        lengths = inputs["attention_mask"].sum(1).tolist()
        if max(lengths) > max_length:  # shorten the sentences of the prompts that are too long, then again
            for i, length in enumerate(lengths):
                if length > max_length:
                    rendered[i] = self.render(self._truncated(texts[i], length, max_length))
            inputs = self.tokenizer(rendered, padding=True, return_tensors="pt")
        self._check(inputs, rendered)
        return dict(inputs), torch.tensor([e["label"] for e in chunk], dtype=torch.long)

    def _check(self, inputs: dict, rendered: list[str]) -> None:
        """Raise PromptError for a tokenised batch the classifier cannot read (nothing to check by default)."""

    def _clean(self, text: str) -> str:
        """A sentence as it enters the template (the MLM encoder removes mask tokens from it)."""
        return text

    def _texts(self, example: dict) -> dict[str, str]:
        texts = {}
        for part in self.parts:
            if part.field in ("text_a", "text_b"):
                text = self._clean(example.get(part.field) or "").strip()
                if "nopunct" in part.modifiers and text[-1:] in PUNCTUATION:
                    text = text[:-1].rstrip()
                if "lowerfirst" in part.modifiers:
                    text = text[:1].lower() + text[1:]
                texts[part.field] = text
        return texts

    def _truncated(self, texts: dict[str, str], length: int, max_length: int) -> dict[str, str]:
        """Cut tokens off the sentences' ends, the longer sentence first, until the whole prompt fits."""
        spans = {
            name: self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
                "offset_mapping"
            ]
            for name, text in texts.items()
        }
        keep = {name: len(offsets) for name, offsets in spans.items()}
        while length > max_length:
            for _ in range(length - max_length):
                name = max(keep, key=lambda n: keep[n])
                if keep[name] == 0:
                    raise PromptError(
                        f"template {self.prompt.template!r} alone takes more than train.max_length "
                        f"({max_length}) tokens"
                    )
                keep[name] -= 1
            cut = {
                name: text[: spans[name][keep[name] - 1][1]] if keep[name] else ""
                for name, text in texts.items()
            }
            length = len(self.tokenizer(self.render(cut), add_special_tokens=True)["input_ids"])
        return cut


class PromptEncoder(TemplateEncoder):
    """The masked-LM prompt encoder: each rendered prompt holds exactly one mask token.

    Args:
        tokenizer: a masked-LM tokenizer (it must have a mask token).
        prompt: the task's template and label words.
    """

    def __init__(self, tokenizer, prompt: Prompt) -> None:
        if tokenizer.mask_token is None:
            raise PromptError(
                f"{type(tokenizer).__name__} has no mask token: prompts need a masked-LM tokenizer"
            )
        super().__init__(tokenizer, prompt, parse_template(prompt.template))

    def render(self, texts: dict[str, str]) -> str:
        """The template filled with the given sentence texts and the tokenizer's mask token."""
        out = []
        for part in self.parts:
            out.append(part.literal)
            if part.field == "mask":
                out.append(self.tokenizer.mask_token)
            elif part.field is not None:
                out.append(texts[part.field])
        return "".join(out)

    def _check(self, inputs: dict, rendered: list[str]) -> None:
        masks = (inputs["input_ids"] == self.tokenizer.mask_token_id).sum(1)
        if not bool((masks == 1).all()):
            row = int((masks != 1).nonzero()[0, 0])
            raise PromptError(
                f"prompt {rendered[row]!r} has {int(masks[row])} mask tokens after tokenisation, not 1"
            )

    def _clean(self, text: str) -> str:
        # a mask token typed in the text would be a second mask
        return text.replace(self.tokenizer.mask_token, " ")


@dataclass
class PromptOutput:
    """What PromptClassifier returns: class logits (batch, classes), and the cross-entropy when labels are given."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


class PromptClassifier(nn.Module):
    """A masked LM read as a classifier: logits = MLM logits at the mask token for the label-word ids.

    Args:
        mlm: a transformers ``...ForMaskedLM`` model.
        label_word_ids: one vocabulary id per class, in class order.
        mask_token_id: the tokenizer's mask token id.
    """

    def __init__(self, mlm: nn.Module, label_word_ids: list[int], mask_token_id: int) -> None:
        super().__init__()
        self.mlm = mlm
        self.register_buffer(
            "label_word_ids", torch.tensor(label_word_ids, dtype=torch.long), persistent=False
        )
        self.mask_token_id = int(mask_token_id)
        self._head = next(
            (name for name in _HEAD_ATTRIBUTES if isinstance(getattr(mlm, name, None), nn.Module)), None
        )

    @property
    def config(self):
        """The masked LM's config (AdaMix and PEFT read `model_type` from it)."""
        return self.mlm.config

    def get_input_embeddings(self) -> nn.Module:
        return self.mlm.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.mlm.get_output_embeddings()

    def save_pretrained(self, path: str | Path, **kwargs: Any) -> None:
        """Save the masked LM (full fine-tuning): `load_prompt_model(..., path)` wraps it again."""
        self.mlm.save_pretrained(path, **kwargs)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> PromptOutput:
        """Class logits (batch, classes) read at the mask token; cross-entropy loss when `labels` are given.

        Every row must hold the mask token exactly once (PromptEncoder guarantees it; checked here on the CPU,
        where the check costs no device synchronisation).
        """
        is_mask = input_ids == self.mask_token_id
        if input_ids.device.type == "cpu" and not bool((is_mask.sum(1) == 1).all()):
            raise ValueError("PromptClassifier needs exactly one mask token in every row of input_ids")
        position = is_mask.int().argmax(1)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if self._head is not None:  # the encoder, then the head at the mask only: no (tokens x vocab) logits
            hidden = self.mlm.base_model(input_ids=input_ids, **kwargs)[0]
            vocab_logits = getattr(self.mlm, self._head)(hidden[rows, position])
        else:
            vocab_logits = self.mlm(input_ids=input_ids, **kwargs).logits[rows, position]
        logits = vocab_logits[:, self.label_word_ids]
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return PromptOutput(logits, loss)


def load_prompt_model(params: dict, meta: dict, path: str | Path | None = None) -> PromptClassifier:
    """The pretrained masked LM of `model.name_or_path` (or a saved one at `path`) wrapped for the task's prompt.

    Raises:
        ModelError: the model cannot be loaded, or its checkpoint has no masked-LM head (a head initialised at
            random would make the label-word logits meaningless).
        PromptError: the task has no usable prompt for this tokenizer.
    """
    from transformers import AutoModelForMaskedLM

    encoder = PromptEncoder(pretrained_tokenizer(params), task_prompt(params, meta))
    source = str(path) if path is not None else resolve_model_path(params["model"]["name_or_path"])
    revision = None if path is not None else params["model"].get("revision")
    # fp32 master weights whatever the checkpoint stores, as flows.modeling.models.load_base_model (autocast does the rest)
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(
            source, revision=revision, dtype=torch.float32, output_loading_info=True
        )
    except (OSError, ValueError) as err:
        raise ModelError(hub_hint(params["model"]["name_or_path"], err)) from None
    # The head's own parameters (a tied decoder weight is the embeddings' and counts as the encoder's).
    head = {name for name, _ in mlm.named_parameters() if not name.startswith(mlm.base_model_prefix + ".")}
    missing = sorted(head & set(info["missing_keys"]))
    if head and len(missing) == len(head):  # e.g. a sentence-embedding checkpoint saved without its MLM head
        raise ModelError(
            f"model {params['model']['name_or_path']!r} has no masked-LM head in its checkpoint (missing "
            f"{missing[:4]}{' ...' if len(missing) > 4 else ''}): prompt-based fine-tuning needs a model "
            "pretrained with its MLM head (e.g. roberta-large, bert-base-uncased); set fewshot.prompt: false "
            "to fine-tune a classification head instead"
        )
    if missing:
        warnings.warn(
            f"masked-LM head weights {missing} were not in the checkpoint: initialised at random",
            stacklevel=2,
        )
    return PromptClassifier(mlm, encoder.label_word_ids, encoder.tokenizer.mask_token_id)
