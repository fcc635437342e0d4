"""Expert diagnostics: spread between a projection's experts and the merged module's travel from its start."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_classifier

import adamix
from adamix import AdaMixConfig, ExpertLinear


def _model(**config):
    return adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(method="adapter", **config))


def test_spread_of_known_experts():
    projection = ExpertLinear(2, 2, 1, bias=False)
    with torch.no_grad():
        projection.weight.copy_(torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]]))  # norms 5 and 0, distance 5
    assert adamix.expert_spread(projection) == pytest.approx(5 / 2.5)
    assert adamix.expert_spread(ExpertLinear(1, 2, 1)) == 0.0


def test_identical_experts_start_at_zero_spread_and_zero_travel():
    model = _model(num_experts=4, share="none")
    start = adamix.snapshot_merged(model)
    stats = adamix.expert_diagnostics(model, start)
    assert stats["expert_spread"] == 0.0 and stats["merged_travel"] == 0.0
    assert set(stats) == {
        "expert_spread",
        "expert_spread/adamix_down",
        "expert_spread/adamix_up",
        "merged_travel",
    }


def test_independent_experts_are_spread_and_travel_is_measured():
    model = _model(num_experts=4, share="up", expert_init="independent")
    start = adamix.snapshot_merged(model)
    assert adamix.expert_diagnostics(model)["expert_spread/adamix_down"] > 1.0  # random vectors: ~sqrt(2)
    assert "expert_spread/adamix_up" not in adamix.expert_diagnostics(model)  # shared: a stack of one
    expected = []
    with torch.no_grad():
        for _, layer in adamix.iter_adamix_layers(model):
            down, up = layer.adamix_down.weight.mean(0), layer.adamix_up.weight.mean(0)
            # Doubling down moves the merged module by |down|, out of |(down, up)| (biases are zero).
            expected.append((down.norm() / torch.cat([down.flatten(), up.flatten()]).norm()).item())
            layer.adamix_down.weight.mul_(2.0)
    travel = adamix.expert_diagnostics(model, start)["merged_travel"]
    assert travel == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    assert "merged_travel" not in adamix.expert_diagnostics(model)


def test_a_single_module_has_travel_but_no_spread():
    model = _model(num_experts=1)
    start = adamix.snapshot_merged(model)
    with torch.no_grad():
        for _, layer in adamix.iter_adamix_layers(model):
            layer.adamix_up.weight.add_(0.1)
    stats = adamix.expert_diagnostics(model, start)
    assert "expert_spread" not in stats and stats["merged_travel"] > 0
