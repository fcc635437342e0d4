"""The params schema: every section and key of params.yaml with its default, its check and what it must be.

`DEFAULTS` is the whole default params (equal to params.yaml's; a test keeps them in sync).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InputError

KNOWN_METHODS = ("adamix_adapter", "adamix_lora", "adapter", "lora", "full")
INFERENCE_MODES = ("merge", "random", "fixed")

# -- value checks ------------------------------------------------------------------------------------------

_Check = Callable[[Any], "str | None"]  # what was expected when the value is bad, else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(low: int, high: int | None = None) -> _Check:
    expected = f"an int >= {low}" if high is None else f"an int from {low} to {high}"
    return lambda v: None if _is_int(v) and low <= v and (high is None or v <= high) else expected


def _number(low: float, high: float | None = None, *, low_open: bool = False) -> _Check:
    def check(v: Any) -> str | None:
        if not _is_number(v) or (v <= low if low_open else v < low) or (high is not None and v >= high):
            lower = f"> {low}" if low_open else f">= {low}"
            return f"a number {lower}" + (f" and < {high}" if high is not None else "")
        return None

    return check


def _choice(*allowed: str) -> _Check:
    return lambda v: None if isinstance(v, str) and v in allowed else f"one of {', '.join(allowed)}"


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "a non-empty string"


def _flag(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _nullable(check: _Check) -> _Check:
    def nullable(v: Any) -> str | None:
        expected = None if v is None else check(v)
        return None if expected is None else f"null or {expected}"

    return nullable


def _list(item: _Check, what: str, *, empty: bool = False) -> _Check:
    def check(v: Any) -> str | None:
        valid = isinstance(v, list) and (v or empty) and all(item(x) is None for x in v)
        unique = valid and len({repr(x) for x in v}) == len(v)
        return None if unique else f"a {'' if empty else 'non-empty '}list of unique {what}"

    return check


def _targets(v: Any) -> str | None:
    ok = v is None or _text(v) is None or _list(_text, "module names")(v) is None
    return None if ok else "null, a regex string, or a non-empty list of module names"


def _cron(v: Any) -> str | None:
    return None if isinstance(v, str) and len(v.split()) == 5 else "a 5-field cron expression"


def _mapping(v: Any) -> str | None:
    return None if isinstance(v, Mapping) else "a mapping"


def _per_task(value: _Check, what: str) -> _Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, Mapping) and all(_text(k) is None and value(x) is None for k, x in v.items())
        return None if ok else f"a mapping from task names to {what}"

    return check


_POSITIVE, _NATURAL = _int(1), _int(0)

# The paper's ablations (section 4.4 and appendix), on AdaMix with adapters; flows.config.grid expands them into runs.
_DEFAULT_GRIDS = {
    "num_experts": {"method": "adamix_adapter", "key": "adamix.num_experts", "values": [1, 2, 4, 8, 16]},
    "bottleneck": {"method": "adamix_adapter", "key": "adamix.bottleneck", "values": [8, 16, 32, 48, 64]},
    "share": {"method": "adamix_adapter", "key": "adamix.share", "values": ["up", "down", "none"]},
    "consistency": {"method": "adamix_adapter", "key": "train.consistency_weight", "values": [1.0, 0.0]},
}

# The schema: every section and key with its default (equal to params.yaml's, a test keeps them in sync) and
# its check. `datasets` and `method_overrides` are free-form here and checked by their own rules below.
_SCHEMA: dict[str, Any] = {
    "model": {"name_or_path": ("minilm", _text), "revision": (None, _nullable(_text))},
    "tasks": (["rotten_tomatoes"], _list(_text, "task names")),
    "datasets": {},
    "methods": (
        list(KNOWN_METHODS),
        _list(_choice(*KNOWN_METHODS), f"methods from {', '.join(KNOWN_METHODS)}"),
    ),
    "seeds": ([13, 21, 42], _list(_NATURAL, "int seeds")),
    "data": {
        "max_train_examples": (1000, _nullable(_POSITIVE)),
        "max_eval_examples": (1000, _nullable(_POSITIVE)),
        "validation_size": (300, _POSITIVE),
        "test_size": (1000, _POSITIVE),
        "split_seed": (0, _NATURAL),
        "glue_dir": (None, _nullable(_text)),
        "fewshot_dir": (None, _nullable(_text)),
        "bigbench_archive": (None, _nullable(_text)),
    },
    "fewshot": {
        "k": (0, _NATURAL),
        "prompt": (False, _flag),
        "templates": ({}, _per_task(_text, "template strings")),
        "label_words": ({}, _per_task(_list(_text, "label words"), "lists of label words")),
    },
    "train": {
        "epochs": (2, _POSITIVE),
        "batch_size": (32, _POSITIVE),
        "eval_batch_size": (128, _POSITIVE),
        "learning_rate": (5.0e-3, _number(0, low_open=True)),
        "max_length": (64, _POSITIVE),
        "warmup_ratio": (0.06, _number(0, 1)),
        "weight_decay": (0.1, _number(0)),
        "consistency_weight": (1.0, _number(0)),
        "grad_clip": (1.0, _number(0, low_open=True)),
        "device": ("auto", _choice("auto", "cpu", "cuda", "mps")),
        "precision": ("auto", _choice("auto", "fp32", "bf16", "fp16")),
        "compile": (False, _flag),
        "two_view": ("batched", _choice("batched", "sequential")),
        "eval_every_epoch": (True, _flag),
        "length_group_batches": (8, _NATURAL),
    },
    "adamix": {
        "num_experts": (4, _POSITIVE),
        "bottleneck": (16, _POSITIVE),
        "lora_alpha": (32, _number(0, low_open=True)),
        "share": ("up", _choice("up", "down", "none")),
        "inference": ("merge", _choice(*INFERENCE_MODES)),
        "fixed_expert": (0, _NATURAL),
        "placement": ("ffn", _choice("ffn", "houlsby")),
        "target_modules": (None, _targets),
        "dropout": (0.0, _number(0, 1)),
    },
    "method_overrides": {
        "adamix_lora": {"adamix": {"bottleneck": 4}, "train": {"learning_rate": 4.0e-3}},
        "lora": {"adamix": {"bottleneck": 4}, "train": {"learning_rate": 4.0e-3}},
        "full": {"train": {"learning_rate": 5.0e-5}},
    },
    "evaluate": {
        "inference_modes": (
            list(INFERENCE_MODES),
            _list(_choice(*INFERENCE_MODES), f"modes from {', '.join(INFERENCE_MODES)}"),
        )
    },
    "report": {
        "primary_mode": ("merge", _choice(*INFERENCE_MODES)),
        "decimals": (1, _int(0, 6)),
        "dir": ("reports", _text),
    },
    "ablations": {
        "tasks": ([], _list(_text, "task names", empty=True)),
        "seeds": (None, _nullable(_list(_NATURAL, "int seeds"))),
        "grids": (_DEFAULT_GRIDS, _mapping),
    },
    "flow": {
        "task_runner": ("thread", _choice("thread", "dask", "ray")),
        "max_workers": (1, _POSITIVE),
        "cron": ("0 3 * * 1", _cron),
        "deployment": ("adamix-weekly", _text),
    },
    "tracking": {"experiment": ("adamix-repro", _text)},
}
_FREE_SECTIONS = ("datasets", "method_overrides")
_OVERRIDABLE = ("train", "adamix", "evaluate")  # sections a method may override


def _defaults(schema: Any) -> Any:
    if isinstance(schema, tuple):
        return copy.deepcopy(schema[0])
    return {key: _defaults(value) if key not in _FREE_SECTIONS else value for key, value in schema.items()}


DEFAULTS: dict[str, Any] = copy.deepcopy(_defaults(_SCHEMA))


class ParamsError(InputError):
    """A params file or dict is invalid; the message names the file (when known) and the dotted key."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
