"""Evaluation metrics of the pipeline's tasks (accuracy, F1, Matthews, Pearson, Spearman): numpy + scipy only.

Every degenerate case has a defined value instead of a NaN or a crash, following scikit-learn's conventions:
an F1 whose denominator is zero is 0.0, a Matthews coefficient whose denominator is zero (a confusion-matrix
row or column sum that makes it undefined, e.g. a constant predictor) is 0.0, and a correlation with a
constant vector is 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy import stats

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


def _f1_of_class(pred: np.ndarray, gold: np.ndarray, positive) -> float:
    true_pos = np.sum((pred == positive) & (gold == positive))
    false_pos = np.sum((pred == positive) & (gold != positive))
    false_neg = np.sum((pred != positive) & (gold == positive))
    denominator = 2 * true_pos + false_pos + false_neg
    return 0.0 if denominator == 0 else float(2 * true_pos / denominator)


def _binary_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return _f1_of_class(pred, gold, 1)


def _macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    classes = np.union1d(np.unique(pred), np.unique(gold))
    return float(np.mean([_f1_of_class(pred, gold, c) for c in classes]))


def _matthews(pred: np.ndarray, gold: np.ndarray) -> float:
    """Multi-class Matthews correlation (Gorodkin's R_K); 0.0 where it is undefined."""
    classes, encoded = np.unique(np.concatenate([gold, pred]), return_inverse=True)
    gold_ids, pred_ids = encoded[: len(gold)], encoded[len(gold) :]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, (gold_ids, pred_ids), 1.0)
    true_per_class = confusion.sum(axis=1)
    pred_per_class = confusion.sum(axis=0)
    n = confusion.sum()
    correct = np.trace(confusion)
    numerator = correct * n - true_per_class @ pred_per_class
    denominator = np.sqrt((n**2 - pred_per_class @ pred_per_class) * (n**2 - true_per_class @ true_per_class))
    return 0.0 if denominator == 0 else float(numerator / denominator)


def _correlation(method: Callable) -> Callable[[np.ndarray, np.ndarray], float]:
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
        return float(method(pred, gold).statistic)

    return score


_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "f1": _binary_f1,
    "macro_f1": _macro_f1,
    "matthews": _matthews,
    "pearson": _correlation(stats.pearsonr),
    "spearman": _correlation(stats.spearmanr),
}
