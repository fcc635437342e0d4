"""The pipeline's data layer: turns any task into one normalised, deterministic directory of JSONL splits.

A prepared task directory holds `train.jsonl`, `validation.jsonl`, `test.jsonl` (plus any extra test split,
e.g. MNLI's `test_mismatched.jsonl`), one `{"text_a", "text_b", "label"}` object per line, and `meta.json`
describing labels, metrics and split sizes. Tasks are the built-in ones (see `flows.glue`) or user datasets
declared in params.yaml's `datasets` section (a csv/jsonl/parquet file, or a Hugging Face Hub dataset).

Preparation is: read -> drop empty texts -> drop duplicates from the pool that is split (and anything also
in a fixed evaluation split) -> carve the missing evaluation splits out of it, stratified by label -> cap
sizes -> write atomically. Every random choice ranks examples by a keyed hash of their text, so the output
is the same bytes on every run and machine, and does not depend on the order the source lists examples in.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .metrics import METRICS, REGRESSION_METRICS

Example = dict[str, Any]
"""One example: `{"text_a": str, "text_b": str | None, "label": int | float}`."""

META_FILE = "meta.json"
CORE_SPLITS: tuple[str, ...] = ("train", "validation", "test")
_DATA_CFG_INT_KEYS = ("validation_size", "test_size", "split_seed")
_DATA_CFG_CAP_KEYS = ("max_train_examples", "max_eval_examples")
_DATA_CFG_DIR_KEYS = ("glue_dir", "fewshot_dir", "bigbench_archive")
_TABLE_EXTENSIONS = (".csv", ".jsonl", ".parquet")
_PATH_KEYS = ("path", "test_path", "validation_path")
_META_KEYS = ("task", "num_labels", "label_names", "is_regression", "metrics", "primary_metric", "splits")


class DataError(ValueError):
    """Bad data or data configuration; the message names the file, key, column or row at fault."""


@dataclass
class TaskSource:
    """A task as read from its source: examples with mapped labels, before cleaning, splitting and capping.

    Attributes:
        name: The task name.
        splits: `train` (the pool that missing evaluation splits are carved from) plus whichever fixed splits
            the source provides: `validation`, `test`, and extra test splits such as `test_mismatched`.
        label_names: Class names in label-id order; empty for regression.
        metrics: Metric names from `flows.metrics.METRICS`, primary first.
        text_pair: Whether examples are sentence pairs (`text_b` set).
        description: Human-readable account of where the data came from.
        malformed: Rows the reader skipped because they could not be parsed.
    """

    name: str
    splits: dict[str, list[Example]]
    label_names: list[str]
    metrics: list[str]
    text_pair: bool
    description: str
    malformed: int = 0

    @property
    def is_regression(self) -> bool:
        """True when the task is scored by a correlation metric (labels are floats)."""
        return self.metrics[0] in REGRESSION_METRICS


def builtin_task_names() -> list[str]:
    """Names of the built-in tasks (GLUE, the few-shot-only LM-BFF tasks and the movie-review sets).

    Returns:
        The names, sorted.
    """
    return sorted(_sources().BUILTIN_TASKS)


def prepare_task(name: str, datasets_cfg: dict | None, data_cfg: dict, out_dir: str | Path) -> Path:
    """Read, normalise, split and cap one task and write it as a prepared task directory.

    Args:
        name: A built-in task name or a key of `datasets_cfg`.
        datasets_cfg: params.yaml's `datasets` section (user datasets by name); may be empty or None.
        data_cfg: params.yaml's `data` section (split sizes, caps, seed, local data folders).
        out_dir: Directory to write. It is replaced only once the new one is complete.

    Returns:
        `out_dir` as a Path.

    Raises:
        DataError: Unknown task, bad configuration, or unreadable or unusable data.
    """
    _check_data_cfg(data_cfg)
    declared = datasets_cfg or {}
    sources = _sources()
    if name in sources.BUILTIN_TASKS:
        source = sources.read_builtin(name, data_cfg)
        test_size, validation_size = data_cfg["test_size"], data_cfg["validation_size"]
    elif name in declared:
        entry = declared[name]
        validate_dataset_cfg(name, entry)
        source = sources.read_user_dataset(name, entry)
        test_size = entry.get("test_size", data_cfg["test_size"])
        validation_size = entry.get("validation_size", data_cfg["validation_size"])
    else:
        raise DataError(_unknown_task_message(name, sorted(sources.BUILTIN_TASKS), sorted(declared)))
    splits, meta = _build(source, data_cfg, test_size=test_size, validation_size=validation_size)
    return write_task_dir(out_dir, splits, meta)


def load_split(task_dir: str | Path, split: str) -> list[Example]:
    """Read one split of a prepared task directory.

    Args:
        task_dir: A directory written by `prepare_task` or `flows.fewshot.make_fewshot_split`.
        split: Split name, e.g. `train`, `validation`, `test`, `test_mismatched`.

    Returns:
        The examples, in file order.

    Raises:
        DataError: The split file is missing or a line is not a JSON example.
    """
    path = Path(task_dir) / f"{split}.jsonl"
    if not path.is_file():
        present = sorted(p.stem for p in Path(task_dir).glob("*.jsonl"))
        raise DataError(f"split file not found: {path} (splits present: {present or 'none'})")
    examples = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                example = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {line_number}: not valid JSON ({error.msg})") from error
            if not isinstance(example, dict) or "text_a" not in example or "label" not in example:
                raise DataError(f"{path}, line {line_number}: expected an object with 'text_a' and 'label'")
            examples.append(example)
    return examples


def read_meta(task_dir: str | Path) -> dict:
    """Read and check the `meta.json` of a prepared task directory.

    Args:
        task_dir: A prepared task directory.

    Returns:
        The metadata dictionary.

    Raises:
        DataError: The file is missing, not valid JSON, not an object, or lacks a required key.
    """
    path = Path(task_dir) / META_FILE
    if not path.is_file():
        raise DataError(f"task metadata not found: {path} (is {task_dir} a prepared task directory?)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise DataError(f"{path}: missing key(s) {missing}")
    return meta


def write_task_dir(
    out_dir: str | Path, splits: dict[str, list[Example]], meta: dict, copies: dict[str, Path] | None = None
) -> Path:
    """Write splits and metadata as a prepared task directory, atomically.

    Everything is written into a temporary sibling directory that is renamed into place only when complete;
    an existing `out_dir` is replaced only then, so a failure never leaves a directory that looks complete.

    Args:
        out_dir: Destination directory.
        splits: Split name -> examples; each becomes `<split>.jsonl`.
        meta: Written as `meta.json`.
        copies: Split name -> an existing split file, copied unchanged.

    Returns:
        `out_dir` as a Path.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        for split, examples in splits.items():
            _write_jsonl(staging / f"{split}.jsonl", examples)
        for split, source_file in (copies or {}).items():
            shutil.copyfile(source_file, staging / f"{split}.jsonl")
        (staging / META_FILE).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def validate_dataset_cfg(name: str, cfg: dict) -> None:
    """Check one `datasets.<name>` entry of params.yaml without reading its data.

    Args:
        name: The dataset's name (its key under `datasets`).
        cfg: The entry: `path` or `hub`, `text_columns`, `label_column`, `metric`, and optionally
            `test_path`/`test_size`, `validation_path`/`validation_size`, `label_names`, `hub_config`,
            `hub_splits`.

    Raises:
        DataError: The first problem found, naming the key.
    """
    where = f"datasets.{name}"
    if not isinstance(cfg, dict):
        raise DataError(f"{where} must be a mapping of settings, got {type(cfg).__name__}")
    if name in _sources().BUILTIN_TASKS:
        raise DataError(f"{where} has the name of a built-in task; give the dataset another name")
    unknown = sorted(set(cfg) - set(_ENTRY_RULES))
    if unknown:
        hints = {key: difflib.get_close_matches(key, list(_ENTRY_RULES), n=1) for key in unknown}
        said = ", ".join(
            f"'{key}'" + (f" (did you mean '{hints[key][0]}'?)" if hints[key] else "") for key in unknown
        )
        raise DataError(f"{where}: unknown key(s) {said}; allowed keys: {sorted(_ENTRY_RULES)}")
    if ("path" in cfg) == ("hub" in cfg):
        raise DataError(f"{where}: give exactly one of 'path' (a local file) or 'hub' (a Hub dataset id)")
    missing = [key for key in ("text_columns", "label_column", "metric") if key not in cfg]
    if missing:
        raise DataError(f"{where}: missing required key(s) {missing}")
    for key, value in cfg.items():
        is_valid, expected = _ENTRY_RULES[key]
        if not is_valid(value):
            raise DataError(f"{where}.{key} must be {expected}, got {value!r}")
    source, other_keys = ("path", ("hub_config", "hub_splits")) if "path" in cfg else ("hub", _PATH_KEYS[1:])
    clash = [key for key in other_keys if key in cfg]
    if clash:
        raise DataError(f"{where}: {clash} cannot be combined with '{source}'")
    for key in (key for key in _PATH_KEYS if key in cfg):
        suffix = Path(cfg[key]).suffix.lower()
        if suffix not in _TABLE_EXTENSIONS:
            raise DataError(
                f"{where}.{key}: unsupported file type '{suffix}'; use one of {list(_TABLE_EXTENSIONS)}"
            )
    for split in ("test", "validation"):
        if f"{split}_path" in cfg and f"{split}_size" in cfg:
            raise DataError(f"{where}: give {split}_path or {split}_size, not both")
    if cfg["label_column"] in cfg["text_columns"]:
        raise DataError(f"{where}: label_column '{cfg['label_column']}' is also one of the text_columns")
    metrics = [cfg["metric"]] if isinstance(cfg["metric"], str) else cfg["metric"]
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown:
        raise DataError(f"{where}.metric: unknown metric(s) {unknown}; supported: {list(METRICS)}")
    if len({metric in REGRESSION_METRICS for metric in metrics}) > 1:
        raise DataError(
            f"{where}.metric mixes regression ({list(REGRESSION_METRICS)}) and classification metrics"
        )
    if "label_names" in cfg and metrics[0] in REGRESSION_METRICS:
        raise DataError(
            f"{where}: label_names is for classification, but metric '{metrics[0]}' means regression"
        )


