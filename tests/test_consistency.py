"""Consistency loss (classification, token-level, regression) and the two-view forward's fast path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import batch, tiny_classifier

import adamix
from adamix import AdaMixConfig, ExpertLinear, consistency_loss


def test_matches_the_papers_formula():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    reference = 0.5 * (
        F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="batchmean")
        + F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="batchmean")
    )
    torch.testing.assert_close(consistency_loss(a, b), reference)


def test_gradient_on_first_view_is_proportional_to_p_minus_q():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 6, generator=g, requires_grad=True)
    b = torch.randn(4, 6, generator=g, requires_grad=True)
    consistency_loss(a, b).backward()
    p, q = F.softmax(a.detach(), -1), F.softmax(b.detach(), -1)
    torch.testing.assert_close(a.grad, 0.5 * (p - q) / 4)
    torch.testing.assert_close(b.grad, 0.5 * (q - p) / 4)


def test_zero_only_when_views_agree():
    a = torch.randn(3, 4)
    assert consistency_loss(a, a.clone()).item() == 0.0
    assert consistency_loss(a, a + torch.tensor([0.0, 1.0, 0.0, 0.0])).item() > 0


@pytest.mark.parametrize("shape", [(6, 1), (6,)])
def test_regression_is_not_silently_zero(shape):
    """A softmax KL over one logit is always 0 (the reference's bug); the squared error is not."""
    a = torch.randn(shape, requires_grad=True)
    b = (a.detach() + 0.5).requires_grad_(True)
    loss = consistency_loss(a, b)
    assert loss.item() == pytest.approx(0.25, rel=1e-5)
    loss.backward()
    # gradient proportional to a - b: each pass pulled toward the detached other
    torch.testing.assert_close(a.grad, (a - b).detach() / a.shape[0])


def test_token_mask_excludes_padding():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    full = consistency_loss(a, b, mask)
    b2 = b.clone()
    b2[0, 3:] = torch.randn(2, 7, generator=g) * 10  # padding positions change
    assert consistency_loss(a, b2, mask).item() == pytest.approx(full.item())
    per_token = 0.5 * (
        F.kl_div(F.log_softmax(a, -1), F.log_softmax(b, -1), log_target=True, reduction="none").sum(-1)
        + F.kl_div(F.log_softmax(b, -1), F.log_softmax(a, -1), log_target=True, reduction="none").sum(-1)
    )
    assert full.item() == pytest.approx((per_token * mask).sum().item() / mask.sum().item(), rel=1e-5)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="equal shapes"):
        consistency_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="mask shape"):
        consistency_loss(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), torch.ones(2, 4))


def _route_table(monkeypatch):
    """Force routes: projection k takes expert f(k) in view a and g(k) in view b, in both execution paths."""
    calls: dict[int, int] = {}
    order: dict[int, int] = {}

    def draw(self, count, device):
        k = order.setdefault(id(self), len(order))
        view_a, view_b = k % self.num_experts, (k + 1) % self.num_experts
        if count == 2:
            return torch.tensor([view_a, view_b])
        n = calls.get(id(self), 0)
        calls[id(self)] = n + 1
        return torch.tensor([view_a if n % 2 == 0 else view_b])

    monkeypatch.setattr(ExpertLinear, "_draw", draw)


@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_batched_two_view_forward_equals_sequential(monkeypatch, method):
    """The fast path (one doubled batch, each half through its own expert) equals two plain forwards."""
    model = adamix.get_adamix_model(
        tiny_classifier("bert"), AdaMixConfig(method=method, bottleneck=4, share="none")
    )
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ExpertLinear):
                m.weight.add_(torch.randn_like(m.weight))
    model.train()
    inputs = batch("bert")
    _route_table(monkeypatch)
    seq_a, seq_b = adamix.two_view_logits(model, inputs, batched=False)
    bat_a, bat_b = adamix.two_view_logits(model, inputs, batched=True)
    assert not torch.allclose(seq_a, seq_b)  # the routes really differ between views
    torch.testing.assert_close(bat_a, seq_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bat_b, seq_b, rtol=1e-5, atol=1e-6)
    # route groups are restored afterwards
    assert all(m.route_groups == 1 for m in model.modules() if isinstance(m, ExpertLinear))


def test_adamix_loss_parts_and_no_second_view_without_consistency(monkeypatch):
    model = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig())
    model.train()
    inputs, labels = batch("bert"), torch.tensor([0, 1, 2])
    out = adamix.adamix_loss(model, inputs, labels, consistency_weight=2.0)
    torch.testing.assert_close(out.loss, out.task_loss + 2.0 * out.consistency)
    torch.testing.assert_close(out.task_loss, F.cross_entropy(out.logits, labels))
    forwards = []
    monkeypatch.setattr(
        type(model), "forward", lambda self, **kw: forwards.append(1) or _Out(torch.zeros(3, 3))
    )
    adamix.adamix_loss(model, inputs, labels, consistency_weight=0.0)
    assert len(forwards) == 1


class _Out:
    def __init__(self, logits):
        self.logits = logits.requires_grad_(True)


def test_regression_model_gets_a_nonzero_consistency_term():
    model = adamix.get_adamix_model(tiny_classifier("bert", num_labels=1), AdaMixConfig(share="none"))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ExpertLinear):
                m.weight.add_(torch.randn_like(m.weight))
    model.train()
    out = adamix.adamix_loss(model, batch("bert"), torch.tensor([0.5, 1.0, 2.0]))
    assert out.consistency.item() > 0
    torch.testing.assert_close(
        out.task_loss, F.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, 1.0, 2.0]))
    )
