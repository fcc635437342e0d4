"""One table of (architecture, method, share, M, placement) cases drives the same checks over tiny models."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from tiny_models import batch, tiny_causal_lm, tiny_classifier

import adamix
from adamix import AdaMixConfig, ExpertLinear


@dataclass(frozen=True)
class Case:
    arch: str
    method: str
    share: str = "up"
    experts: int = 4
    placement: str = "ffn"

    @property
    def id(self) -> str:
        return f"{self.arch}-{self.method}-share_{self.share}-M{self.experts}-{self.placement}"

    def config(self, **overrides) -> AdaMixConfig:
        rank = 4 if self.method == "lora" else 8
        return AdaMixConfig(
            method=self.method,
            num_experts=self.experts,
            bottleneck=rank,
            share=self.share,
            placement=self.placement,
            **overrides,
        )


CASES = [
    *(Case(arch, "adapter") for arch in ("bert", "roberta", "mpnet", "distilbert", "gpt2", "llama")),
    *(Case(arch, "lora") for arch in ("bert", "roberta", "mpnet", "distilbert", "gpt2", "llama")),
    Case("bert", "adapter", share="down"),
    Case("bert", "adapter", share="none"),
    Case("bert", "adapter", placement="houlsby"),
    Case("gpt2", "adapter", placement="houlsby", share="none"),
    Case("llama", "adapter", placement="houlsby"),
    Case("bert", "adapter", experts=1),
    Case("roberta", "lora", share="down"),
    Case("roberta", "lora", share="none"),
    Case("gpt2", "lora", share="none", experts=2),
    Case("bert", "lora", experts=1),
]
# Wrapped layers per tiny model (2 transformer layers): adapter ffn 1/layer, houlsby 2/layer, LoRA q+v 2/layer
# (GPT-2 fuses q, k, v into c_attn: 1/layer).
EXPECTED_LAYERS = {"adapter": 2, "houlsby": 4, "lora": 4, "lora-gpt2": 2}


def _adapted(case: Case, seed: int = 0, **overrides):
    model = tiny_classifier(case.arch, seed=seed)
    return adamix.get_adamix_model(model, case.config(**overrides))


def _perturb_experts(model, scale: float = 0.5, seed: int = 7) -> None:
    """Make every expert different (they start identical by design)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, proj in adamix.model.iter_expert_projections(model):
            for p in proj.parameters():
                p.add_(scale * torch.randn(p.shape, generator=g))


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def case(request) -> Case:
    return request.param


def test_parameter_counts_match_formula(case):
    model = _adapted(case)
    cfg, r, m = model.adamix_config, model.adamix_config.bottleneck, case.experts
    n_down = 1 if case.share == "down" else m
    n_up = 1 if case.share == "up" else m
    layers = list(adamix.iter_adamix_layers(model))
    key = "houlsby" if case.placement == "houlsby" else case.method
    key = "lora-gpt2" if (case.method, case.arch) == ("lora", "gpt2") else key
    assert len(layers) == EXPECTED_LAYERS[key]
    expected = merged = 0
    for _, layer in layers:
        d_in, d_out = layer.in_features, layer.out_features
        if cfg.method == "adapter":  # down: d_out -> r with bias, up: r -> d_out with bias
            per_down, per_up = d_out * r + r, r * d_out + d_out
        else:  # A: d_in -> r, B: r -> d_out, no bias
            per_down, per_up = d_in * r, r * d_out
        expected += n_down * per_down + n_up * per_up
        merged += per_down + per_up
    counts = adamix.count_parameters(model)
    head = sum(p.numel() for h in cfg.modules_to_save for p in model.get_submodule(h).parameters())
    assert counts["adapter"] == expected
    assert counts["adapter_merged"] == merged
    assert counts["trainable"] == expected + head
    assert counts["deployed"] == merged + head
    adamix.merge_experts(model)
    assert adamix.count_parameters(model)["adapter"] == merged