# --- configuration checks -------------------------------------------------------------------------------


def _sources() -> ModuleType:
    # The readers (flows.glue) build on TaskSource and DataError from this module, so import them on use.
    from . import glue

    return glue


def _check_data_cfg(data_cfg: dict) -> None:
    if not isinstance(data_cfg, dict):
        raise DataError(f"params section 'data' must be a mapping, got {type(data_cfg).__name__}")
    for key in (*_DATA_CFG_INT_KEYS, *_DATA_CFG_CAP_KEYS, *_DATA_CFG_DIR_KEYS):
        if key not in data_cfg:
            raise DataError(f"params key data.{key} is missing")
    for key in _DATA_CFG_INT_KEYS + _DATA_CFG_CAP_KEYS:
        value, optional = data_cfg[key], key in _DATA_CFG_CAP_KEYS
        if optional and value is None:
            continue
        least = 0 if key == "split_seed" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            kind = "null or " if optional else ""
            raise DataError(f"params key data.{key} must be {kind}an integer >= {least}, got {value!r}")
    for key in _DATA_CFG_DIR_KEYS:
        if data_cfg[key] is not None and not isinstance(data_cfg[key], str | os.PathLike):
            raise DataError(f"params key data.{key} must be null or a path, got {data_cfg[key]!r}")


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_names(value: Any, least: int, most: int | None = None) -> bool:
    return (
        isinstance(value, list)
        and least <= len(value) <= (most or len(value))
        and all(map(_is_name, value))
        and len(set(value)) == len(value)
    )


