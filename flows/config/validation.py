"""Params against the models of flows.config.schema: pydantic's first error as one `ParamsError`.

Pydantic reports every error, each with its `loc` (the path of keys) and `type`. The one reported is the first in
params.yaml's reading order: in each section, unknown keys first (in the order written), then the section's keys in
the model's order, depth first. Its message names the dotted key:

- ``extra_forbidden`` (and ``invalid_key``, a key that is no string): ``unknown key 'train.epoch' (did you mean 'train.epochs'?)`` (difflib's closest known key,
  else the list of known keys);
- ``missing``: ``missing key 'data.split_seed'``;
- anything else: ``'<key>' must be <what>, got <value>``, where the key is the section key the error is in (an error
  inside a list or mapping value names the whole value) and <what> its type's `Expect` phrase, or "a mapping" for
  a section that is not one.

`ParamsError.path` is that key's path, so that load_params can name the file that set it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .fields import expected
from .schema import Params, ParamsError

_Rank = tuple[int, int]


def dotted(path: tuple[Any, ...]) -> str:
    """``("train", "epochs")`` -> ``train.epochs``."""
    return ".".join(str(part) for part in path)


def unknown_key(path: tuple[str, ...], known: list[str]) -> ParamsError:
    """The error for an unknown key: the closest known one as a hint, else every known key."""
    guess = difflib.get_close_matches(str(path[-1]), known, n=1)
    hint = f"did you mean '{dotted((*path[:-1], guess[0]))}'?" if guess else f"known keys: {', '.join(known)}"
    return ParamsError(f"unknown key '{dotted(path)}' ({hint})", path)


def check_schema(params: Mapping[str, Any]) -> None:
    """Validate `params` against `Params` (every key, type and allowed value).

    Raises:
        ParamsError: for the first problem in reading order (see the module docstring).
    """
    try:
        Params.model_validate(dict(params))
    except ValidationError as err:
        errors = err.errors(include_url=False, include_context=False, include_input=False)
        first = min(errors, key=lambda error: _locate(error["loc"], params)[2])
        raise _translate(first, params) from None


def _locate(loc: tuple[Any, ...], data: Any) -> tuple[type[BaseModel], tuple[str, ...], list[_Rank]]:
    """The model that holds the key an error is about, that key's path, and its rank in reading order.

    The path follows `loc` through section models and stops at the first key that is no section (a value, or an
    unknown key). Ranks: (0, position written) for an unknown key, (1, position in the model) for a known one.
    """
    model: type[BaseModel] = Params
    ranks: list[_Rank] = []
    for depth, part in enumerate(loc):
        fields = model.model_fields
        if part not in fields:
            written = list(data) if isinstance(data, Mapping) else []
            ranks.append((0, written.index(part) if part in written else len(written)))
            return model, tuple(loc[: depth + 1]), ranks
        ranks.append((1, list(fields).index(part)))
        section = _section_model(model, part)
        if section is None or depth == len(loc) - 1:
            return model, tuple(loc[: depth + 1]), ranks
        model, data = section, data[part]
    return model, tuple(loc), ranks


def _section_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    annotation = model.model_fields[key].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _translate(error: ErrorDetails, params: Mapping[str, Any]) -> ParamsError:
    model, path, _ = _locate(error["loc"], params)
    exact = path == tuple(error["loc"])
    if exact and error["type"] in ("extra_forbidden", "invalid_key"):  # invalid_key: not a string
        return unknown_key(path, list(model.model_fields))
    if exact and error["type"] == "missing":
        return ParamsError(f"missing key '{dotted(path)}'", path)
    value: Any = params
    for part in path:
        value = value[part]
    is_section = _section_model(model, path[-1]) is not None
    what = "a mapping" if is_section else expected(model.model_fields[path[-1]])
    return ParamsError(f"'{dotted(path)}' must be {what}, got {value!r}", path)
