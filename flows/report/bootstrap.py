"""Per-example statistics for studies: a paired hierarchical bootstrap over seeds and test examples, Holm's
correction of p-values, and whether runs left the majority-class plateau.

A 3-seed t-test looks at three numbers per arm. The result files also hold every test prediction, so the
bootstrap can see both sources of noise: which seeds were drawn (training randomness) and which test examples
were drawn (the test set is a sample too). Both arms of a comparison are scored on the same examples with the same
seeds, so every replicate draws seeds and examples once and applies the draw to both: the difference is paired.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Peak memory of one chunk of replicates: its example counts, the seed-weighted differences and one temporary,
# each (chunk x examples) float64 or int64.
_CHUNK_BYTES = 150_000_000
# Primary metrics that are a mean over test examples of a per-example score (here: correct or not); the others
# (f1, matthews, pearson, ...) are not, and a mean of per-example scores would not be them.
DECOMPOSABLE = ("accuracy",)


@dataclass(frozen=True)
class Bootstrap:
    """A paired bootstrap of mean(a) - mean(b).

    The p-value is two-sided: 2 x min(share of replicates <= 0, share >= 0), capped at 1; it is the smallest
    level at which a percentile interval of that level (about) excludes zero.
    """

    difference: float  # observed mean(a) - mean(b) over every seed and example
    low: float  # 95% percentile interval
    high: float
    p: float
    replicates: int
    seeds: int
    examples: int


def _check(a: np.ndarray, b: np.ndarray, labels: np.ndarray, replicates: int) -> None:
    if a.ndim != 2 or a.shape != b.shape or 0 in a.shape:
        raise ValueError(
            f"a and b must be non-empty (seeds x examples) arrays of one shape: {a.shape}, {b.shape}"
        )
    if labels.shape != (a.shape[1],):
        raise ValueError(f"labels: {labels.shape[0] if labels.ndim else 0} values for {a.shape[1]} examples")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, not {replicates}")


def _replicate_means(diff: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Each replicate's mean difference over its drawn cells (seed draw x example draw), chunked so memory
    stays near _CHUNK_BYTES whatever the size."""
    seeds, examples = diff.shape
    chunk = max(1, _CHUNK_BYTES // (24 * examples))
    # Multinomial counts: how often each seed / example was drawn with replacement. The seed draws are small
    # and taken at once, so the example draws form one stream and the answer does not depend on the chunk size.
    seed_counts = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=replicates)
    out = np.empty(replicates)
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        example_counts = rng.multinomial(examples, np.full(examples, 1 / examples), size=size)
        # (size x examples): each example's difference summed over the drawn seeds
        weighted = seed_counts[start : start + size] @ diff
        out[start : start + size] = np.einsum("ij,ij->i", weighted, example_counts) / (seeds * examples)
    return out


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, labels: np.ndarray, replicates: int = 10_000, seed: int = 0
) -> Bootstrap:
    """Paired hierarchical bootstrap of mean(a) - mean(b).

    Each replicate draws the seeds with replacement, then the test examples with replacement (one draw of
    example indices, shared by both arms and every drawn seed: the test set is the same for all seeds), and takes
    mean(a) - mean(b) over the drawn cells.

    Args:
        a: (seeds x examples) per-example scores of one arm (1/0 correct), rows in seed order.
        b: the other arm's, the same seeds in the same order and the same examples.
        labels: the gold labels of the shared test examples (one per column; checked against the shape).
        replicates: bootstrap replicates.
        seed: seed of the random draws (the same seed gives the same interval).

    Returns:
        The observed difference, its 95% percentile interval, the two-sided bootstrap p and the sizes.

    Raises:
        ValueError: a and b of different or empty shapes, labels not one per example, replicates < 1.
    """
    a, b, labels = np.asarray(a, dtype=float), np.asarray(b, dtype=float), np.asarray(labels)
    _check(a, b, labels, replicates)
    diff = a - b
    means = _replicate_means(diff, replicates, np.random.default_rng(seed))
    low, high = np.percentile(means, [2.5, 97.5])
    p = min(1.0, 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return Bootstrap(float(diff.mean()), float(low), float(high), p, replicates, *diff.shape)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment for multiple comparisons.

    Args:
        pvalues: raw p-values; NaN entries (tests not run) are skipped and count for nothing.

    Returns:
        Adjusted p-values in the input order: the i-th smallest of m is multiplied by m - i + 1, made
        non-decreasing along the sorted order and capped at 1; NaN entries stay NaN.
    """
    out = [math.nan] * len(pvalues)
    finite = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class Plateau:
    """Which runs of an arm left the majority-class plateau (scored above always predicting the majority)."""

    runs: int
    first_steps: dict[int, int | None]  # seed -> optimizer step of the first evaluation above it; None: never

    @property
    def left(self) -> int:
        return sum(step is not None for step in self.first_steps.values())


def _first_step_above(record: Mapping[str, Any], threshold: float) -> int | None:
    key = f"validation/{record['primary_metric']}"
    for entry in record["history"]:
        value = entry.get(key)
        if isinstance(value, int | float) and value > threshold:
            return int(entry.get("step") or 0)
    return None


def plateau(records: Sequence[Mapping[str, Any]], margin: float = 0.05) -> Plateau | None:
    """How many runs ever scored above `validation_majority + margin` on validation, and the first step each did.

    Args:
        records: one arm's result records (`history[i]["validation/<primary>"]`, `history[i]["step"]`).
        margin: how far above the majority-class share counts as having left it.

    Returns:
        The counts, or None when a record has no `validation_majority` (written before it was kept, or a
        regression task).
    """
    majorities = [r.get("validation_majority") for r in records]
    if not records or not all(isinstance(m, int | float) and not isinstance(m, bool) for m in majorities):
        return None
    steps = {
        int(r["seed"]): _first_step_above(r, m + margin) for r, m in zip(records, majorities, strict=True)
    }
    return Plateau(len(records), dict(sorted(steps.items())))
