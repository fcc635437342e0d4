"""Pipeline parameters: load params.yaml with an optional profile, validate every key, resolve per-method runs.

Usage from a stage::

    params = load_params()                       # params.yaml + profiles/$PROFILE.yaml, validated
    cfg = run_params(params, "adamix_lora")      # that method's overrides applied

and from the shell: ``python -m flows.params resolve --profile smoke`` writes ``params.resolved.yaml`` (only when
its content changes, so DVC reruns nothing for an unchanged profile); ``python -m flows.params show`` prints it.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .paths import GRID_PARAMS

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

# The paper's ablations (section 4.4 and appendix), on AdaMix with adapters; flows.grid expands them into runs.
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
_RESOLVED_HEADER = (
    "# Generated by `python -m flows.params resolve` from params.yaml and a profile. Do not edit.\n"
)
_GRID_HEADER = (
    "# Generated by `python -m flows.params resolve`: the run grid dvc.yaml expands. Do not edit.\n"
)


class ParamsError(ValueError):
    """A params file or dict is invalid; the message names the file (when known) and the dotted key."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


# -- YAML reading ------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader that reads `1e-4` as a float (YAML 1.2) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` entries may legitimately be overridden by explicit keys
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _read_yaml(path: Path, *, allow_empty: bool = False) -> dict[str, Any]:
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ParamsError(f"{where}: invalid YAML: {problem}") from None
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _profile_path(profile: str, root: Path) -> Path:
    if profile.endswith((".yaml", ".yml")):
        return Path(profile)
    folder = root / "profiles"
    candidate = folder / f"{profile}.yaml"
    if candidate.is_file():
        return candidate
    available = sorted(p.stem for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    raise ParamsError(
        f"unknown profile {profile!r}: no {candidate}; available profiles: {', '.join(available) or 'none'}"
    )


# -- merging ---------------------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `override` over `base` into a new dict; neither input is modified.

    Args:
        base: the starting mapping.
        override: values that win; a mapping merges into a mapping recursively, anything else replaces.

    Returns:
        A new dict sharing no mutable values with the inputs.
    """
    merged = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict[str, Any]:
    """Read params.yaml, deep-merge a profile over it, validate, and return the result.

    Args:
        path: the params file.
        profile: a profile name (``profiles/<name>.yaml`` beside `path`) or a path ending in .yaml/.yml;
            None reads the ``PROFILE`` environment variable, and an empty value means no profile.

    Returns:
        The validated parameters as a plain dict.

    Raises:
        ParamsError: a missing file, a YAML error (file and line), an unknown profile or an invalid value
            (file and dotted key).
    """
    path = Path(path)
    params = _read_yaml(path)
    profile = (os.environ.get("PROFILE", "") if profile is None else profile).strip()
    sources: list[tuple[Path, dict[str, Any]]] = [(path, params)]
    if profile:
        profile_file = _profile_path(profile, path.parent)
        overlay = _read_yaml(profile_file, allow_empty=True)
        sources.append((profile_file, overlay))
        params = deep_merge(params, overlay)
    _drop_disabled_grids(params)
    try:
        validate(params)
    except ParamsError as err:
        origin = next((file for file, data in reversed(sources) if _has_path(data, err.path)), path)
        raise ParamsError(f"{origin}: {err}", err.path) from None
    return params


def _drop_disabled_grids(params: dict[str, Any]) -> None:
    """Remove the ablation grids set to null: how a profile switches off a grid that params.yaml defines."""
    ablations = params.get("ablations")
    if isinstance(ablations, dict) and isinstance(ablations.get("grids"), dict):
        ablations["grids"] = {name: spec for name, spec in ablations["grids"].items() if spec is not None}


def _has_path(data: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return bool(path)


def _method_override(params: Mapping[str, Any], method: str) -> dict[str, Any]:
    if method in KNOWN_METHODS:
        return dict(params.get("method_overrides") or {}).get(method) or {}
    from .grid import GridError, variant_override

    try:
        base, variant = variant_override(params, method)
    except GridError:
        raise ParamsError(f"unknown method {method!r}; known methods: {', '.join(KNOWN_METHODS)}") from None
    return deep_merge(_method_override(params, base), variant)


def run_params(params: Mapping[str, Any], method: str) -> dict[str, Any]:
    """Parameters of one method's runs: its `method_overrides` entry deep-merged over the sections.

    Args:
        params: validated parameters (from `load_params`).
        method: one of KNOWN_METHODS, or an ablation variant (``adamix_adapter.num_experts=8``, see flows.grid):
            its method's override with the variant's key set.

    Returns:
        A new dict; `method_overrides` keeps only this method's entry (the one applied), others are dropped.
    """
    override = _method_override(params, method)
    base = {key: value for key, value in params.items() if key != "method_overrides"}
    resolved = deep_merge(base, override)
    resolved["method_overrides"] = {method: copy.deepcopy(override)} if override else {}
    return resolved


# -- validation ------------------------------------------------------------------------------------------


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(str(part) for part in path)


def _unknown_key(path: tuple[str, ...], known: list[str]) -> ParamsError:
    guess = difflib.get_close_matches(str(path[-1]), known, n=1)
    hint = (
        f"did you mean '{_dotted((*path[:-1], guess[0]))}'?" if guess else f"known keys: {', '.join(known)}"
    )
    return ParamsError(f"unknown key '{_dotted(path)}' ({hint})", path)


def _check_section(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> None:
    for key in data:
        if key not in schema:
            raise _unknown_key((*prefix, key), list(schema))
    for key, spec in schema.items():
        path = (*prefix, key)
        if key not in data:
            raise ParamsError(f"missing key '{_dotted(path)}'", path)
        if isinstance(spec, tuple):
            _check_value(path, spec[1], data[key])
        elif not isinstance(data[key], Mapping):
            raise ParamsError(f"'{_dotted(path)}' must be a mapping, got {data[key]!r}", path)
        elif key not in _FREE_SECTIONS:
            _check_section(data[key], spec, path)


def _check_value(path: tuple[str, ...], check: _Check, value: Any) -> None:
    expected = check(value)
    if expected is not None:
        raise ParamsError(f"'{_dotted(path)}' must be {expected}, got {value!r}", path)


def _check_overrides(params: Mapping[str, Any]) -> None:
    for method, override in params["method_overrides"].items():
        path = ("method_overrides", method)
        if method not in KNOWN_METHODS:
            raise _unknown_key(path, list(KNOWN_METHODS))
        if not isinstance(override, Mapping):
            raise ParamsError(f"'{_dotted(path)}' must be a mapping of sections, got {override!r}", path)
        for section, values in override.items():
            if section not in _OVERRIDABLE:
                raise _unknown_key((*path, section), list(_OVERRIDABLE))
            if not isinstance(values, Mapping):
                raise ParamsError(f"'{_dotted((*path, section))}' must be a mapping, got {values!r}", path)
            for key, value in values.items():
                if key not in _SCHEMA[section]:
                    raise _unknown_key((*path, section, key), list(_SCHEMA[section]))
                _check_value((*path, section, key), _SCHEMA[section][key][1], value)
        _check_run(run_params(params, method), path)


def _check_run(params: Mapping[str, Any], where: tuple[str, ...] = ()) -> None:
    """Checks that span several keys, on the parameters one run actually gets (`where`: its override)."""
    adamix, modes, primary = (
        params["adamix"],
        params["evaluate"]["inference_modes"],
        params["report"]["primary_mode"],
    )
    suffix = f" (with '{_dotted(where)}' applied)" if where else ""
    if adamix["fixed_expert"] >= adamix["num_experts"]:
        message = f"'adamix.fixed_expert' ({adamix['fixed_expert']}) must be < 'adamix.num_experts'"
        raise ParamsError(f"{message} ({adamix['num_experts']}){suffix}", where or ("adamix", "fixed_expert"))
    if primary not in modes:
        message = f"'report.primary_mode' ({primary}) must be one of 'evaluate.inference_modes'"
        raise ParamsError(f"{message} ({', '.join(modes)}){suffix}", where or ("report", "primary_mode"))


def _check_ablations(params: Mapping[str, Any]) -> None:
    from .grid import GridError, all_variants, check_ablations

    def check_value(grid: str, section: str, key: str, value: Any) -> None:
        path = ("ablations", "grids", grid)
        if key not in _SCHEMA[section]:
            known = [f"{section}.{k}" for k in _SCHEMA[section]]
            guess = difflib.get_close_matches(f"{section}.{key}", known, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            raise ParamsError(f"'{_dotted((*path, 'key'))}': unknown key '{section}.{key}'{hint}", path)
        expected = _SCHEMA[section][key][1](value)
        if expected is not None:
            message = f"'{_dotted((*path, 'values'))}': '{section}.{key}' must be {expected}, got {value!r}"
            raise ParamsError(message, path)

    try:
        check_ablations(params, check_value)
        variants = all_variants(params)
    except GridError as err:
        raise ParamsError(str(err), ("ablations", "grids")) from None
    for name, variant in variants.items():
        _check_run(run_params(params, name), ("ablations", "grids", variant.grid))


def _check_tasks(params: Mapping[str, Any]) -> None:
    from flows import data  # lazy: flows.data pulls in the dataset tooling

    for name, cfg in params["datasets"].items():
        path = ("datasets", str(name))
        if not isinstance(name, str) or not name.strip():
            raise ParamsError(f"dataset names must be non-empty strings, got {name!r}", path)
        try:
            data.validate_dataset_cfg(name, cfg)
        except ValueError as err:
            raise ParamsError(f"'{_dotted(path)}': {err}", path) from None
    builtin = list(data.builtin_task_names())
    for where, task in [(f"tasks[{i}]", t) for i, t in enumerate(params["tasks"])] + [
        (f"ablations.tasks[{i}]", t) for i, t in enumerate(params["ablations"]["tasks"])
    ]:
        if task not in builtin and task not in params["datasets"]:
            known = builtin + list(params["datasets"])
            guess = difflib.get_close_matches(task, known, n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            raise ParamsError(
                f"unknown task {task!r} in '{where}' ({hint}built-in tasks: {', '.join(builtin)}; "
                "or define it under 'datasets')",
                ("tasks",),
            )


def _check_prompts(params: Mapping[str, Any]) -> None:
    """Prompt overrides parse and name known tasks; with `fewshot.prompt` every task has a prompt (flows.prompt)."""
    section = params["fewshot"]
    if not (section["prompt"] or section["templates"] or section["label_words"]):
        return  # flows.prompt imports torch: only when prompts are used
    from flows import data
    from flows.prompt import BUILTIN_PROMPTS, PromptError, check_label_words, parse_template

    known = [*data.builtin_task_names(), *params["datasets"]]
    for key, check in (("templates", parse_template), ("label_words", check_label_words)):
        for task, value in section[key].items():
            path = ("fewshot", key, task)
            if task not in known:
                raise _unknown_key(path, known)
            try:
                check(value)
            except PromptError as err:
                raise ParamsError(f"'{_dotted(path)}': {err}", path) from None
            builtin = BUILTIN_PROMPTS.get(task)
            if key == "label_words" and builtin and len(value) != len(builtin.label_words):
                message = (
                    f"task {task!r} has {len(builtin.label_words)} classes, got {len(value)} label words"
                )
                raise ParamsError(f"'{_dotted(path)}': {message}", path)
    if section["prompt"]:
        for task in [*params["tasks"], *params["ablations"]["tasks"]]:
            for key in ("templates", "label_words"):
                if task not in BUILTIN_PROMPTS and task not in section[key]:
                    raise ParamsError(
                        f"'fewshot.prompt' is true but task {task!r} has no built-in prompt: set "
                        f"'fewshot.{key}.{task}' (regression tasks cannot be prompted)",
                        ("fewshot", "prompt"),
                    )


def validate(params: Mapping[str, Any]) -> None:
    """Check every key, type and allowed value; raise one ParamsError for the first problem found.

    Args:
        params: merged parameters (params.yaml plus a profile).

    Raises:
        ParamsError: naming the dotted key, e.g. "unknown key 'train.epoch' (did you mean 'train.epochs'?)".
    """
    if not isinstance(params, Mapping):
        raise ParamsError(f"params must be a mapping of sections, got {type(params).__name__}")
    _check_section(params, _SCHEMA)
    _check_run(params)
    _check_overrides(params)
    _check_ablations(params)
    _check_tasks(params)
    _check_prompts(params)


# -- resolved file and command line ----------------------------------------------------------------------


def resolve_to_file(params: Mapping[str, Any], path: str | Path, grid_path: str | Path | None = None) -> bool:
    """Write `params` as YAML with sorted keys, atomically, only if the file's content would change.

    Args:
        params: resolved parameters.
        path: the output file (e.g. params.resolved.yaml).
        grid_path: if given, also write the run grid there (``grid: {tasks, splits, runs, reports}``, see
            flows.grid.grid_vars): the file dvc.yaml loads as ``vars``. DVC always loads params.yaml as vars
            too, and refuses a file that redefines its keys, so the grid lives under its own top-level key.

    Returns:
        True if a file was written, False if every file already held exactly this content.
    """
    written = _write_if_changed(Path(path), _RESOLVED_HEADER + _dump(params))
    if grid_path is not None:
        from .grid import grid_vars

        grid = {"grid": {**grid_vars(params), "reports": params["report"]["dir"]}}
        written = _write_if_changed(Path(grid_path), _GRID_HEADER + _dump(grid)) or written
    return written


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _dump(params: Mapping[str, Any]) -> str:
    plain = json.loads(json.dumps(params))  # tuples -> lists, any Mapping -> dict: what safe_dump accepts
    return yaml.safe_dump(plain, sort_keys=True, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``resolve`` writes the resolved params file, ``show`` prints it.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        0 on success, 2 on invalid parameters (the message goes to stderr, without a traceback).
    """
    parser = argparse.ArgumentParser(prog="python -m flows.params", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("resolve", "write the resolved params file"), ("show", "print resolved params")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        sub.add_argument("--profile", default=None, help="profile name or .yaml path (default: $PROFILE)")
        if name == "resolve":
            sub.add_argument("--out", default="params.resolved.yaml", help="output file")
            sub.add_argument(
                "--grid-out",
                default=None,
                help="run grid file for dvc.yaml vars (default: params.grid.yaml beside --out)",
            )
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, args.profile)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "show":
        sys.stdout.write(_dump(params))
    else:
        # The grid belongs beside the resolved params it was made from, never in whatever folder this runs in.
        grid_out = args.grid_out or Path(args.out).parent / GRID_PARAMS
        written = resolve_to_file(params, args.out, grid_out)
        print(f"{'wrote' if written else 'unchanged'}: {args.out}, {grid_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
