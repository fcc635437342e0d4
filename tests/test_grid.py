"""Tests for flows.config.grid: ablation grids expand into variant runs that reuse the main runs and validate early."""

from __future__ import annotations

import copy

import pytest

from flows.config import grid
from flows.config.grid import run_params
from flows.config.params import ParamsError, validate
from flows.config.schema import DEFAULTS
from flows.modeling.models import method_spec


@pytest.fixture()
def params() -> dict:
    p = copy.deepcopy(DEFAULTS)
    p.update(tasks=["rotten_tomatoes"], methods=["adamix_adapter", "adapter"], seeds=[13, 21])
    p["ablations"]["tasks"] = ["rotten_tomatoes"]
    p["ablations"]["seeds"] = [13]
    return p


def test_defaults_run_no_ablation() -> None:
    assert grid.runs(DEFAULTS) == [
        (t, m, s) for t in DEFAULTS["tasks"] for m in DEFAULTS["methods"] for s in DEFAULTS["seeds"]
    ]


def test_variants_reuse_the_main_run_for_the_methods_own_value(params: dict) -> None:
    validate(params)
    experts = grid.variants(params, "num_experts")
    assert [v.method for v in experts] == [
        "adamix_adapter.num_experts=1",
        "adamix_adapter.num_experts=2",
        "adamix_adapter",  # M = 4 is the method's own setting
        "adamix_adapter.num_experts=8",
        "adamix_adapter.num_experts=16",
    ]
    runs = grid.runs(params)
    assert len(runs) == len(set(runs))
    assert runs[:4] == [("rotten_tomatoes", m, s) for m in ("adamix_adapter", "adapter") for s in (13, 21)]
    ablation = {m for _, m, s in runs[4:]}
    assert all(s == 13 for _, _, s in runs[4:])
    # 4 + 4 + 2 + 1 variants beyond the main method
    assert len(ablation) == 11 and "adamix_adapter" not in ablation


def test_variant_run_params_change_one_key(params: dict) -> None:
    base = run_params(params, "adamix_adapter")
    for name, variant in grid.all_variants(params).items():
        run = run_params(params, name)
        section, key = variant.key
        assert run[section][key] == variant.value
        run[section][key] = base[section][key]
        assert {k: v for k, v in run.items() if k != "method_overrides"} == {
            k: v for k, v in base.items() if k != "method_overrides"
        }
    spec, config = method_spec(
        "adamix_adapter.consistency=0.0", run_params(params, "adamix_adapter.consistency=0.0")
    )
    assert spec.kind == "adamix" and not spec.consistency and config.num_experts == 4
    spec, config = method_spec("adamix_adapter.share=none", run_params(params, "adamix_adapter.share=none"))
    assert spec.consistency and config.share == "none"


def test_variant_of_a_method_with_overrides_starts_from_its_override(params: dict) -> None:
    params["ablations"]["grids"] = {
        "rank": {"method": "adamix_lora", "key": "adamix.bottleneck", "values": [2, 4]}
    }
    assert [v.method for v in grid.variants(params, "rank")] == ["adamix_lora.rank=2", "adamix_lora"]
    own_rate = params["method_overrides"]["adamix_lora"]["train"]["learning_rate"]
    assert own_rate != params["train"]["learning_rate"]  # so that inheriting the override shows
    assert run_params(params, "adamix_lora.rank=2")["method_overrides"] == {
        "adamix_lora.rank=2": {"adamix": {"bottleneck": 2}, "train": {"learning_rate": own_rate}}
    }


def test_grid_vars_key_runs_by_stage_name(params: dict) -> None:
    out = grid.grid_vars(params)
    assert out["tasks"] == ["rotten_tomatoes"]
    assert set(out["splits"]) == {"rotten_tomatoes-13", "rotten_tomatoes-21"}
    assert out["runs"]["rotten_tomatoes-adamix_adapter.num_experts=8-13"] == {
        "task": "rotten_tomatoes",
        "method": "adamix_adapter.num_experts=8",
        "seed": 13,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"method": "adamix_adapter", "key": "adamix.num_expert", "values": [1]},
            "did you mean 'adamix.num_experts'",
        ),
        (
            {"method": "adamix_adapter", "key": "adamix.num_experts", "values": [0]},
            "'ablations.grids.bad.values'",
        ),
        (
            {"method": "adamix_adapter", "key": "num_experts", "values": [1]},
            "'ablations.grids.bad.key' must be",
        ),
        ({"method": "nope", "key": "adamix.num_experts", "values": [1]}, "'ablations.grids.bad.method'"),
        ({"method": "adamix_adapter", "key": "adamix.num_experts", "values": []}, "non-empty list"),
        ({"method": "adamix_adapter", "key": "adamix.num_experts", "values": [2, 2]}, "repeated values"),
        (
            {"method": "adamix_adapter", "key": "adamix.fixed_expert", "values": [7]},
            "with 'ablations.grids.bad'",
        ),
        ({"method": "adamix_adapter", "key": "adamix.share"}, "exactly 'method', 'key' and 'values'"),
    ],
)
def test_bad_grids_name_the_problem(params: dict, spec: dict, message: str) -> None:
    params["ablations"]["grids"]["bad"] = spec
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(params)


