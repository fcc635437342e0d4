"""Prepared task folders: read -> clean -> deduplicate -> split -> cap -> write atomically, and read them back.

A prepared task directory holds `train.jsonl`, `validation.jsonl`, `test.jsonl` (plus any extra test split,
e.g. MNLI's `test_mismatched.jsonl`), one `{"text_a", "text_b", "label"}` object per line, and `meta.json`
describing the task's `kind`, labels, metrics and split sizes. Tasks are the built-in ones (`flows.data.catalog`)
or user datasets declared in params.yaml's `datasets` section (`flows.data.user`). Generation tasks (`kind`
generation: the label is a target text, evaluation rows also carry `references`) are prepared by
`flows.data.generation`; what follows is the classification path.

Preparation is: read -> drop empty texts -> drop duplicates from the pool that is split (and anything also
in a fixed evaluation split) -> carve the missing evaluation splits out of it, stratified by label -> cap
sizes -> write atomically. Every random choice ranks examples by a keyed hash of their text, so the output
is the same bytes on every run and machine, and does not depend on the order the source lists examples in.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .catalog import BUILTIN_TASKS, read_builtin
from .generation import build_generation
from .source import (
    CLASSIFICATION,
    CORE_SPLITS,
    GENERATION,
    META_FILE,
    DataError,
    Example,
    TaskSource,
    carve_counts,
    keyed_rank,
)
from .user import read_user_dataset, validate_dataset_cfg

_DATA_CFG_INT_KEYS = ("validation_size", "test_size", "split_seed")
_DATA_CFG_CAP_KEYS = ("max_train_examples", "max_eval_examples")
_DATA_CFG_DIR_KEYS = ("glue_dir", "fewshot_dir", "bigbench_archive")
_DATA_CFG_OPTIONAL_DIR_KEYS = ("e2e_dir", "webnlg_dir", "dart_dir")  # read with .get: absent means null
_META_KEYS = ("task", "num_labels", "label_names", "is_regression", "metrics", "primary_metric", "splits")


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
    if name in BUILTIN_TASKS:
        source = read_builtin(name, data_cfg)
        test_size, validation_size = data_cfg["test_size"], data_cfg["validation_size"]
    elif name in declared:
        entry = declared[name]
        validate_dataset_cfg(name, entry)
        source = read_user_dataset(name, entry)
        test_size = entry.get("test_size", data_cfg["test_size"])
        validation_size = entry.get("validation_size", data_cfg["validation_size"])
    else:
        raise DataError(_unknown_task_message(name, sorted(BUILTIN_TASKS), sorted(declared)))
    build = build_generation if source.kind == GENERATION else _build
    splits, meta = build(source, data_cfg, test_size=test_size, validation_size=validation_size)
    return write_task_dir(out_dir, splits, meta)


def load_split(task_dir: str | Path, split: str) -> list[Example]:
    """Read one split of a prepared task directory.

    Args:
        task_dir: A directory written by `prepare_task` or `flows.stages.fewshot.make_fewshot_split`.
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
        The metadata dictionary; `kind` is "classification" where the file has none (folders prepared before
        generation tasks existed).

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
    meta.setdefault("kind", CLASSIFICATION)
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
    for key in (*_DATA_CFG_DIR_KEYS, *_DATA_CFG_OPTIONAL_DIR_KEYS):
        value = data_cfg.get(key)
        if value is not None and not isinstance(value, str | os.PathLike):
            raise DataError(f"params key data.{key} must be null or a path, got {value!r}")


def _unknown_task_message(name: str, builtin: list[str], declared: list[str]) -> str:
    close = difflib.get_close_matches(name, builtin + declared, n=1)
    return (
        f"unknown task '{name}'"
        + (f" (did you mean '{close[0]}'?)" if close else "")
        + f"; built-in tasks: {builtin}; datasets declared in params: {declared or 'none'}"
    )


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

    sizes = {"test": test_size, "validation": validation_size}
    counts = carve_counts(source.name, sizes, fixed, len(unique), "usable training examples")
    for split, count in counts.items():
        fixed[split], unique = stratified_take(unique, count, seed, split, stratify)
    caps = {"train": data_cfg["max_train_examples"]}
    splits = {"train": unique, "validation": fixed.pop("validation"), "test": fixed.pop("test"), **fixed}
    unused: list[Example] = []
    for split, examples in splits.items():
        cap = caps.get(split, data_cfg["max_eval_examples"])
        if cap is not None and len(examples) > cap:
            splits[split], rest = stratified_take(examples, cap, seed, f"cap-{split}", stratify)
            unused += rest
    if data_cfg.get("test_from_unused"):  # a larger test split; train and validation stay as they are
        splits["test"] = splits["test"] + unused

    meta = {
        "task": source.name,
        "kind": CLASSIFICATION,
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
    if data_cfg.get("test_from_unused"):
        meta["test_from_unused"] = len(unused)  # test examples taken from what the caps left out
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
    return keyed_rank(seed, salt, example["text_a"], example.get("text_b") or "")


def _write_jsonl(path: Path, examples: Iterable[Example]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for example in examples:
            record = {"text_a": example["text_a"], "text_b": example.get("text_b"), "label": example["label"]}
            if "references" in example:  # a generation task's evaluation row
                record["references"] = example["references"]
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
