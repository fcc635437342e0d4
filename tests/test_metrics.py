"""Tests for flows.metrics: hand-computed values, scipy agreement, defined degenerate cases, bad input."""

import math

import numpy as np
import pytest
from scipy import stats

from flows.metrics import METRICS, REGRESSION_METRICS, compute_metrics


def test_metric_names_are_the_documented_ones():
    assert METRICS == ("accuracy", "f1", "macro_f1", "matthews", "pearson", "spearman")
    assert set(REGRESSION_METRICS) == {"pearson", "spearman"}


def test_binary_classification_against_hand_computed_values():
    # Confusion: TP=2 (idx 1, 4), TN=2 (idx 0, 5), FP=1 (idx 2), FN=1 (idx 3).
    predictions = [0, 1, 1, 0, 1, 0]
    labels = [0, 1, 0, 1, 1, 0]
    scores = compute_metrics(["accuracy", "f1", "macro_f1", "matthews"], predictions, labels)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # 2TP / (2TP + FP + FN)
    # Class 0: TP=2, FP=1, FN=1 -> 2/3 as well; macro = mean of both.
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (4 - 1) / sqrt(3*3*3*3) = 1/3.
    assert scores["matthews"] == pytest.approx(1 / 3)
    assert list(scores) == ["accuracy", "f1", "macro_f1", "matthews"]
    assert all(type(value) is float for value in scores.values())


def test_multiclass_matthews_and_macro_f1():
    predictions = [0, 1, 2, 2, 1, 0, 2]
    labels = [0, 1, 2, 1, 1, 2, 2]
    scores = compute_metrics(["matthews", "macro_f1", "accuracy"], predictions, labels)
    # Confusion (rows true, cols pred): [[1,0,0],[0,2,1],[1,0,2]]; c=5, s=7, t=(1,3,3), p=(2,2,3).
    expected_mcc = (5 * 7 - (1 * 2 + 3 * 2 + 3 * 3)) / math.sqrt((49 - (4 + 4 + 9)) * (49 - (1 + 9 + 9)))
    assert scores["matthews"] == pytest.approx(expected_mcc)
    f1_per_class = [2 * 1 / (2 + 1 + 0), 2 * 2 / (4 + 0 + 1), 2 * 2 / (4 + 1 + 1)]
    assert scores["macro_f1"] == pytest.approx(np.mean(f1_per_class))
    assert scores["accuracy"] == pytest.approx(5 / 7)


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 5, size=50)
    predictions = labels + rng.normal(0, 1, size=50)
    scores = compute_metrics(["pearson", "spearman"], predictions.tolist(), labels.tolist())
    assert scores["pearson"] == pytest.approx(stats.pearsonr(predictions, labels).statistic)
    assert scores["spearman"] == pytest.approx(stats.spearmanr(predictions, labels).statistic)
    assert compute_metrics("spearman", [1.0, 2.0, 3.0], [10.0, 20.0, 35.0])["spearman"] == pytest.approx(1.0)


def test_perfect_and_inverted_scores_hit_the_bounds():
    assert compute_metrics(["matthews"], [0, 1, 0, 1], [1, 0, 1, 0])["matthews"] == pytest.approx(-1.0)
    assert compute_metrics(["pearson"], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0])["pearson"] == pytest.approx(-1.0)
    assert compute_metrics(["f1", "accuracy"], [1, 0], [1, 0]) == {"f1": 1.0, "accuracy": 1.0}


@pytest.mark.parametrize(
    ("name", "predictions", "labels", "expected"),
    [
        ("matthews", [1, 1, 1, 1], [0, 1, 0, 1], 0.0),  # constant predictor: a confusion column is empty
        ("matthews", [0, 1, 0, 1], [1, 1, 1, 1], 0.0),  # one gold class: a confusion row is empty
        ("f1", [0, 0, 0], [0, 0, 0], 0.0),  # no positives predicted or present: 0/0
        ("macro_f1", [0, 0], [0, 0], 1.0),  # only class 0 exists and it is perfect
        ("pearson", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0], 0.0),  # constant predictions
        ("spearman", [1.0, 2.0, 3.0], [4.0, 4.0, 4.0], 0.0),  # constant labels
        ("pearson", [1.0], [2.0], 0.0),  # a single point has no correlation
    ],
)
def test_degenerate_cases_are_defined_not_nan(name, predictions, labels, expected):
    value = compute_metrics([name], predictions, labels)[name]
    assert not math.isnan(value)
    assert value == expected


def test_unknown_metric_is_rejected_with_the_supported_list():
    with pytest.raises(ValueError, match=r"unknown metric.*'bleu'.*supported"):
        compute_metrics(["accuracy", "bleu"], [0], [0])


@pytest.mark.parametrize(
    ("predictions", "labels", "message"),
    [
        ([0, 1, 1], [0, 1], "length mismatch: 3 predictions for 2 labels"),
        ([], [], "zero examples"),
        ([[0.1, 0.9]], [1], "must be 1-D"),
    ],
)
def test_bad_inputs_raise_value_error(predictions, labels, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(["accuracy"], predictions, labels)


def test_non_finite_regression_values_are_an_error_not_a_nan():
    with pytest.raises(ValueError, match="non-finite"):
        compute_metrics(["pearson"], [1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])


def test_f1_is_the_f1_of_class_one_whatever_the_label_set():
    # Three classes: F1 of class 1 alone (TP=1 at idx 1, FP=1 at idx 4, FN=1 at idx 3) = 2/(2+1+1).
    predictions = [0, 1, 2, 2, 1]
    labels = [0, 1, 2, 1, 0]
    assert compute_metrics("f1", predictions, labels)["f1"] == pytest.approx(0.5)


def test_metric_values_do_not_warn(recwarn):
    compute_metrics(["f1", "macro_f1", "matthews"], [0, 0, 0], [0, 0, 0])
    compute_metrics(["pearson", "spearman"], [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert [str(w.message) for w in recwarn] == []


def test_packed_values_round_trip():
    from flows.metrics import pack_values, unpack_values

    assert pack_values([0, 1, 2, 9]) == "0129"
    assert list(unpack_values(pack_values([0, 1, 2, 9]))) == [0, 1, 2, 9]
    assert pack_values([3, 12]) == [3, 12]  # a class id of two digits: a list
    assert list(unpack_values(pack_values([3, 12]))) == [3, 12]
    assert pack_values([0.1234567891, -2.5]) == [0.123457, -2.5]
    assert list(unpack_values(pack_values([0.1234567891, -2.5]))) == [0.123457, -2.5]