def _is_size(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value >= 1) or (isinstance(value, float) and 0 < value < 1)


# Every key a `datasets.<name>` entry may have: (check of its value on its own, what it must be).
_ENTRY_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "path": (_is_name, "a csv, jsonl or parquet file path"),
    "test_path": (_is_name, "a csv, jsonl or parquet file path"),
    "validation_path": (_is_name, "a csv, jsonl or parquet file path"),
    "hub": (_is_name, "a Hugging Face Hub dataset id such as 'org/name'"),
    "hub_config": (_is_name, "a configuration name"),
    "hub_splits": (
        lambda value: isinstance(value, dict) and bool(value) and set(value) <= set(CORE_SPLITS)
        and all(map(_is_name, value.values())),
        f"a mapping from some of {list(CORE_SPLITS)} to Hub split names",
    ),
    "text_columns": (lambda value: _is_names(value, 1, 2), "a list of one or two distinct column names"),
    "label_column": (_is_name, "a column name"),
    "metric": (lambda value: _is_name(value) or _is_names(value, 1), "a metric name or a list of names"),
    "test_size": (_is_size, "an integer >= 1 or a fraction in (0, 1)"),
    "validation_size": (_is_size, "an integer >= 1 or a fraction in (0, 1)"),
    "label_names": (lambda value: _is_names(value, 2), "a list of two or more distinct class names"),
}  # fmt: skip


