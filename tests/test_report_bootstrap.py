"""The per-example statistics of studies (flows.report.bootstrap): known answers that a wrong resampling fails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flows.report.bootstrap import holm, paired_bootstrap, plateau

REPS = 2000  # enough for the checks below, quick


def _arms(seeds: int, examples: int, extra: int) -> tuple[np.ndarray, np.ndarray]:
    """b right on the first half of the examples; a right on those and `extra` more, on every seed."""
    b = np.zeros((seeds, examples))
    b[:, : examples // 2] = 1
    a = b.copy()
    a[:, examples // 2 : examples // 2 + extra] = 1
    return a, b


def test_identical_arms_give_a_zero_interval_and_p_one() -> None:
    a, _ = _arms(3, 200, 0)
    result = paired_bootstrap(a, a.copy(), np.zeros(200), replicates=REPS)
    assert (result.difference, result.low, result.high, result.p) == (0.0, 0.0, 0.0, 1.0)
    assert (result.replicates, result.seeds, result.examples) == (REPS, 3, 200)


def test_k_more_right_of_n_gives_k_over_n_inside_its_interval() -> None:
    a, b = _arms(3, 400, 20)
    result = paired_bootstrap(a, b, np.zeros(400), replicates=REPS)
    assert result.difference == pytest.approx(20 / 400)
    assert 0 < result.low < 20 / 400 < result.high
    # Always ahead on some examples and never behind: no replicate can fall below zero except with no gains.
    assert result.p < 0.01
    # a behind b: the mirror image.
    mirror = paired_bootstrap(b, a, np.zeros(400), replicates=REPS)
    assert (mirror.low, mirror.high, mirror.p) == pytest.approx((-result.high, -result.low, result.p))


def test_one_seed_resamples_examples_only() -> None:
    a, b = _arms(1, 1000, 100)
    result = paired_bootstrap(a, b, np.zeros(1000), replicates=REPS)
    # Per-example differences are 1 on 10% of examples: the mean's standard error is sqrt(0.1 * 0.9 / 1000).
    half_width = 1.96 * math.sqrt(0.1 * 0.9 / 1000)
    assert (result.high - result.low) / 2 == pytest.approx(half_width, rel=0.15)


def test_differences_that_vary_only_by_seed_are_resampled_over_seeds() -> None:
    # Every example differs by the seed's gap (0 or 0.1): example draws change nothing, seed draws do.
    gaps = np.array([0.0, 0.1, 0.0, 0.1])
    a, b = np.repeat(gaps[:, None], 50, axis=1), np.zeros((4, 50))
    result = paired_bootstrap(a, b, np.zeros(50), replicates=REPS)
    assert result.difference == pytest.approx(0.05)
    assert result.low == pytest.approx(0.0) and result.high == pytest.approx(0.1)
    # With one seed of these, no randomness is left at all.
    single = paired_bootstrap(a[1:2], b[1:2], np.zeros(50), replicates=REPS)
    assert single.low == pytest.approx(0.1) and single.high == pytest.approx(0.1) and single.p == 0


def test_the_same_seed_gives_the_same_interval() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 2, (3, 300)), rng.integers(0, 2, (3, 300))
    first, again = (paired_bootstrap(a, b, np.zeros(300), replicates=REPS, seed=7) for _ in range(2))
    other = paired_bootstrap(a, b, np.zeros(300), replicates=REPS, seed=8)
    assert first == again and (first.low, first.high) != (other.low, other.high)


def test_chunks_do_not_change_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicates drawn in many small chunks are the same draws as in one: memory does not change the answer."""
    from flows.report import bootstrap

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 2, (2, 100)), rng.integers(0, 2, (2, 100))
    whole = paired_bootstrap(a, b, np.zeros(100), replicates=REPS)
    monkeypatch.setattr(bootstrap, "_CHUNK_BYTES", 24 * 100 * 7)  # 7 replicates a chunk
    chunked = paired_bootstrap(a, b, np.zeros(100), replicates=REPS)
    assert whole == chunked


@pytest.mark.parametrize(
    ("a", "b", "labels", "message"),
    [
        (np.zeros((2, 5)), np.zeros((3, 5)), np.zeros(5), "one shape"),
        (np.zeros((2, 5)), np.zeros((2, 5)), np.zeros(4), "4 values for 5 examples"),
        (np.zeros(5), np.zeros(5), np.zeros(5), "seeds x examples"),
    ],
)
def test_mismatched_inputs_are_refused(a, b, labels, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b, labels, replicates=10)


def test_holm_against_a_hand_worked_example() -> None:
    # Sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 to stay monotone.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.4]) == [0.8, 0.8]  # 0.4 x 2; 0.5 x 1 raised to 0.8
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # 0.6 x 2 capped at 1
    adjusted = holm([0.01, math.nan, 0.04])  # NaN is no test: m = 2
    assert (
        adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    )
    assert holm([]) == []


def _run(seed: int, scores: list[float], majority: float | None = 0.5) -> dict:
    record = {
        "seed": seed,
        "primary_metric": "accuracy",
        "history": [
            {"epoch": i + 1, "step": 32 * (i + 1), "validation/accuracy": v} for i, v in enumerate(scores)
        ],
    }
    if majority is not None:
        record["validation_majority"] = majority
    return record


def test_plateau_counts_runs_above_the_majority_share_and_their_first_step() -> None:
    runs = [_run(21, [0.5, 0.56, 0.7]), _run(13, [0.5, 0.54, 0.55]), _run(42, [0.6, 0.5])]
    found = plateau(runs)
    assert (found.runs, found.left) == (3, 2)
    assert found.first_steps == {13: None, 21: 64, 42: 32}  # 0.55 is not above 0.5 + 0.05
    assert plateau(runs, margin=0.01).first_steps[13] == 64


def test_plateau_is_unknown_without_the_majority_share() -> None:
    assert plateau([_run(13, [0.9], majority=None), _run(21, [0.9])]) is None
    assert plateau([]) is None
