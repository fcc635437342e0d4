"""The GPU fast path checked against the plain path on the CPU: one whole graph under torch.compile (no graph
breaks, hence no host syncs, in the routed forward), and bf16 autocast close to fp32.

The batched two-view forward is checked against two plain forwards in tests/test_consistency.py.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import batch, tiny_classifier

import adamix


def _model(method: str) -> torch.nn.Module:
    model = tiny_classifier("bert", num_labels=2)
    model = adamix.get_adamix_model(model, adamix.AdaMixConfig(method=method, num_experts=4, bottleneck=8))
    with torch.no_grad():  # non-zero experts, different from each other, so routing matters
        for module in model.modules():
            if isinstance(module, adamix.ExpertLinear):
                module.weight.normal_(0, 0.2)
    return model


@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_whole_model_compiles_as_one_graph(method: str) -> None:
    torch._dynamo.reset()
    model = _model(method)
    inputs = batch("bert", size=4)
    labels = torch.tensor([0, 1, 0, 1])
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)  # fullgraph: a graph break raises

    model.train()
    torch.manual_seed(0)
    out = adamix.adamix_loss(compiled, inputs, labels, consistency_weight=1.0, batched=True)
    out.loss.backward()
    experts = [m for m in model.modules() if isinstance(m, adamix.ExpertLinear) and m.num_experts > 1]
    assert experts and all(m.weight.grad is not None for m in experts)
    # one expert per view and projection got a gradient, the others none
    used = [(m.weight.grad.flatten(1).abs().sum(1) > 0).sum().item() for m in experts]
    assert all(1 <= n <= 2 for n in used)

    model.eval()  # merge inference: deterministic, so compiled and eager must agree
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).logits, model(**inputs).logits)


@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_bf16_autocast_is_close_to_fp32(method: str) -> None:
    model = _model(method).eval()
    inputs = batch("bert", size=4)
    with torch.no_grad():
        full = model(**inputs).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(**inputs).logits
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, atol=5e-2, rtol=5e-2)
