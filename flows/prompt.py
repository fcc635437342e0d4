"""Prompt-based fine-tuning (LM-BFF, Gao et al., 2021): a template with the mask token, label words as classes.

Each example is rendered into a template such as ``"{text_a} It was {mask}."``; the masked-LM head's logits at
the mask, read at the token ids of one label word per class (``terrible`` / ``great``), are the class logits.
:class:`PromptClassifier` wraps an ``AutoModelForMaskedLM`` so that its output has ``.logits`` of shape
(batch, classes): the training loop, AdaMix's two-view consistency loss and the metrics work unchanged. With
AdaMix (or LoRA) the whole MLM head stays frozen, its decoder included (it is tied to the word embeddings): only
the adaptation modules train, and no new head is added.

Template syntax: ``{text_a}``, ``{text_b}`` (sentence pairs) and exactly one ``{mask}``; a sentence may take
modifiers after a colon, comma-separated: ``nopunct`` drops one trailing punctuation mark, ``lowerfirst``
lower-cases the first letter (LM-BFF's NLI template is ``"{text_a:nopunct}? {mask}, {text_b:lowerfirst}"``).
Literal braces are written ``{{`` and ``}}``. Truncation shortens the sentences only (the longer one first, from
its end): the template and its mask always survive.
"""

from __future__ import annotations

import string
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .modeling import ModelError, load_tokenizer, resolve_model_path

_FIELDS = ("text_a", "text_b", "mask")
_MODIFIERS = ("nopunct", "lowerfirst")
_PUNCTUATION = ".?!,;:"
# Modules that map hidden states to vocabulary logits, by attribute name on the MaskedLM model: BERT family
# (`cls`), RoBERTa family and MPNet (`lm_head`). Other architectures take the full MLM forward (same logits).
_HEAD_ATTRIBUTES = ("cls", "lm_head")


class PromptError(ModelError):
    """A template or label words that cannot be used (reported like any bad model setting)."""


@dataclass(frozen=True)
class Prompt:
    """A task's template and its label words, one per class in the task's label order."""

    template: str
    label_words: tuple[str, ...]


_SENTIMENT = Prompt("{text_a} It was {mask}.", ("terrible", "great"))
_NLI_PAIR = "{text_a:nopunct}? {mask}, {text_b:lowerfirst}"
_PARAPHRASE = "{text_a} {mask}, {text_b:lowerfirst}"

BUILTIN_PROMPTS: dict[str, Prompt] = {
    # LM-BFF's manual templates and label words (Gao et al., 2021, Table 1), in the label order of flows.glue.
    "sst2": _SENTIMENT,  # negative, positive
    "rotten_tomatoes": _SENTIMENT,  # MR in LM-BFF
    "imdb": _SENTIMENT,
    "mpqa": _SENTIMENT,  # negative, positive
    "subj": Prompt("{text_a} This is {mask}.", ("subjective", "objective")),
    "cola": Prompt("{text_a} This is {mask}.", ("incorrect", "correct")),  # unacceptable, acceptable
    "mnli": Prompt(_NLI_PAIR, ("Yes", "Maybe", "No")),  # entailment, neutral, contradiction
    "rte": Prompt(_NLI_PAIR, ("Yes", "No")),  # entailment, not_entailment
    "qnli": Prompt(_NLI_PAIR, ("Yes", "No")),  # entailment, not_entailment
    "qqp": Prompt(_PARAPHRASE, ("No", "Yes")),  # not_duplicate, duplicate
    "mrpc": Prompt(_PARAPHRASE, ("No", "Yes")),  # not_equivalent, equivalent
}
"""Built-in prompts; params `fewshot.templates.<task>` and `fewshot.label_words.<task>` override them."""


@dataclass(frozen=True)
class _Part:
    literal: str
    field: str | None  # text_a, text_b, mask, or None after the last field
    modifiers: tuple[str, ...]


def parse_template(template: str) -> list[_Part]:
    """Split a template into literal text and fields, checking the syntax.

    Args:
        template: e.g. ``"{text_a} It was {mask}."``.

    Returns:
        The parts in order.

    Raises:
        PromptError: unknown field or modifier, bad braces, no ``{text_a}``, or not exactly one ``{mask}``.
    """
    if not isinstance(template, str):
        raise PromptError(f"template must be a string, got {template!r}")
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as err:
        raise PromptError(f"template {template!r}: {err} (write literal braces as {{{{ and }}}})") from None
    parts = []
    for literal, field, spec, conversion in pieces:
        if field is None:
            parts.append(_Part(literal, None, ()))
            continue
        if field not in _FIELDS or conversion:
            raise PromptError(f"template {template!r}: unknown field {{{field}}}; fields are {_FIELDS}")
        modifiers = tuple(m.strip() for m in spec.split(",")) if spec else ()
        if field == "mask" and modifiers:
            raise PromptError(f"template {template!r}: {{mask}} takes no modifiers")
        unknown = [m for m in modifiers if m not in _MODIFIERS]
        if unknown:
            raise PromptError(
                f"template {template!r}: unknown modifier(s) {unknown}; modifiers are {_MODIFIERS}"
            )
        parts.append(_Part(literal, field, modifiers))
    fields = [p.field for p in parts]
    if fields.count("mask") != 1:
        raise PromptError(f"template {template!r} must contain the mask token {{mask}} exactly once")
    if "text_a" not in fields:
        raise PromptError(f"template {template!r} must contain {{text_a}}")
    return parts


