"""Prompts for prompt-based fine-tuning (LM-BFF, Gao et al., 2021): templates with a mask, label words as classes.

Each example is rendered into a template such as ``"{text_a} It was {mask}."``; the class logits are the masked-LM
head's logits at the mask, read at one label word per class (``terrible`` / ``great``): see
`flows.modeling.prompting`. This module holds the text side only (no torch): the built-in prompts, template
parsing and the choice of a task's prompt, so params validation can check them without loading a model.

Template syntax: ``{text_a}``, ``{text_b}`` (sentence pairs) and exactly one ``{mask}``; a sentence may take
modifiers after a colon, comma-separated: ``nopunct`` drops one trailing punctuation mark, ``lowerfirst``
lower-cases the first letter (LM-BFF's NLI template is ``"{text_a:nopunct}? {mask}, {text_b:lowerfirst}"``).
Literal braces are written ``{{`` and ``}}``. Truncation shortens the sentences only (the longer one first, from
its end): the template and its mask always survive.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

_FIELDS = ("text_a", "text_b", "mask")
_MODIFIERS = ("nopunct", "lowerfirst")
PUNCTUATION = ".?!,;:"


class PromptError(InputError):
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
    # LM-BFF's manual templates and label words (Gao et al., 2021, Table 1), in the label order of flows.data.glue and flows.data.catalog.
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
