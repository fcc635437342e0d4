"""Artifact save/load: bad artifacts and mismatched base models fail clearly and leave the model untouched."""

from __future__ import annotations

import json

import pytest
import torch
import transformers as T
from safetensors.torch import save_file
from tiny_models import CONFIGS, batch, tiny_classifier

import adamix
from adamix import CONFIG_NAME, WEIGHTS_NAME, AdaMixConfig


@pytest.fixture
def artifact(tmp_path):
    model = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(bottleneck=4))
    return adamix.save_adamix(model, tmp_path / "artifact")


def _bigger_bert():
    config = CONFIGS["bert"]()
    config.hidden_size, config.intermediate_size, config.num_labels = 32, 64, 3
    return T.BertForSequenceClassification(config)


def test_wrong_architecture_is_named(artifact):
    with pytest.raises(ValueError, match="saved from a 'bert' model, but this model is a 'gpt2' model"):
        adamix.load_adamix(tiny_classifier("gpt2"), artifact)


def test_wrong_size_is_named_and_model_left_untouched(artifact):
    model = _bigger_bert()
    before = {n: p.clone() for n, p in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match=r"hidden_size 16 \(artifact\) vs 32 \(model\)"):
        adamix.load_adamix(model, artifact)
    assert not hasattr(model, "adamix_config")
    assert not any(True for _ in adamix.iter_adamix_layers(model))
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_fewer_layers_is_named(artifact):
    config = CONFIGS["bert"]()
    config.num_hidden_layers, config.num_labels = 1, 3
    with pytest.raises(ValueError, match="missing|unexpected tensors"):
        adamix.load_adamix(T.BertForSequenceClassification(config), artifact)


def test_missing_files_and_bad_json(tmp_path, artifact):
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        adamix.load_adamix(tiny_classifier("bert"), tmp_path / "nowhere")
    (artifact / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        adamix.load_adamix(tiny_classifier("bert"), artifact)


def test_bad_config_value_names_the_field(artifact):
    data = json.loads((artifact / CONFIG_NAME).read_text())
    data["share"] = "sideways"
    (artifact / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"AdaMixConfig\.share"):
        adamix.load_adamix(tiny_classifier("bert"), artifact)


def test_corrupt_weights_fail_without_unpickling(artifact):
    (artifact / WEIGHTS_NAME).write_bytes(b"\x80\x04this is a pickle, not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        adamix.load_adamix(tiny_classifier("bert"), artifact)


def test_tensor_with_wrong_shape_is_named(artifact):
    from safetensors import safe_open

    with safe_open(str(artifact / WEIGHTS_NAME), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k in tensors if k.endswith("adamix_down.weight"))
    tensors[name] = torch.zeros(4, 5, 16)
    save_file(tensors, str(artifact / WEIGHTS_NAME))
    with pytest.raises(ValueError, match=f"tensor '{name}' has shape"):
        adamix.load_adamix(tiny_classifier("bert"), artifact)


def test_load_into_an_adapted_model_checks_the_mixture(artifact):
    other = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(bottleneck=4, num_experts=2))
    with pytest.raises(ValueError, match="num_experts=4 but the model's AdaMix modules have num_experts=2"):
        adamix.load_adamix(other, artifact)
    same = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(bottleneck=4))
    adamix.load_adamix(same, artifact)


def test_save_replaces_an_existing_artifact_atomically(tmp_path):
    model = adamix.get_adamix_model(tiny_classifier("bert"), AdaMixConfig(bottleneck=4))
    path = adamix.save_adamix(model, tmp_path / "a")
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "adamix_down" in n).add_(1.0)
    adamix.save_adamix(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no staging folders left behind
    loaded = adamix.load_adamix(tiny_classifier("bert"), path)
    inputs = batch("bert")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


_SAVE_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from tiny_models import tiny_classifier
import adamix
torch.manual_seed(0)
model = adamix.get_adamix_model(tiny_classifier("bert"), adamix.AdaMixConfig(bottleneck=4))
adamix.save_adamix(model, sys.argv[1])
"""


def test_two_processes_save_byte_identical_artifacts(tmp_path):
    """safetensors writes `__metadata__` in a per-process hash order; the artifact sorts it, so DVC sees no change."""
    import subprocess
    import sys
    from pathlib import Path

    script = _SAVE_SCRIPT.format(tests=str(Path(__file__).parent))
    folders = [tmp_path / f"save{i}" for i in range(3)]
    for i, folder in enumerate(folders):
        env = {"PYTHONHASHSEED": str(i), "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True, env=env, timeout=120)
    files = [{p.name: p.read_bytes() for p in folder.iterdir()} for folder in folders]
    assert files[0] == files[1] == files[2]
    for saved in files:  # each process's hash order was a coin flip per key pair: every file must be sorted
        raw = saved[WEIGHTS_NAME]
        header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
        assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    adamix.load_adamix(tiny_classifier("bert"), folders[0])  # still a valid artifact