def check_label_words(words: Any) -> tuple[str, ...]:
    """Label words as a tuple: two or more distinct non-empty strings without spaces, else PromptError."""
    ok = isinstance(words, list | tuple) and len(words) >= 2
    ok = ok and all(isinstance(w, str) and w.strip() and w == w.strip() and " " not in w for w in words)
    if not ok or len(set(words)) != len(words):
        raise PromptError(f"label words must be two or more distinct single words, got {words!r}")
    return tuple(words)


def task_prompt(params: dict, meta: dict) -> Prompt:
    """The prompt of the task described by `meta`: the params' overrides, else the built-in one.

    Args:
        params: validated parameters (`fewshot.templates`, `fewshot.label_words`).
        meta: the task's meta.json (`task`, `label_names`, `is_regression`, `text_pair`).

    Returns:
        The checked Prompt, with one label word per class of the task.

    Raises:
        PromptError: a regression task, no prompt for the task, a label-word count that is not the class
            count, or a template whose sentences do not match the task (pair or single).
    """
    task = meta["task"]
    if meta.get("is_regression"):
        raise PromptError(f"task {task!r} is a regression task: prompt-based fine-tuning needs classes")
    section = params.get("fewshot") or {}
    builtin = BUILTIN_PROMPTS.get(task)
    template = (section.get("templates") or {}).get(task) or (builtin and builtin.template)
    words = (section.get("label_words") or {}).get(task) or (builtin and builtin.label_words)
    if not template or not words:
        missing = "fewshot.templates" if not template else "fewshot.label_words"
        raise PromptError(f"task {task!r} has no built-in prompt: set params key {missing}.{task}")
    parts, words = parse_template(template), check_label_words(words)
    names = meta["label_names"]
    if len(words) != len(names):
        raise PromptError(
            f"task {task!r} has {len(names)} classes {names} but {len(words)} label words {list(words)} "
            f"(fewshot.label_words.{task}: one word per class, in that order)"
        )
    has_b = any(p.field == "text_b" for p in parts)
    if has_b != bool(meta.get("text_pair")):
        kind = "sentence pairs" if meta.get("text_pair") else "single sentences"
        raise PromptError(
            f"template {template!r} of task {task!r} does not fit its {kind}: "
            + ("add {text_b}" if meta.get("text_pair") else "remove {text_b}")
        )
    return Prompt(template, words)


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


class PromptEncoder:
    """Turns normalised examples into a padded batch of rendered prompts, each with exactly one mask token.

    Passed where the pipeline passes a tokenizer: `flows.evaluate.encode` calls it.
    """

    def __init__(self, tokenizer, prompt: Prompt) -> None:
        if tokenizer.mask_token is None:
            raise PromptError(
                f"{type(tokenizer).__name__} has no mask token: prompts need a masked-LM tokenizer"
            )
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.parts = parse_template(prompt.template)
        self.label_word_ids = label_word_ids(tokenizer, prompt.label_words)

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
        masks = (inputs["input_ids"] == self.tokenizer.mask_token_id).sum(1)
        if not bool((masks == 1).all()):
            row = int((masks != 1).nonzero()[0, 0])
            raise PromptError(
                f"prompt {rendered[row]!r} has {int(masks[row])} mask tokens after tokenisation, not 1"
            )
        return dict(inputs), torch.tensor([e["label"] for e in chunk], dtype=torch.long)

    def _texts(self, example: dict) -> dict[str, str]:
        texts = {}
        for part in self.parts:
            if part.field in ("text_a", "text_b"):
                text = (example.get(part.field) or "").replace(self.tokenizer.mask_token, " ").strip()
                if "nopunct" in part.modifiers and text[-1:] in _PUNCTUATION:
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

    from .modeling import _hub_hint

    encoder = PromptEncoder(load_tokenizer(params), task_prompt(params, meta))
    source = str(path) if path is not None else resolve_model_path(params["model"]["name_or_path"])
    revision = None if path is not None else params["model"].get("revision")
    # fp32 master weights whatever the checkpoint stores, as flows.modeling.load_base_model (autocast does the rest)
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(
            source, revision=revision, dtype=torch.float32, output_loading_info=True
        )
    except (OSError, ValueError) as err:
        raise ModelError(_hub_hint(params["model"]["name_or_path"], err)) from None
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
