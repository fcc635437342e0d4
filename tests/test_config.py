"""AdaMixConfig validation, serialisation and architecture defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from adamix import AdaMixConfig
from adamix.config import matches_target


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"method": "prefix"}, "method"),
        ({"num_experts": 0}, "num_experts"),
        ({"num_experts": 2.5}, "num_experts"),
        ({"num_experts": True}, "num_experts"),
        ({"bottleneck": 0}, "bottleneck"),
        ({"lora_alpha": -1}, "lora_alpha"),
        ({"share": "both"}, "share"),
        ({"inference": "average"}, "inference"),
        ({"fixed_expert": 4}, "fixed_expert"),
        ({"placement": "pfeiffer"}, "placement"),
        ({"method": "lora", "placement": "houlsby"}, "placement"),
        ({"dropout": 1.0}, "dropout"),
        ({"target_modules": "("}, "target_modules"),
        ({"target_modules": []}, "target_modules"),
        ({"modules_to_save": "classifier"}, "modules_to_save"),
    ],
)
def test_bad_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"AdaMixConfig\.{field}\b"):
        AdaMixConfig(**kwargs)


def test_json_round_trip_is_sorted_and_rejects_unknown_keys(tmp_path):
    cfg = AdaMixConfig(method="lora", num_experts=8, bottleneck=4, target_modules=["q_proj", "v_proj"])
    cfg.to_json_file(tmp_path / "c.json", extra={"merged": False})
    text = (tmp_path / "c.json").read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert AdaMixConfig.from_dict(data, ignore=("merged",)) == cfg
    with pytest.raises(ValueError, match="no field"):
        AdaMixConfig.from_dict({"num_expert": 4})


@pytest.mark.parametrize(
    "model_type, method, placement, hits, misses",
    [
        (
            "bert",
            "adapter",
            "ffn",
            ["bert.encoder.layer.0.output.dense"],
            ["bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.intermediate.dense"],
        ),
        (
            "roberta",
            "adapter",
            "houlsby",
            ["roberta.encoder.layer.3.output.dense", "roberta.encoder.layer.3.attention.output.dense"],
            ["roberta.encoder.layer.3.attention.self.query"],
        ),
        (
            "bert",
            "lora",
            "ffn",
            ["bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.value"],
            ["bert.encoder.layer.1.attention.self.key"],
        ),
        ("llama", "lora", "ffn", ["model.layers.0.self_attn.q_proj"], ["model.layers.0.self_attn.k_proj"]),
        ("gpt2", "adapter", "ffn", ["transformer.h.0.mlp.c_proj"], ["transformer.h.0.attn.c_proj"]),
        (
            "mpnet",
            "lora",
            "ffn",
            ["mpnet.encoder.layer.0.attention.attn.q"],
            ["mpnet.encoder.layer.0.attention.attn.o"],
        ),
    ],
)
def test_architecture_defaults(model_type, method, placement, hits, misses):
    targets = AdaMixConfig(method=method, placement=placement).resolved_targets(model_type)
    assert all(matches_target(n, targets) for n in hits)
    assert not any(matches_target(n, targets) for n in misses)


def test_explicit_targets_match_by_suffix_or_regex():
    assert matches_target("a.b.query", ["query"])
    assert not matches_target("a.b.myquery", ["query"])
    assert matches_target("a.b.query", r".*\.(query|value)")
    assert not matches_target("a.b.query.x", r".*\.(query|value)")


_PROFILES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("profile", _PROFILES)
def test_a_profile_rate_reaches_every_method_it_does_not_override(profile: str) -> None:
    """params.yaml's method_overrides would silently beat a profile's `train.learning_rate` for the methods it
    names: a profile that sets the rate must name its own rate for every such method it trains."""
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "profiles" / f"{profile}.yaml").read_text(encoding="utf-8")) or {}
    rate = (raw.get("train") or {}).get("learning_rate")
    if rate is None:
        pytest.skip("the profile keeps the default rates")
    from flows.config.grid import run_params
    from flows.config.params import load_params

    params = load_params(root / "params.yaml", profile)
    own = raw.get("method_overrides") or {}
    for method in params["methods"]:
        if "learning_rate" not in ((own.get(method) or {}).get("train") or {}):
            assert run_params(params, method)["train"]["learning_rate"] == rate, method
