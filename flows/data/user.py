"""User datasets (params `datasets.<name>`): a csv, jsonl or parquet file, or a Hugging Face Hub dataset.

`validate_dataset_cfg` checks an entry without reading data; `read_user_dataset` reads it into a TaskSource with
labels mapped to class ids (or floats for regression).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..metrics import METRICS, REGRESSION_METRICS
from .catalog import BUILTIN_TASKS
from .source import CORE_SPLITS, DataError, TaskSource
from .tables import as_text, load_hub, make_examples, read_frame

if TYPE_CHECKING:  # pandas is imported where a table is read: stages that read none skip its import
    import pandas as pd

_TABLE_EXTENSIONS = (".csv", ".jsonl", ".parquet")
_PATH_KEYS = ("path", "test_path", "validation_path")


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
    if name in BUILTIN_TASKS:
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


def read_user_dataset(name: str, cfg: dict) -> TaskSource:
    """Read a user dataset declared under params `datasets.<name>` (already checked by validate_dataset_cfg).

    Labels are floats when the metric is a correlation (regression); otherwise class ids in the order of
    `label_names` if given (labels may be those names, or ids into them), else of the Hub ClassLabel names,
    else of the sorted distinct labels (numerically when they are all integers).

    Args:
        name: The dataset's name.
        cfg: Its entry: `path` (+ `test_path`, `validation_path`) or `hub` (+ `hub_config`, `hub_splits`).

    Returns:
        The task with `train` plus whichever of `validation` and `test` the entry supplies.

    Raises:
        DataError: Missing or unreadable file, absent column, unparsable or missing label, or (Hub) the
            dataset or a named split could not be loaded.
    """
    where = f"datasets.{name}"
    metrics = [cfg["metric"]] if isinstance(cfg["metric"], str) else list(cfg["metric"])
    text_columns, label_column = list(cfg["text_columns"]), cfg["label_column"]
    tables, class_names = _user_tables(where, cfg)
    for frame, origin in tables.values():
        for kind, column in [*(("text", column) for column in text_columns), ("label", label_column)]:
            if column not in frame.columns:
                present = list(frame.columns)
                raise DataError(
                    f"{where}: {kind} column '{column}' not found in {origin}; columns present: {present}"
                )
    raw = {split: frame[label_column].tolist() for split, (frame, _) in tables.items()}
    origins = {split: f"column '{label_column}' of {origin}" for split, (_, origin) in tables.items()}
    if metrics[0] in REGRESSION_METRICS:
        labels, label_names = _float_labels(where, raw, origins, metrics[0]), []
    else:
        labels, label_names = _class_labels(where, raw, origins, cfg.get("label_names") or class_names)
    splits = {}
    for split, (frame, _) in tables.items():
        texts = [[as_text(value) for value in frame[column].tolist()] for column in text_columns]
        splits[split] = make_examples(texts[0], texts[1] if len(texts) == 2 else None, labels[split])
    given = ", ".join(f"{split} from {origin}" for split, (_, origin) in tables.items())
    return TaskSource(
        name=name,
        splits=splits,
        label_names=label_names,
        metrics=metrics,
        text_pair=len(text_columns) == 2,
        description=f"user dataset '{name}': {given}; text {text_columns}, label '{label_column}'",
    )


def _user_tables(where: str, cfg: dict) -> tuple[dict[str, tuple[pd.DataFrame, str]], list[str]]:
    """Split name -> (table, where it came from), and the Hub's ClassLabel names of the label (if any)."""
    if "path" in cfg:
        keys = (("train", "path"), ("validation", "validation_path"), ("test", "test_path"))
        return {
            split: (read_frame(Path(cfg[key]), f"{where}.{key}"), cfg[key])
            for split, key in keys
            if key in cfg
        }, []
    hub_splits = {"train": "train", **cfg.get("hub_splits", {})}
    dataset = load_hub(
        cfg["hub"], cfg.get("hub_config"), where, "Point 'path' at a local csv/jsonl/parquet copy."
    )
    missing = [hub_split for hub_split in hub_splits.values() if hub_split not in dataset]
    if missing:
        raise DataError(f"{where}.hub_splits: '{cfg['hub']}' has no split {missing}; it has {list(dataset)}")
    tables = {
        split: (dataset[hub_split].to_pandas(), f"split '{hub_split}' of {cfg['hub']}")
        for split, hub_split in hub_splits.items()
    }
    feature = dataset[hub_splits["train"]].features.get(cfg["label_column"])
    return tables, list(getattr(feature, "names", None) or [])


def _float_labels(
    where: str, raw: dict[str, list], origins: dict[str, str], metric: str
) -> dict[str, list[float]]:
    labels: dict[str, list[float]] = {}
    for split, values in raw.items():
        labels[split] = []
        for row, value in enumerate(values, start=1):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                raise DataError(
                    f"{where}: label {value!r} in {origins[split]}, row {row} is not a number "
                    f"(metric '{metric}' makes this a regression task)"
                )
            labels[split].append(number)
    return labels


def _class_labels(
    where: str, raw: dict[str, list], origins: dict[str, str], names: list[str]
) -> tuple[dict[str, list[int]], list[str]]:
    """Class ids: by `names` (labels being names, or ids into them) if given, else by sorted value."""
    canonical = {split: [_canonical_label(value) for value in values] for split, values in raw.items()}
    for split, values in canonical.items():
        missing = [row for row, value in enumerate(values, start=1) if value is None]
        if missing:  # rejected, not dropped: a silently smaller dataset is worse than one clear error
            rows = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise DataError(
                f"{where}: {len(missing)} missing label(s) (empty, whitespace or NaN/NA/null) in {origins[split]}, "
                f"row(s) {rows}: fill them in or remove those rows"
            )
    distinct = {label for values in canonical.values() for label in values}
    if not names:
        # Numbers first, in numeric order (so 2 < 10), then strings in alphabetical order.
        ordered = sorted(
            distinct, key=lambda label: (1, 0, label) if isinstance(label, str) else (0, label, "")
        )
        names, to_id = (
            [str(label) for label in ordered],
            {label: index for index, label in enumerate(ordered)},
        )
    elif all(str(label) in names for label in distinct):
        to_id = {label: names.index(str(label)) for label in distinct}
    elif all(isinstance(label, int) and 0 <= label < len(names) for label in distinct):
        to_id = {label: label for label in distinct}
    else:
        unknown = sorted(str(label) for label in distinct if str(label) not in names)[:5]
        raise DataError(
            f"{where}: label value(s) {unknown} in {', '.join(origins.values())} are not in "
            f"label_names {names}"
        )
    return {split: [to_id[label] for label in values] for split, values in canonical.items()}, list(names)


# Label cells that mean "no label" (pandas' own NA spellings, read as text because CSVs are read with dtype=str).
_MISSING_WORDS = frozenset({"nan", "na", "n/a", "null", "none", "<na>", "#n/a"})


def _canonical_label(value: Any) -> int | float | str | None:
    """A label as an int when integral (1, 1.0, "1"), else a float or a stripped string; None if missing."""
    if isinstance(value, str):
        value = value.strip()
        if not value or value.lower() in _MISSING_WORDS:
            return None
        try:
            return int(value)
        except ValueError:
            return value
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, bool) or pd.api.types.is_integer(value):
        return int(value)
    if pd.api.types.is_float(value):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)
