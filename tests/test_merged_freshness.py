"""Merge-mode evaluation always reads the current experts, whatever changed them (issue 22, item 1).

A merged-weight cache keyed on `Parameter._version` went stale under the fused AdamW kernel, which updates the
parameters in place without bumping their version: evaluation during training then used old experts. Each case
below changes the experts in one way a user's code does, after a first evaluation, and compares merge-mode
logits with a fresh merge of the same experts (a deep copy collapsed by `merge_experts`).
"""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import batch, tiny_classifier

import adamix
from adamix import AdaMixConfig
from adamix.model import adamix_state_dict

OPTIMIZERS = {
    "adamw_fused": lambda p: torch.optim.AdamW(p, lr=0.05, fused=True),
    "adamw_foreach": lambda p: torch.optim.AdamW(p, lr=0.05, foreach=True),
    "adamw_for_loop": lambda p: torch.optim.AdamW(p, lr=0.05, foreach=False),
    "adam_fused": lambda p: torch.optim.Adam(p, lr=0.05, fused=True),
    "sgd_fused": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, fused=True),
    "sgd_foreach": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, foreach=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.05),
}


def _model(method: str) -> torch.nn.Module:
    config = AdaMixConfig(method=method, num_experts=4, bottleneck=4, expert_init="independent")
    return adamix.get_adamix_model(tiny_classifier("bert"), config)


def _merge_logits(model: torch.nn.Module) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch("bert")).logits


def _fresh_merge_logits(model: torch.nn.Module) -> torch.Tensor:
    return _merge_logits(adamix.merge_experts(copy.deepcopy(model)))


def _train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    model.train()
    inputs = batch("bert")
    for _ in range(steps):
        loss = model(**inputs).logits.logsumexp(-1).mean() - model(**inputs).logits[:, 0].mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def _assert_fresh(model: torch.nn.Module, before: torch.Tensor) -> None:
    after = _merge_logits(model)
    assert not torch.allclose(after, before), "the experts did not change: the case tests nothing"
    torch.testing.assert_close(after, _fresh_merge_logits(model), rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["adapter", "lora"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_merge_mode_follows_every_torch_optimizer(method, kind):
    model = _model(method)
    before = _merge_logits(model)  # a first evaluation, as a Trainer's does before training continues
    trainable = [p for p in model.parameters() if p.requires_grad]
    _train(model, OPTIMIZERS[kind](trainable))
    _assert_fresh(model, before)


def _perturbed(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    state = adamix_state_dict(model)
    return {k: v + torch.randn(v.shape, generator=g) for k, v in state.items()}


def _copy_under_no_grad(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if name in state:
                tensor.copy_(state[name])


def _assign_data(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    for name, tensor in model.named_parameters():
        if name in state:
            tensor.data.add_(state[name] - tensor.data)  # `.data` has a version counter of its own


def _load_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(state, strict=False)


@pytest.mark.parametrize("method", ["adapter", "lora"])
@pytest.mark.parametrize(
    "update", [_copy_under_no_grad, _assign_data, _load_state_dict], ids=lambda f: f.__name__
)
def test_merge_mode_follows_in_place_writes(method, update):
    model = _model(method)
    before = _merge_logits(model)
    update(model, _perturbed(model))
    _assert_fresh(model, before)


def test_trainer_evaluation_matches_its_saved_artifact(tmp_path):
    """transformers' default optimizer (fused AdamW) and evaluation mid-training: the eval loss is the saved
    artifact's, and a checkpoint chosen on it is the one that scored it."""
    from test_trainer import _base, _eval_loss_by_hand, _trainer

    trainer = _trainer(tmp_path, max_steps=6, eval_strategy="steps", eval_steps=3)
    assert trainer.args.optim.value.startswith("adamw_torch")  # the Trainer's own default, not ours
    trainer.train()
    during = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e][-1]
    trainer.save_model(str(tmp_path / "saved"))
    saved = adamix.load_adamix(_base(), tmp_path / "saved")
    assert during == pytest.approx(_eval_loss_by_hand(saved, trainer.eval_dataset), rel=1e-5)
