"""Variance components of paired differences and the projected interval (flows.report.power)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from flows.metrics import pack_values
from flows.report import power


def test_components_recover_a_known_layout() -> None:
    """d = seed effect + example effect + noise with known variances: the estimates come back near them."""
    rng = np.random.default_rng(0)
    seeds, examples = 40, 4000
    diff = (
        rng.normal(0, 0.02, (seeds, 1))
        + rng.normal(0, 0.3, (1, examples))
        + rng.normal(0, 0.2, (seeds, examples))
    )
    found = power.components(diff)
    assert found.seed == pytest.approx(0.02**2, rel=0.5)
    assert found.example == pytest.approx(0.3**2, rel=0.1)
    assert found.residual == pytest.approx(0.2**2, rel=0.05)
    expected = 1.96 * math.sqrt(found.seed / 10 + found.example / 7230 + found.residual / 72300)
    assert found.half_width(10, 7230) == pytest.approx(expected)
    assert found.half_width(10, 7230) < found.half_width(3, 1000)


def test_identical_arms_have_no_variance_and_a_single_seed_is_refused() -> None:
    assert power.components(np.zeros((3, 5))).half_width(10, 100) == 0.0
    with pytest.raises(ValueError, match="2 or more seeds"):
        power.components(np.zeros((1, 5)))


def test_the_command_line_reads_result_files(tmp_path, capsys) -> None:
    labels = [0, 1] * 50
    for name, flips in (("a", 10), ("b", 20)):
        folder = tmp_path / name
        folder.mkdir()
        for seed in (13, 21, 42):
            predicted = [1 - y if i < flips + seed % 3 else y for i, y in enumerate(labels)]
            record = {
                "seed": seed,
                "predictions": {"merge": {"test": pack_values(predicted)}},
                "labels": {"test": pack_values(labels)},
            }
            (folder / f"seed{seed}.json").write_text(json.dumps(record))
    assert power.main([str(tmp_path / "a"), str(tmp_path / "b"), "--seeds", "10", "--examples", "100"]) == 0
    out = capsys.readouterr().out
    assert "Estimated on 3 seeds x 100 examples" in out and "| 10 | 100 |" in out
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "seed13.json").write_text(json.dumps({"seed": 13}))
    assert power.main([str(tmp_path / "old"), str(tmp_path / "b")]) == 2
    other = json.loads((tmp_path / "a" / "seed21.json").read_text())
    other["labels"]["test"] = pack_values([1 - y for y in labels])  # seed 21 scored on other examples
    (tmp_path / "a" / "seed21.json").write_text(json.dumps(other))
    assert power.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "tested on other examples" in capsys.readouterr().err
