"""Prompts for prompt-based fine-tuning (LM-BFF, Gao et al., 2021): templates with a mask, label words as classes.

Each example is rendered into a template such as ``"{text_a} It was {mask}."``; the class logits are the masked-LM
head's logits at the mask, read at one label word per class (``terrible`` / ``great``): see
`flows.modeling.prompting`. A causal LM reads the label word as the next token after the prompt, so its templates
(`BUILTIN_CAUSAL_PROMPTS`) end with the mask: ``"{text_a} It was {mask}"`` (`flows.modeling.prompting_causal`). This module holds the text side only (no torch): the built-in prompts, template
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

# LM-BFF's NLI template puts the label word between the sentences; for the BIG-bench NLI tasks, as for MNLI and RTE.
BUILTIN_PROMPTS["presuppositions_nli"] = Prompt(
    _NLI_PAIR, ("Yes", "Maybe", "No")
)  # entailment, neutral, contra.
BUILTIN_PROMPTS["epistemic_reasoning"] = Prompt(_NLI_PAIR, ("Yes", "No"))  # entailment, non-entailment

_CAUSAL_SENTIMENT = Prompt("{text_a} It was {mask}", ("terrible", "great"))
# A causal LM cannot see text after the label word, so the pair templates ask about the second sentence and the
# label word answers: the premise, then "Question: <hypothesis>? Answer: Yes / Maybe / No".
_CAUSAL_NLI_PAIR = "{text_a} Question: {text_b:nopunct}? Answer: {mask}"
_CAUSAL_PARAPHRASE = '{text_a} Question: does that mean "{text_b:nopunct}"? Answer: {mask}'
BUILTIN_CAUSAL_PROMPTS: dict[str, Prompt] = {
    # LM-BFF's templates with the mask moved to the end (nothing may follow it), same label words and label order.
    "sst2": _CAUSAL_SENTIMENT,
    "rotten_tomatoes": _CAUSAL_SENTIMENT,
    "imdb": _CAUSAL_SENTIMENT,
    "mpqa": _CAUSAL_SENTIMENT,
    "cola": Prompt("{text_a} This is {mask}", ("incorrect", "correct")),
    "mnli": Prompt(_CAUSAL_NLI_PAIR, ("Yes", "Maybe", "No")),
    "rte": Prompt(_CAUSAL_NLI_PAIR, ("Yes", "No")),
    "qnli": Prompt(_CAUSAL_NLI_PAIR, ("Yes", "No")),
    "qqp": Prompt(_CAUSAL_PARAPHRASE, ("No", "Yes")),
    "mrpc": Prompt(_CAUSAL_PARAPHRASE, ("No", "Yes")),
    "presuppositions_nli": Prompt(_CAUSAL_NLI_PAIR, ("Yes", "Maybe", "No")),
    "epistemic_reasoning": Prompt(_CAUSAL_NLI_PAIR, ("Yes", "No")),
}
"""Built-in prompts for causal LMs (the mask ends the template); the same params overrides apply."""


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


def check_causal_template(template: str) -> list[_Part]:
    """Parse a template for a causal LM, which reads the label word as the next token after the prompt.

    Args:
        template: e.g. ``"{text_a} It was {mask}"``.

    Returns:
        The parts in order; the mask is the last field and only whitespace may follow it.

    Raises:
        PromptError: the template does not parse, or text follows the mask.
    """
    parts = parse_template(template)
    mask = [p.field for p in parts].index("mask")
    # Each part is the literal text before its field: what follows the mask is the later parts, fields included.
    after = "".join(p.literal + (f"{{{p.field}}}" if p.field else "") for p in parts[mask + 1 :]).strip()
    if after:
        raise PromptError(
            f"template {template!r} has text after {{mask}} ({after!r}): a causal LM reads the label word as the "
            'next token after the prompt, so {mask} must end the template, e.g. "{text_a} It was {mask}"'
        )
    return parts


def check_label_words(words: Any) -> tuple[str, ...]:
    """Label words as a tuple: two or more distinct non-empty strings without spaces, else PromptError."""
    ok = isinstance(words, list | tuple) and len(words) >= 2
    ok = ok and all(isinstance(w, str) and w.strip() and w == w.strip() and " " not in w for w in words)
    if not ok or len(set(words)) != len(words):
        raise PromptError(f"label words must be two or more distinct single words, got {words!r}")
    return tuple(words)


def task_prompt(params: dict, meta: dict, causal: bool = False) -> Prompt:
    """The prompt of the task described by `meta`: the params' overrides, else the built-in one.

    Args:
        params: validated parameters (`fewshot.templates`, `fewshot.label_words`).
        meta: the task's meta.json (`task`, `label_names`, `is_regression`, `text_pair`).
        causal: for a causal LM: the built-in prompt is the one of `BUILTIN_CAUSAL_PROMPTS`, and the template
            must end with the mask.

    Returns:
        The checked Prompt, with one label word per class of the task.

    Raises:
        PromptError: a regression task, no prompt for the task, a label-word count that is not the class
            count, a template whose sentences do not match the task (pair or single), or (causal) text after
            the mask.
    """
    task = meta["task"]
    if meta.get("is_regression"):
        raise PromptError(f"task {task!r} is a regression task: prompt-based fine-tuning needs classes")
    section = params.get("fewshot") or {}
    builtin = (BUILTIN_CAUSAL_PROMPTS if causal else BUILTIN_PROMPTS).get(task)
    template = (section.get("templates") or {}).get(task) or (builtin and builtin.template)
    words = (section.get("label_words") or {}).get(task) or (builtin and builtin.label_words)
    if not template or not words:
        missing = "fewshot.templates" if not template else "fewshot.label_words"
        kind = " for a causal LM" if causal else ""
        raise PromptError(f"task {task!r} has no built-in prompt{kind}: set params key {missing}.{task}")
    parts = check_causal_template(template) if causal else parse_template(template)
    words = check_label_words(words)
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
