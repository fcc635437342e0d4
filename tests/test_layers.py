"""Layer-level checks: parity with PEFT's LoRA, Conv1D layout, routing cost, merged weights that follow updates."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import batch, tiny_classifier

import adamix
from adamix import AdaMixConfig, ExpertLinear


@pytest.mark.parametrize("arch, targets", [("bert", ["query", "value"]), ("gpt2", ["c_attn"])])
def test_single_lora_matches_peft(arch, targets):
    """AdaMix LoRA with M = 1 gives the same logits as PEFT's LoRA holding the same weights."""
    peft = pytest.importorskip("peft")
    base = tiny_classifier(arch)
    ours = adamix.get_adamix_model(
        copy.deepcopy(base), AdaMixConfig(method="lora", num_experts=1, bottleneck=4, lora_alpha=32)
    )
    theirs = peft.get_peft_model(
        copy.deepcopy(base),
        peft.LoraConfig(r=4, lora_alpha=32, lora_dropout=0.0, target_modules=targets, task_type="SEQ_CLS"),
    )
    g = torch.Generator().manual_seed(3)
    layers = dict(adamix.iter_adamix_layers(ours))
    assert len(layers) > 0
    with torch.no_grad():
        for name, module in theirs.named_modules():
            if not hasattr(module, "lora_A") or "default" not in module.lora_A:
                continue
            key = name.removeprefix("base_model.model.")
            a = torch.randn(module.lora_A["default"].weight.shape, generator=g)
            b = torch.randn(module.lora_B["default"].weight.shape, generator=g)
            module.lora_A["default"].weight.copy_(a)
            module.lora_B["default"].weight.copy_(b)
            layer = layers.pop(key)
            layer.adamix_A.weight.copy_(a[None])
            layer.adamix_B.weight.copy_(b[None])
        head = ours.adamix_config.modules_to_save[0]
        theirs.base_model.model.get_submodule(head).modules_to_save.default.load_state_dict(
            ours.get_submodule(head).state_dict()
        )
    assert not layers, f"PEFT adapted fewer layers than AdaMix: {sorted(layers)}"
    inputs = batch(arch)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(**inputs).logits
        torch.testing.assert_close(ours(**inputs).logits, expected, rtol=1e-5, atol=1e-5)
        # and after folding into the base weights (Conv1D stores weights transposed)
        torch.testing.assert_close(
            adamix.merge_and_unload(ours)(**inputs).logits, expected, rtol=1e-5, atol=1e-5
        )


def test_training_forward_runs_one_expert_per_projection():
    """Random routing costs one module: each projection does exactly one matmul on one expert's weights."""
    proj = ExpertLinear(4, 8, 3)
    torch.nn.init.normal_(proj.weight)
    proj.train()
    x = torch.randn(5, 8)
    y = proj(x)
    candidates = [x @ proj.weight[e].T + proj.bias[e] for e in range(4)]
    assert sum(torch.allclose(y, c) for c in candidates) == 1


def test_route_groups_split_the_batch():
    proj = ExpertLinear(3, 4, 2)
    torch.nn.init.normal_(proj.weight)
    torch.nn.init.normal_(proj.bias)
    proj.train()
    proj.route_groups = 2
    x = torch.randn(6, 5, 4)
    y = proj(x)
    for half, xs in ((y[:3], x[:3]), (y[3:], x[3:])):
        assert any(torch.allclose(half, xs @ proj.weight[e].T + proj.bias[e], atol=1e-6) for e in range(3))
    with pytest.raises(ValueError, match="cannot be split"):
        proj(torch.randn(5, 4))


def test_merged_weights_follow_in_place_updates():
    proj = ExpertLinear(4, 3, 2).eval()
    torch.nn.init.normal_(proj.weight)
    x = torch.randn(2, 3)
    with torch.no_grad():
        first = proj(x)
        proj.weight[1].add_(1.0)
        second = proj(x)
        torch.testing.assert_close(second, x @ proj.weight.mean(0).T + proj.bias.mean(0))
    assert not torch.allclose(first, second)


def test_merge_mode_is_differentiable_in_eval_with_grad():
    proj = ExpertLinear(4, 3, 2).eval()
    proj(torch.randn(2, 3)).sum().backward()
    assert proj.weight.grad is not None and torch.allclose(proj.weight.grad[0], proj.weight.grad[3])


def test_wrapping_rejects_non_linear_layers():
    from adamix.layers import AdaMixAdapterLayer

    with pytest.raises(TypeError, match="nn.Linear or transformers Conv1D"):
        AdaMixAdapterLayer(torch.nn.Conv2d(1, 1, 1), 2, 2, "up", 0.0)
