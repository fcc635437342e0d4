"""The train stage's model selection (`train.select`), learning-rate lists, expert diagnostics in the history,
and the params that drive them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from tiny_project import SEED, TASK, make_project

from flows.config import paths
from flows.config.grid import run_params
from flows.config.params import ParamsError, load_params, validate
from flows.data import load_split, read_meta
from flows.modeling.models import load_run_model, load_tokenizer, method_spec
from flows.stages import evaluate, fewshot, merge, prepare, train
from flows.training import loop


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("select")
    params = load_params(
        make_project(root, tiny_model_dir, train={"epochs": 3, "select": "best", "learning_rate": 5.0e-2}),
        profile="",
    )
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    return {"root": root, "params": params}


def test_best_epoch_weights_are_the_ones_saved(project: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation peaks at epoch 1 of 3 (later epochs are reported 1.0 lower): the artifact is epoch 1's."""
    root, params = project["root"], project["params"]
    real_score, calls, weights = loop.score, [], []

    def peak_at_epoch_one(model, *args, **kwargs):
        metrics = real_score(model, *args, **kwargs)
        calls.append(dict(metrics))
        weights.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
        return metrics if len(calls) == 1 else {k: v - 1.0 for k, v in metrics.items()}

    monkeypatch.setattr(loop, "score", peak_at_epoch_one)  # the epoch end validates
    info = train.train_run(params, TASK, "adamix_adapter", SEED, root=root, track=False)
    assert len(calls) == 3 and info["selection"]["rule"] == "best" and info["selection"]["epoch"] == 1
    assert info["selection"]["validation"]["validation/accuracy"] == calls[0]["accuracy"]
    # The saved artifact reproduces epoch 1's validation score, scored afresh.
    run = run_params(params, "adamix_adapter")
    split = paths.split_dir(TASK, SEED, root)
    meta = read_meta(split)
    spec, _ = method_spec("adamix_adapter", run)
    model = load_run_model(run, spec, meta, paths.run_dir(TASK, "adamix_adapter", SEED, root))
    again = real_score(
        model, load_split(split, "validation"), meta, load_tokenizer(run, meta), run, torch.device("cpu")
    )
    assert again == calls[0]
    saved = dict(model.named_parameters())
    assert all(torch.equal(saved[n], w) for n, w in weights[0].items())  # epoch 1's weights, exactly
    assert not all(torch.equal(saved[n], w) for n, w in weights[2].items())  # not the last epoch's
    history = json.loads((paths.run_dir(TASK, "adamix_adapter", SEED, root) / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 6, 9]  # 24 examples, batches of 8
    assert all(0 <= h["experts/merged_travel"] and "experts/expert_spread" in h for h in history)
    # The kept epoch travels through evaluate into the result the report reads.
    merge.merge_run(params, TASK, "adamix_adapter", SEED, root=root)
    result = evaluate.evaluate_run(params, TASK, "adamix_adapter", SEED, root=root, track=False)
    assert result["selection"]["epoch"] == 1 and result["learning_rate"] == 5.0e-2


def test_last_keeps_the_final_epoch(project: dict) -> None:
    params = copy.deepcopy(project["params"])
    params["train"]["select"] = "last"
    info = train.train_run(params, TASK, "lora", SEED, root=project["root"], track=False)
    assert info["selection"]["epoch"] == 3 and info["selection"]["validation"] == info["final_validation"]


def test_a_method_with_a_rate_list_trains_only_through_its_candidates(project: dict) -> None:
    params = copy.deepcopy(project["params"])
    params["train"]["learning_rate"] = [1.0e-2, 5.0e-2]
    validate(params)
    with pytest.raises(
        ParamsError, match=r"several learning rates \[0.01, 0.05\].*adapter.lr=0.01, adapter.lr=0.05"
    ):
        train.train_run(params, TASK, "adapter", SEED, root=project["root"], track=False)
    info = train.train_run(params, TASK, "adapter.lr=0.01", SEED, root=project["root"], track=False)
    assert info["learning_rate"] == 1.0e-2


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "select", "first", "'train.select' must be one of last, best, got 'first'"),
        ("train", "learning_rate", [], "'train.learning_rate' must be a number > 0, or a non-empty list"),
        (
            "train",
            "learning_rate",
            [1e-3, 1e-3],
            "'train.learning_rate' must be a number > 0, or a non-empty list",
        ),
        (
            "train",
            "learning_rate",
            [1e-3, -1],
            "'train.learning_rate' must be a number > 0, or a non-empty list",
        ),
        ("adamix", "expert_init", "orthogonal", "'adamix.expert_init' must be one of identical, independent"),
        ("adamix", "init_std", 0, "'adamix.init_std' must be null or a number > 0, got 0"),
    ],
)
def test_bad_values_name_the_key(project: dict, section: str, key: str, value, message: str) -> None:
    params = copy.deepcopy(project["params"])
    params[section][key] = value
    with pytest.raises(ParamsError) as err:
        validate(params)
    assert message in str(err.value)


def test_an_ablation_variant_of_a_swept_method_trains_at_each_rate(project: dict) -> None:
    params = copy.deepcopy(project["params"])
    params["train"]["learning_rate"] = [1.0e-2, 5.0e-2]
    params["ablations"]["tasks"] = [TASK]
    params["ablations"]["grids"] = {
        "experts": {"method": "adamix_adapter", "key": "adamix.num_experts", "values": [1, 2]}
    }
    validate(params)
    variant = "adamix_adapter.experts=1"
    with pytest.raises(ParamsError, match=rf"several learning rates .*{variant}.lr=0.01, {variant}.lr=0.05"):
        train.train_run(params, TASK, variant, SEED, root=project["root"], track=False)
    info = train.train_run(params, TASK, f"{variant}.lr=0.05", SEED, root=project["root"], track=False)
    assert info["learning_rate"] == 5.0e-2
    saved = json.loads(
        (paths.run_dir(TASK, f"{variant}.lr=0.05", SEED, project["root"]) / "run.json").read_text()
    )
    assert saved["learning_rate"] == 5.0e-2
