"""Evaluation metrics of the pipeline's tasks: F1 and Matthews from scikit-learn, correlations from scipy.

Every degenerate case has a defined value instead of a NaN or a crash, scikit-learn's conventions: an F1 whose
denominator is zero is 0.0 (`zero_division=0.0`), a Matthews coefficient whose denominator is zero (a constant
predictor, or a single gold class) is 0.0, and, the same way, a correlation with a constant vector is 0.0
(scipy would return NaN with a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

# scikit-learn and scipy are imported inside the scorers that use them: they take ~2.5 s to import, and every
# stage process that only needs the metric names (prepare, train) would pay it (issue 27).

METRICS: tuple[str, ...] = ("accuracy", "f1", "macro_f1", "matthews", "pearson", "spearman")
"""Supported metric names. `f1` is binary F1 of the positive class 1; `macro_f1` averages every class seen."""

REGRESSION_METRICS: tuple[str, ...] = ("pearson", "spearman")
"""The metrics that score real-valued predictions (a task scored by one of them is a regression task)."""


def compute_metrics(
    names: str | Iterable[str], predictions: Sequence | np.ndarray, labels: Sequence | np.ndarray
) -> dict[str, float]:
    """Score predictions against labels with each named metric.

    Args:
        names: Metric names from `METRICS` (a single name is accepted too). Order is kept in the result.
        predictions: One prediction per example: class ids for classification, floats for regression.
        labels: The gold labels, same length and kind as `predictions`.

    Returns:
        `{name: value}` with plain Python floats: in [0, 1] for accuracy and the F1 scores, in [-1, 1] for
        Matthews, Pearson and Spearman.

    Raises:
        ValueError: An unknown metric name, inputs that are not 1-D, of different lengths or empty, or
            non-finite values where a correlation is asked for.
    """
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in wanted if name not in _SCORERS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; supported: {list(METRICS)}")
    pred = np.asarray(predictions)
    gold = np.asarray(labels)
    if pred.ndim != 1 or gold.ndim != 1:
        raise ValueError(
            f"predictions and labels must be 1-D, got shapes {pred.shape} and {gold.shape} "
            "(take the argmax of logits first)"
        )
    if len(pred) != len(gold):
        raise ValueError(f"length mismatch: {len(pred)} predictions for {len(gold)} labels")
    if len(gold) == 0:
        raise ValueError("cannot compute metrics on zero examples")
    return {name: float(_SCORERS[name](pred, gold)) for name in wanted}


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(pred == gold))


def _binary_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    # F1 of class 1 alone (labels=[1]): defined for any label set, not only {0, 1}, as GLUE's MRPC/QQP F1.
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=[1], average="macro", zero_division=0.0))


def _macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    # Averaged over every class that occurs in the labels or the predictions (scikit-learn's default labels).
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", zero_division=0.0))


def _matthews(pred: np.ndarray, gold: np.ndarray) -> float:
    """Multi-class Matthews correlation (Gorodkin's R_K); scikit-learn gives 0.0 where it is undefined."""
    if len(np.union1d(pred, gold)) < 2:
        return 0.0  # what scikit-learn returns here, without its warning about a one-label confusion matrix
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, pred))


def _correlation(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(pred: np.ndarray, gold: np.ndarray) -> float:
        pred = pred.astype(np.float64)
        gold = gold.astype(np.float64)
        bad = int(np.sum(~np.isfinite(pred)) + np.sum(~np.isfinite(gold)))
        if bad:
            raise ValueError(
                f"{bad} non-finite value(s) in predictions or labels; a correlation is undefined"
            )
        if len(gold) < 2 or np.ptp(pred) == 0 or np.ptp(gold) == 0:
            return 0.0  # a constant vector has no correlation with anything
        from scipy import stats

        return float(getattr(stats, name)(pred, gold).statistic)

    return score


_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "f1": _binary_f1,
    "macro_f1": _macro_f1,
    "matthews": _matthews,
    "pearson": _correlation("pearsonr"),
    "spearman": _correlation("spearmanr"),
}


def pack_values(values: Sequence) -> str | list[float]:
    """Per-example class ids as one string of digits (one character per example, labels 0-9), compact in a JSON
    result file; regression values (or class ids of 10 or more) as a list, floats rounded to 6 significant digits.
    `unpack_values` reads either back."""
    if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9 for v in values):
        return "".join(str(v) for v in values)
    return [v if isinstance(v, int) else float(f"{v:.6g}") for v in values]


def unpack_values(packed: str | Sequence) -> np.ndarray:
    """The per-example values `pack_values` wrote: int class ids from a digit string, else the list as an array."""
    if isinstance(packed, str):
        return np.frombuffer(packed.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
    return np.asarray(packed)