def _unknown_task_message(name: str, builtin: list[str], declared: list[str]) -> str:
    close = difflib.get_close_matches(name, builtin + declared, n=1)
    return (
        f"unknown task '{name}'"
        + (f" (did you mean '{close[0]}'?)" if close else "")
        + f"; built-in tasks: {builtin}; datasets declared in params: {declared or 'none'}"
    )


# --- cleaning, splitting, capping -----------------------------------------------------------------------


def _build(
    source: TaskSource, data_cfg: dict, *, test_size: int | float, validation_size: int | float
) -> tuple[dict[str, list[Example]], dict]:
    """Clean, deduplicate, split and cap a source; return the splits (in file order) and the metadata."""
    seed, stratify = data_cfg["split_seed"], not source.is_regression
    dropped = {"empty_text": 0, "duplicate": 0, "malformed": source.malformed}
    fixed: dict[str, list[Example]] = {}
    for split, examples in source.splits.items():
        kept = [example for example in examples if _has_texts(example, source.text_pair)]
        dropped["empty_text"] += len(examples) - len(kept)
        fixed[split] = kept
    pool = fixed.pop("train")
    # Keep the first copy of each text in the pool, and none that is also in a fixed evaluation split.
    seen = {_text_key(example) for examples in fixed.values() for example in examples}
    unique = []
    for example in pool:
        key = _text_key(example)
        if key not in seen:
            seen.add(key)
            unique.append(example)
    dropped["duplicate"] = len(pool) - len(unique)
    if stratify:
        classes = {example["label"] for examples in (unique, *fixed.values()) for example in examples}
        if len(classes) < 2:
            found = [source.label_names[label] for label in sorted(classes)]
            raise DataError(
                f"task '{source.name}' has a single class {found} after cleaning; it needs two or more"
            )

    to_carve = {
        split: size
        for split, size in (("test", test_size), ("validation", validation_size))
        if split not in fixed
    }
    counts = {
        split: size if isinstance(size, int) else max(1, round(size * len(unique)))
        for split, size in to_carve.items()
    }
    if sum(counts.values()) >= len(unique):
        wanted = " + ".join(f"{split}_size={count}" for split, count in counts.items())
        raise DataError(
            f"task '{source.name}' has {len(unique)} usable training examples, too few to carve {wanted} "
            "out of them and keep some for training"
        )
    for split, count in counts.items():
        fixed[split], unique = stratified_take(unique, count, seed, split, stratify)
    caps = {"train": data_cfg["max_train_examples"]}
    splits = {"train": unique, "validation": fixed.pop("validation"), "test": fixed.pop("test"), **fixed}
    for split, examples in splits.items():
        cap = caps.get(split, data_cfg["max_eval_examples"])
        if cap is not None and len(examples) > cap:
            splits[split] = stratified_take(examples, cap, seed, f"cap-{split}", stratify)[0]

    meta = {
        "task": source.name,
        "num_labels": 1 if source.is_regression else len(source.label_names),
        "label_names": [] if source.is_regression else list(source.label_names),
        "is_regression": source.is_regression,
        "metrics": list(source.metrics),
        "primary_metric": source.metrics[0],
        "text_pair": source.text_pair,
        "splits": {split: len(examples) for split, examples in splits.items()},
        "extra_test_splits": [split for split in splits if split not in CORE_SPLITS],
        "source": source.description,
        "dropped": dropped,
    }
    return splits, meta


