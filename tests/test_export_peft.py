"""export_peft: a merged AdaMix LoRA written as a PEFT LoRA folder gives the same logits through PeftModel."""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass

import pytest
import torch
from safetensors import safe_open
from tiny_models import batch, tiny_causal_lm, tiny_classifier

import adamix
from adamix import CONFIG_NAME, WEIGHTS_NAME, AdaMixConfig

peft = pytest.importorskip("peft")


@dataclass(frozen=True)
class Case:
    arch: str
    task: str = "seq_cls"  # or "causal_lm"
    share: str = "up"
    experts: int = 4
    alpha: float = 32.0
    dropout: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.arch}-{self.task}-share_{self.share}-M{self.experts}-alpha{self.alpha}"

    def base(self) -> torch.nn.Module:
        return tiny_classifier(self.arch) if self.task == "seq_cls" else tiny_causal_lm(self.arch)


CASES = [
    Case("bert"),
    Case("bert", share="none", experts=3, alpha=12.5, dropout=0.1),  # non-integral alpha / r = 3.125
    Case("bert", experts=1),  # a plain single LoRA: exportable without merging
    Case("gpt2"),  # Conv1D: fan_in_fan_out
    Case("gpt2", task="causal_lm", share="none", experts=2),
    Case("llama", share="down"),
    Case("llama", task="causal_lm", alpha=8.0),
]
PEFT_TASK = {"seq_cls": "SEQ_CLS", "causal_lm": "CAUSAL_LM"}


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every expert (and the head) its own random weights, so the merge is not trivial and the head counts."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, projection in adamix.model.iter_expert_projections(model):
            projection.weight.add_(0.3 * torch.randn(projection.weight.shape, generator=g))
        for head in model.adamix_config.modules_to_save:
            for p in model.get_submodule(head).parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g))


def _merged(case: Case) -> torch.nn.Module:
    config = AdaMixConfig(
        method="lora",
        num_experts=case.experts,
        bottleneck=4,
        lora_alpha=case.alpha,
        share=case.share,
        dropout=case.dropout,
    )
    model = adamix.get_adamix_model(case.base(), config)
    _randomise(model)
    if case.experts > 1:
        experts = {n: p.num_experts for n, p in adamix.model.iter_expert_projections(model)}
        assert max(experts.values()) == case.experts  # a real mixture before the merge
        adamix.merge_experts(model)
    return model.eval()


