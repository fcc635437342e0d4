"""The train stage's optimizer: weight decay on weights only, never on biases (stacked expert biases included,
though they are 2-d) or LayerNorm weights, as the Hugging Face Trainer and the official AdaMix scripts."""

from __future__ import annotations

import pytest
from tiny_models import tiny_classifier

import adamix
from flows.training.optim import build_optimizer


def _groups(model) -> dict[float, set[str]]:
    names = {id(p): n for n, p in model.named_parameters()}
    optimizer = build_optimizer(model, 1e-3, 0.1)
    return {
        group["weight_decay"]: {names[id(p)] for p in group["params"]} for group in optimizer.param_groups
    }


@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_stacked_expert_biases_get_no_decay(method):
    model = adamix.get_adamix_model(
        tiny_classifier("bert"), adamix.AdaMixConfig(method=method, num_experts=4)
    )
    groups = _groups(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert groups[0.1] | groups[0.0] == trainable and not groups[0.1] & groups[0.0]
    assert all(n.endswith("weight") for n in groups[0.1])
    assert all(n.endswith("bias") for n in groups[0.0])
    if method == "adapter":  # (M, out) biases: 2-d, and still not decayed
        stacked = [n for n in groups[0.0] if "adamix_down.bias" in n]
        assert stacked and dict(model.named_parameters())[stacked[0]].dim() == 2


def test_full_fine_tuning_spares_layernorm_weights():
    groups = _groups(tiny_classifier("bert"))
    assert any("LayerNorm.weight" in n for n in groups[0.0])
    assert not any("LayerNorm" in n or n.endswith("bias") for n in groups[0.1])
    assert any(n.endswith("attention.self.query.weight") for n in groups[0.1])