def _has_texts(example: Example, text_pair: bool) -> bool:
    texts = (example["text_a"], example["text_b"]) if text_pair else (example["text_a"],)
    return all(isinstance(text, str) and text.strip() for text in texts)


def _text_key(example: Example) -> tuple[str, str | None]:
    return example["text_a"], example.get("text_b")


def stratified_take(
    examples: list[Example], count: int, seed: int, salt: str, stratify: bool
) -> tuple[list[Example], list[Example]]:
    """Pick `count` examples deterministically, keeping label proportions; return (picked, rest).

    Within each label, examples are ranked by a hash of (seed, salt, text), so the choice depends on neither
    the input order nor the Python process. Class quotas are proportional, rounded by largest remainder.
    Both returned lists keep the input order.

    Args:
        examples: Examples to pick from.
        count: How many to pick; all of them when `count >= len(examples)`.
        seed: Split seed.
        salt: Distinguishes independent draws made with the same seed (e.g. `test`, `validation`).
        stratify: Keep label proportions (classification); otherwise pick from all examples at once.

    Returns:
        The picked examples and the remaining ones.
    """
    if count <= 0 or count >= len(examples):
        return (list(examples), []) if count > 0 else ([], list(examples))
    groups: dict[Any, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(example["label"] if stratify else None, []).append(index)
    labels = sorted(groups, key=lambda label: (label is None, label))
    total = len(examples)
    quotas = {label: count * len(groups[label]) // total for label in labels}
    by_remainder = sorted(labels, key=lambda label: -(count * len(groups[label]) % total))
    for label in by_remainder[: count - sum(quotas.values())]:
        quotas[label] += 1
    picked: set[int] = set()
    for label in labels:
        ranked = sorted(groups[label], key=lambda index: (_rank(seed, salt, examples[index]), index))
        picked.update(ranked[: quotas[label]])
    chosen = [example for index, example in enumerate(examples) if index in picked]
    rest = [example for index, example in enumerate(examples) if index not in picked]
    return chosen, rest


def _rank(seed: int, salt: str, example: Example) -> bytes:
    text = f"{seed}\x1f{salt}\x1f{example['text_a']}\x1f{example.get('text_b') or ''}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


# --- writing --------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, examples: Iterable[Example]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for example in examples:
            record = {"text_a": example["text_a"], "text_b": example.get("text_b"), "label": example["label"]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _swap_into_place(staging: Path, out: Path) -> None:
    if not out.exists() and not out.is_symlink():
        os.replace(staging, out)
        return
    if not out.is_dir() or out.is_symlink():
        raise DataError(f"output path {out} exists and is not a directory; remove it first")
    retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
    os.replace(out, retired)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(retired, out)
        raise
    shutil.rmtree(retired, ignore_errors=True)