def _load_peft(case: Case, path) -> torch.nn.Module:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = peft.PeftModel.from_pretrained(case.base(), path).eval()
    assert not [w for w in caught if "missing adapter keys" in str(w.message)]
    return loaded


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_peft_loads_the_same_logits(case, tmp_path):
    model = _merged(case)
    inputs = batch(case.arch)
    path = adamix.export_peft(model, tmp_path / "lora")
    loaded = _load_peft(case, path)
    with torch.no_grad():
        ours, theirs, base = model(**inputs).logits, loaded(**inputs).logits, case.base()(**inputs).logits
    assert not torch.allclose(ours, base, atol=1e-3)  # the adapter changes the output
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # PEFT's own merge folds it into the base weights (Conv1D: fan_in_fan_out) alike
        folded = loaded.merge_and_unload()(**inputs).logits
    torch.testing.assert_close(folded, ours, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_files_keys_and_config_are_peft_own(case, tmp_path):
    """What PEFT itself saves for the loaded adapter has exactly our file names, tensor names and shapes."""
    model = _merged(case)
    path = adamix.export_peft(model, tmp_path / "lora")
    assert sorted(p.name for p in path.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    assert (CONFIG_NAME, WEIGHTS_NAME) == (peft.utils.CONFIG_NAME, peft.utils.SAFETENSORS_WEIGHTS_NAME)
    resaved = tmp_path / "resaved"
    _load_peft(case, path).save_pretrained(resaved)

    def tensors(folder):
        with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()

    (ours, our_meta), (theirs, their_meta) = tensors(path), tensors(resaved)
    assert sorted(ours) == sorted(theirs) and our_meta == their_meta == {"format": "pt"}
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    lora = [k for k in ours if ".lora_" in k]
    assert lora and all(
        k.startswith("base_model.model.") and k.endswith(("lora_A.weight", "lora_B.weight")) for k in lora
    )

    ours_cfg = json.loads((path / CONFIG_NAME).read_text())
    theirs_cfg = json.loads((resaved / CONFIG_NAME).read_text())
    for key, value in ours_cfg.items():  # every field we write, PEFT reads back to the same value
        if key == "target_modules":
            assert sorted(theirs_cfg[key]) == sorted(value)
        elif key == "modules_to_save":  # PEFT adds its own head names for classification tasks
            assert set(value or []) <= set(theirs_cfg[key] or [])
        else:
            assert theirs_cfg[key] == value, key
    assert ours_cfg["task_type"] == PEFT_TASK[case.task]
    assert ours_cfg["r"] == 4 and ours_cfg["lora_alpha"] / ours_cfg["r"] == case.alpha / 4
    assert ours_cfg["fan_in_fan_out"] is (case.arch == "gpt2")
    assert ours_cfg["modules_to_save"] == (model.adamix_config.modules_to_save or None)


def test_target_modules_fall_back_to_full_names(tmp_path):
    """Adapting only layer 0's query: the leaf name 'query' would catch layer 1 too, so full names are written."""
    model = adamix.get_adamix_model(
        tiny_classifier("bert"),
        AdaMixConfig(method="lora", num_experts=2, bottleneck=4, target_modules=r".*layer\.0\..*\.query"),
    )
    _randomise(model)
    adamix.merge_experts(model.eval())
    path = adamix.export_peft(model, tmp_path / "lora")
    assert json.loads((path / CONFIG_NAME).read_text())["target_modules"] == [
        "bert.encoder.layer.0.attention.self.query"
    ]
    loaded = _load_peft(Case("bert"), path)
    inputs = batch("bert")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=1e-5, rtol=1e-5)
    assert sum(1 for name, _ in loaded.named_modules() if name.endswith(".query.lora_A")) == 1


def test_trained_mixture_exports_after_merge(tmp_path):
    """A mixture trained a few steps with AdaMix's objective, merged, exported: PEFT gives the same logits."""
    model = adamix.get_adamix_model(
        tiny_classifier("bert"), AdaMixConfig(method="lora", num_experts=4, bottleneck=4)
    )
    model.train()
    inputs, labels = batch("bert", size=4), torch.tensor([0, 1, 2, 1])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        adamix.adamix_loss(model, inputs, labels).loss.backward()
        optimizer.step()
    adamix.merge_experts(model).eval()
    path = adamix.export_peft(model, tmp_path / "lora")
    loaded = _load_peft(Case("bert"), path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=1e-5, rtol=1e-5)


def test_unmerged_mixture_is_refused(tmp_path):
    model = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(method="lora", num_experts=4))
    with pytest.raises(ValueError, match=r"call adamix\.merge_experts\(model\) first"):
        adamix.export_peft(model, tmp_path / "lora")
    assert not (tmp_path / "lora").exists()


def test_adapter_method_is_refused(tmp_path):
    model = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(method="adapter", num_experts=2))
    adamix.merge_experts(model)
    with pytest.raises(ValueError, match=r"no PEFT LoRA equivalent.*save_adamix.*merge_experts"):
        adamix.export_peft(model, tmp_path / "lora")
    assert not (tmp_path / "lora").exists()


def test_plain_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="get_adamix_model"):
        adamix.export_peft(tiny_classifier("bert"), tmp_path / "lora")


def test_export_replaces_an_existing_folder_and_leaves_no_staging(tmp_path):
    target = tmp_path / "lora"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    adamix.export_peft(_merged(Case("bert")), target)
    assert sorted(p.name for p in target.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    assert [p.name for p in tmp_path.iterdir()] == ["lora"]


def test_export_leaves_the_model_unchanged(tmp_path):
    model = _merged(Case("gpt2"))
    before = copy.deepcopy(model.state_dict())
    adamix.export_peft(model, tmp_path / "lora")
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