def test_only_mixtures_and_head_train(case):
    model = _adapted(case)
    heads = model.adamix_config.modules_to_save
    assert heads, "the classification head must be found automatically"
    expert_params = {id(p) for m in model.modules() if isinstance(m, ExpertLinear) for p in m.parameters()}
    head_params = {id(p) for h in heads for p in model.get_submodule(h).parameters()}
    for name, p in model.named_parameters():
        assert p.requires_grad == (id(p) in expert_params | head_params), name
    # and backprop reaches exactly those
    model.train()
    _perturb_experts(model)
    model(**batch(case.arch)).logits.sum().backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_all_experts_start_identical(case):
    model = _adapted(case)
    for name, proj in adamix.model.iter_expert_projections(model):
        for p in proj.parameters():
            assert torch.equal(p, p[:1].expand_as(p)), name


def test_train_mode_passes_differ_once_experts_differ(case, monkeypatch):
    if case.experts == 1:
        pytest.skip("a single module has no routing")
    model = _adapted(case)
    _perturb_experts(model)
    model.train()
    inputs = batch(case.arch)
    first = [torch.tensor([0])]
    monkeypatch.setattr(ExpertLinear, "_draw", lambda self, n, device: first[0].repeat(n))
    a = _logits(model, inputs)
    first[0] = torch.tensor([1])
    b = _logits(model, inputs)
    assert not torch.allclose(a, b)
    monkeypatch.undo()
    # with the real random router, repeated passes are not all the same
    outs = [_logits(model, inputs) for _ in range(6)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


def test_eval_is_deterministic_and_merge_mode_equals_merged_model(case):
    model = _adapted(case)
    _perturb_experts(model)
    inputs = batch(case.arch)
    model.eval()
    before = _logits(model, inputs)
    assert torch.equal(before, _logits(model, inputs))
    adamix.merge_experts(model)
    after = _logits(model, inputs)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    adamix.merge_experts(model)  # idempotent
    torch.testing.assert_close(_logits(model, inputs), after, rtol=0, atol=0)


def test_fixed_mode_uses_one_expert(case):
    if case.experts == 1:
        pytest.skip("a single module has no routing")
    model = _adapted(case)
    _perturb_experts(model)
    inputs = batch(case.arch)
    chosen = case.experts - 1
    adamix.set_inference_mode(model, "fixed", fixed_expert=chosen)
    fixed = _logits(model, inputs)
    # the same as a model whose every mixture holds only that expert (shared projections keep their one copy)
    single = copy.deepcopy(model)
    with torch.no_grad():
        for _, proj in adamix.model.iter_expert_projections(single):
            index = min(chosen, proj.num_experts - 1)
            proj.weight.copy_(proj.weight[index].clone().expand_as(proj.weight))
            if proj.bias is not None:
                proj.bias.copy_(proj.bias[index].clone().expand_as(proj.bias))
    adamix.set_inference_mode(single, "merge")
    torch.testing.assert_close(fixed, _logits(single, inputs), rtol=1e-5, atol=1e-6)


def test_save_load_round_trips_exactly(case, tmp_path):
    model = _adapted(case)
    _perturb_experts(model)
    inputs = batch(case.arch)
    expected = _logits(model, inputs)
    adamix.save_adamix(model, tmp_path / "artifact")
    fresh = tiny_classifier(case.arch, seed=0)
    loaded = adamix.load_adamix(fresh, tmp_path / "artifact")
    assert torch.equal(_logits(loaded, inputs), expected)
    # a merged artifact is one module per mixture and loads into a fresh base as such
    adamix.merge_experts(model)
    merged_logits = _logits(model, inputs)
    adamix.save_adamix(model, tmp_path / "merged")
    reloaded = adamix.load_adamix(tiny_classifier(case.arch, seed=0), tmp_path / "merged")
    assert torch.equal(_logits(reloaded, inputs), merged_logits)
    assert adamix.count_parameters(reloaded)["adapter"] == adamix.count_parameters(model)["adapter"]


def test_artifact_holds_only_mixtures_and_head(case, tmp_path):
    from safetensors import safe_open

    model = _adapted(case)
    adamix.save_adamix(model, tmp_path / "a")
    with safe_open(str(tmp_path / "a" / adamix.WEIGHTS_NAME), framework="pt") as f:
        names = list(f.keys())
        sizes = {n: f.get_tensor(n).numel() for n in names}
    heads = tuple(model.adamix_config.modules_to_save)
    assert all(".adamix_" in n or n.startswith(heads) for n in names)
    assert sum(sizes.values()) == adamix.count_parameters(model)["trainable"]


def test_merge_and_unload(case):
    model = _adapted(case)
    if case.method == "adapter":
        with pytest.raises(ValueError, match="nonlinearity"):
            adamix.merge_and_unload(model)
        return
    _perturb_experts(model)
    inputs = batch(case.arch)
    expected = _logits(model, inputs)
    plain = adamix.merge_and_unload(model)
    assert not any(True for _ in adamix.iter_adamix_layers(plain))
    assert not any(isinstance(m, ExpertLinear) for m in plain.modules())
    assert not hasattr(plain, "adamix_config")
    torch.testing.assert_close(_logits(plain, inputs), expected, rtol=1e-5, atol=1e-5)


def test_training_step_reduces_loss():
    """A few optimizer steps on a fixed batch with the AdaMix objective lower the task loss."""
    model = _adapted(Case("bert", "adapter"))
    model.train()
    inputs, labels = batch("bert", size=8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(60):
        out = adamix.adamix_loss(model, inputs, labels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.task_loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_merged_eval_is_never_stale():
    """Eval in merge mode after an optimizer step uses the updated experts, not a cached average."""
    model = _adapted(Case("bert", "lora"))
    _perturb_experts(model)
    inputs = batch("bert")
    model.eval()
    first = _logits(model, inputs)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(**inputs).logits.pow(2).sum().backward()
    opt.step()
    model.eval()
    second = _logits(model, inputs)
    assert not torch.allclose(first, second)
    reference = copy.deepcopy(model)
    adamix.merge_experts(reference)
    torch.testing.assert_close(second, _logits(reference, inputs), rtol=1e-5, atol=1e-6)


def test_random_inference_routes_each_example(monkeypatch):
    model = _adapted(Case("bert", "adapter", share="none"))
    _perturb_experts(model)
    inputs = batch("bert", size=3)
    chosen = torch.tensor([3, 0, 1])
    monkeypatch.setattr(ExpertLinear, "_draw", lambda self, n, device: chosen[:n])
    adamix.set_inference_mode(model, "random")
    routed = _logits(model, inputs)
    monkeypatch.undo()
    for i, expert in enumerate(chosen.tolist()):
        adamix.set_inference_mode(model, "fixed", fixed_expert=expert)
        single = {k: v[i : i + 1] for k, v in inputs.items()}
        torch.testing.assert_close(routed[i : i + 1], _logits(model, single), rtol=1e-5, atol=1e-6)


def test_random_token_inference_differs_from_merge():
    model = _adapted(Case("bert", "adapter"))
    _perturb_experts(model)
    inputs = batch("bert")
    merged = _logits(model, inputs)
    adamix.set_inference_mode(model, "random_token")
    assert not torch.allclose(_logits(model, inputs), merged)


def test_generate_works_for_causal_lm():
    model = adamix.get_adamix_model(tiny_causal_lm("gpt2"), AdaMixConfig(method="lora", bottleneck=2))
    assert model.adamix_config.modules_to_save == []
    ids = torch.tensor([[5, 6, 7]])
    out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 7)


def test_bad_targets_and_double_wrapping_fail_clearly():
    model = tiny_classifier("bert")
    with pytest.raises(ValueError, match="matched no module"):
        adamix.get_adamix_model(model, AdaMixConfig(target_modules=["nonexistent"]))
    with pytest.raises(ValueError, match="has no module 'nohead'"):
        adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(modules_to_save=["nohead"]))
    adamix.get_adamix_model(model, AdaMixConfig())
    with pytest.raises(ValueError, match="already has AdaMix modules"):
        adamix.get_adamix_model(model, AdaMixConfig())
    with pytest.raises(ValueError, match="no AdaMix modules"):
        adamix.merge_experts(tiny_classifier("bert"))


def test_unknown_architecture_needs_explicit_targets():
    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)

    with pytest.raises(ValueError, match="no default for model_type"):
        adamix.get_adamix_model(Toy(), AdaMixConfig())
    toy = adamix.get_adamix_model(Toy(), AdaMixConfig(target_modules=["proj"], bottleneck=2))
    assert len(list(adamix.iter_adamix_layers(toy))) == 1