def test_a_grid_named_lr_must_vary_the_learning_rate(params: dict) -> None:
    params["ablations"]["grids"]["lr"] = {
        "method": "adamix_adapter",
        "key": "adamix.num_experts",
        "values": [2],
    }
    with pytest.raises(ParamsError, match="'ablations.grids.lr': .* its key must be 'train.learning_rate'"):
        validate(params)


def test_variants_of_a_method_swept_over_rates_are_swept_too(params: dict) -> None:
    params["train"]["learning_rate"] = [1.0e-3, 5.0e-3]
    params["method_overrides"]["adapter"] = {"train": {"learning_rate": [1.0e-3, 5.0e-3]}}  # its own default
    params["ablations"]["grids"] = {
        "num_experts": {"method": "adamix_adapter", "key": "adamix.num_experts", "values": [2, 4]},
        "consistency": {"method": "adamix_adapter", "key": "train.consistency_weight", "values": [0.0]},
    }
    validate(params)
    names = {m for _, m, _ in grid.runs(params)}
    assert names == {
        f"{method}.lr={rate}"
        for method in (
            "adamix_adapter",
            "adapter",
            "adamix_adapter.num_experts=2",
            "adamix_adapter.consistency=0.0",
        )
        for rate in ("0.001", "0.005")
    }  # no run trains at a list of rates; M = 4 is the main runs, not trained twice
    nested = run_params(params, "adamix_adapter.consistency=0.0.lr=0.005")
    assert nested["train"]["learning_rate"] == 5.0e-3 and nested["train"]["consistency_weight"] == 0.0
    assert nested["adamix"]["num_experts"] == params["adamix"]["num_experts"]
    assert run_params(params, "adamix_adapter.num_experts=2.lr=0.001")["adamix"]["num_experts"] == 2
    seeds = {s for _, m, s in grid.runs(params) if m.startswith("adamix_adapter.num_experts=2")}
    assert seeds == {13}  # the ablation seeds
    with pytest.raises(ParamsError, match="unknown method 'adamix_adapter.num_experts=2.lr=0.003'"):
        run_params(params, "adamix_adapter.num_experts=2.lr=0.003")


def test_unknown_ablation_task_is_named(params: dict) -> None:
    params["ablations"]["tasks"] = ["rotten_tomatoe"]
    with pytest.raises(ParamsError, match=r"ablations.tasks\[0\].*did you mean 'rotten_tomatoes'"):
        validate(params)


def test_unknown_variant_name_is_an_unknown_method(params: dict) -> None:
    with pytest.raises(ParamsError, match="unknown method 'adamix_adapter.num_experts=3'"):
        run_params(params, "adamix_adapter.num_experts=3")


def test_a_profile_switches_a_grid_off_with_null_and_adds_its_own(tmp_path) -> None:
    from flows.config.params import load_params
    from flows.config.paths import ROOT

    profile = tmp_path / "lr_only.yaml"
    profile.write_text(
        "ablations:\n"
        "  tasks: [rotten_tomatoes]\n"
        "  grids:\n"
        "    num_experts: null\n"
        "    bottleneck: null\n"
        "    lr: {method: adapter, key: train.learning_rate, values: [1.0e-3, 5.0e-3]}\n"
    )
    params = load_params(ROOT / "params.yaml", str(profile))
    assert set(params["ablations"]["grids"]) == {"share", "consistency", "lr"}
    methods = {method for _, method, _ in grid.runs(params)}
    assert "adapter.lr=0.001" in methods and not any("num_experts" in m or "bottleneck" in m for m in methods)
