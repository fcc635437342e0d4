"""What a task is once read: an example, a task as its source gives it, and the error bad data raises."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..metrics import REGRESSION_METRICS

Example = dict[str, Any]
"""One example: `{"text_a": str, "text_b": str | None, "label": int | float}`; for a generation task the label is
the target text, and a prepared evaluation row also has `references` (every target of its source)."""
META_FILE = "meta.json"
CORE_SPLITS: tuple[str, ...] = ("train", "validation", "test")
CLASSIFICATION, GENERATION = "classification", "generation"
"""The two kinds of task (meta.json `kind`): labels or scores to predict, or texts to generate."""


class DataError(InputError):
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
        kind: `CLASSIFICATION` (labels or scores) or `GENERATION` (each example a (source, target text) pair).
        metric_suite: For generation, the NLG metric suite that scores it (`e2e` or `webnlg`); else None.
    """

    name: str
    splits: dict[str, list[Example]]
    label_names: list[str]
    metrics: list[str]
    text_pair: bool
    description: str
    malformed: int = 0
    kind: str = CLASSIFICATION
    metric_suite: str | None = None

    @property
    def is_regression(self) -> bool:
        """True when the task is scored by a correlation metric (labels are floats)."""
        return self.metrics[0] in REGRESSION_METRICS


def keyed_rank(seed: int, salt: str, *texts: str) -> bytes:
    """The sort key of every deterministic choice: a hash of the split seed, the draw's salt and the texts."""
    joined = "\x1f".join((str(seed), salt, *texts))
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=8).digest()


def carve_counts(
    task: str, sizes: dict[str, int | float], fixed: Any, available: int, what: str
) -> dict[str, int]:
    """How many items to carve for each evaluation split the source does not provide (test first).

    `sizes` maps "test" and "validation" to a count or a fraction of `available`; splits in `fixed` are skipped.

    Raises:
        DataError: the counts would leave nothing for training (`what` names the items: examples, sources).
    """
    counts = {
        split: size if isinstance(size, int) else max(1, round(size * available))
        for split, size in sizes.items()
        if split not in fixed
    }
    if sum(counts.values()) >= available:
        wanted = " + ".join(f"{split}_size={count}" for split, count in counts.items())
        raise DataError(
            f"task '{task}' has {available} {what}, too few to carve {wanted} out of them and keep some for training"
        )
    return counts
