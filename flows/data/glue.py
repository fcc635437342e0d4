"""The eight GLUE tasks: the original GLUE folder layout (`data.glue_dir`) or `nyu-mll/glue` on the Hub.

Column positions are those of the GLUE files (the ones transformers' GLUE processors read); label ids follow
`nyu-mll/glue`'s ClassLabel order, so both sources give the same ids. GLUE hides its test labels, so the GLUE dev
set becomes our `test` split and `flows.data.prepare` carves `validation` out of GLUE train.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from .source import DataError, Example, TaskSource
from .tables import BINARY_LABELS, load_hub, make_examples

_GLUE_HUB = "nyu-mll/glue"


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
        folder="CoLA", label_names=("unacceptable", "acceptable"), file_labels=BINARY_LABELS,
        metrics=("matthews",), columns=(3, None, 1), header=None, eval_files=_DEV,
        hub_columns=("sentence", None), hub_eval_splits=_HUB_DEV,
    ),
    "sst2": _GlueLayout(
        folder="SST-2", label_names=("negative", "positive"), file_labels=BINARY_LABELS,
        metrics=("accuracy",), columns=(0, None, 1), header=("sentence", None, "label"), eval_files=_DEV,
        hub_columns=("sentence", None), hub_eval_splits=_HUB_DEV,
    ),
    "mrpc": _GlueLayout(
        folder="MRPC", label_names=("not_equivalent", "equivalent"), file_labels=BINARY_LABELS,
        metrics=("accuracy", "f1"), columns=(3, 4, 0), header=("#1 String", "#2 String", "Quality"),
        eval_files=_DEV, hub_columns=("sentence1", "sentence2"), hub_eval_splits=_HUB_DEV,
    ),
    "qqp": _GlueLayout(
        folder="QQP", label_names=("not_duplicate", "duplicate"), file_labels=BINARY_LABELS,
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


def read_glue(name: str, glue_dir: str | Path | None) -> TaskSource:
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
    dataset = load_hub(_GLUE_HUB, name, f"GLUE task '{name}'", hint)
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
        splits[split] = make_examples(frame[col_a].tolist(), frame[col_b].tolist() if col_b else None, labels)
    return splits
