"""Expert initialisation: 'identical' (one draw copied, up / B at zero) and 'independent' (the official NLU
adapter: every expert of every projection its own N(0, initializer_range) draw, zero biases, up not zero)."""

from __future__ import annotations

import itertools

import pytest
import torch
from tiny_models import tiny_classifier

import adamix
from adamix import AdaMixConfig


def _projections(model, name: str) -> list[torch.Tensor]:
    return [getattr(layer, name) for _, layer in adamix.iter_adamix_layers(model)]


def _wide_model(**config):
    """A tiny BERT with a wider bottleneck, so a std is measured over thousands of weights."""
    torch.manual_seed(0)
    return adamix.get_adamix_model(
        tiny_classifier("bert"),
        AdaMixConfig(method="adapter", num_experts=4, bottleneck=64, share="none", **config),
    )


def test_independent_adapter_experts_differ_and_have_the_requested_std():
    model = _wide_model(expert_init="independent", init_std=0.05)
    for name in ("adamix_down", "adamix_up"):
        for projection in _projections(model, name):
            weights = projection.weight.detach()
            assert weights.abs().sum() > 0  # the up projection is not zero
            for i, j in itertools.combinations(range(weights.shape[0]), 2):
                assert not torch.equal(weights[i], weights[j]), (name, i, j)
            assert weights.std().item() == pytest.approx(0.05, rel=0.1)
            assert weights.mean().abs().item() < 0.01
            assert torch.count_nonzero(projection.bias) == 0
    assert model.adamix_config.expert_init == "independent" and model.adamix_config.init_std == 0.05


def test_independent_std_defaults_to_the_model_initializer_range():
    model = _wide_model(expert_init="independent")
    assert model.config.initializer_range == 0.02 and model.adamix_config.init_std == 0.02
    ups = torch.cat([p.weight.detach().flatten() for p in _projections(model, "adamix_up")])
    assert ups.std().item() == pytest.approx(0.02, rel=0.1)


def test_identical_is_unchanged_one_draw_copied_up_zero():
    model = _wide_model()  # the default
    assert model.adamix_config.expert_init == "identical"
    for projection in _projections(model, "adamix_down"):
        assert all(torch.equal(projection.weight[0], w) for w in projection.weight)
        assert all(torch.equal(projection.bias[0], b) for b in projection.bias)
    assert all(torch.count_nonzero(p.weight) == 0 for p in _projections(model, "adamix_up"))
    # The same random draws as before the option existed: torch's nn.Linear init of (d -> r), per layer.
    torch.manual_seed(0)
    base = tiny_classifier("bert")
    d = base.config.hidden_size
    expected = [torch.nn.Linear(d, 64) for _ in range(base.config.num_hidden_layers)]
    for projection, linear in zip(_projections(model, "adamix_down"), expected, strict=True):
        assert torch.equal(projection.weight[0], linear.weight) and torch.equal(
            projection.bias[0], linear.bias
        )


@pytest.mark.parametrize("expert_init", ["identical", "independent"])
def test_lora_b_starts_at_zero_and_a_follows_the_choice(expert_init):
    model = adamix.get_adamix_model(
        tiny_classifier("bert"),
        AdaMixConfig(method="lora", num_experts=3, bottleneck=4, share="none", expert_init=expert_init),
    )
    for a, b in zip(_projections(model, "adamix_A"), _projections(model, "adamix_B"), strict=True):
        assert torch.count_nonzero(b.weight) == 0
        same = [torch.equal(a.weight[0], w) for w in a.weight[1:]]
        assert all(same) if expert_init == "identical" else not any(same)
        bound = 1 / a.in_features**0.5  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert a.weight.abs().max().item() <= bound + 1e-6


def test_the_artifact_records_the_choice(tmp_path):
    model = _wide_model(expert_init="independent")
    adamix.save_adamix(model, tmp_path / "artifact")
    loaded = adamix.load_adamix(tiny_classifier("bert"), tmp_path / "artifact")
    assert loaded.adamix_config.expert_init == "independent" and loaded.adamix_config.init_std == 0.02
    for ours, theirs in zip(_projections(model, "adamix_up"), _projections(loaded, "adamix_up"), strict=True):
        assert torch.equal(ours.weight, theirs.weight)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "expert_init",
            "orthogonal",
            r"AdaMixConfig\.expert_init must be one of \('identical', 'independent'\)",
        ),
        ("init_std", 0.0, r"AdaMixConfig\.init_std must be None or a finite number > 0, got 0\.0"),
        ("init_std", True, r"AdaMixConfig\.init_std must be None or a finite number > 0"),
        ("init_std", float("inf"), r"AdaMixConfig\.init_std must be None or a finite number > 0"),
    ],
)
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        AdaMixConfig(**{field: value})
