"""Generation tasks on causal LMs: source masking, consistency masking, decoding settings, and the stages end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_lm, tiny_causal_lm, tiny_lm_tokenizer
from tiny_project import SEED, tiny_params

from adamix.consistency import consistency_loss
from flows.config import paths
from flows.data.prepare import write_task_dir
from flows.modeling.base import ModelError
from flows.modeling.generation import (
    IGNORE_INDEX,
    Decoding,
    GenerationEncoder,
    causal_lm_loss,
    generate_texts,
    next_token_mask,
    task_objective,
)
from flows.modeling.models import load_tokenizer
from flows.nlg_metrics import coco
from flows.stages.evaluate import evaluate_run
from flows.stages.merge import merge_run
from flows.stages.train import train_run

NAMES = ["alimentum", "vaults", "eagle", "mill"]
FOODS = ["french", "chinese", "italian", "indian"]
WORDS = [*NAMES, *FOODS, "name", ":", "|", "food", "serves", "is", "a", "restaurant", "the"]
TASK = "tinye2e"


def _source(name: str, food: str) -> str:
    return f"name : {name} | food : {food}"


def _references(name: str, food: str) -> list[str]:
    return [f"{name} serves {food} food", f"{name} is a {food} restaurant"]


def write_generation_task(root, task: str = TASK, seed: int = SEED):
    """A prepared generation task (the contract of flows.data for kind `generation`) in the seed's split folder."""
    pairs = [(n, f) for n in NAMES for f in FOODS]
    train = [
        {"text_a": _source(n, f), "text_b": None, "label": r}
        for n, f in pairs[:12]
        for r in _references(n, f)
    ]

    def grouped(chosen):
        return [
            {
                "text_a": _source(n, f),
                "text_b": None,
                "label": _references(n, f)[0],
                "references": _references(n, f),
            }
            for n, f in chosen
        ]

    splits = {"train": train, "validation": grouped(pairs[12:14]), "test": grouped(pairs[14:])}
    meta = {
        "task": task,
        "kind": "generation",
        "num_labels": 0,
        "label_names": [],
        "is_regression": False,
        "metrics": ["bleu", "meteor", "ter"],
        "primary_metric": "bleu",
        "metric_suite": "webnlg",
        "splits": {k: len(v) for k, v in splits.items()},
    }
    return write_task_dir(paths.split_dir(task, seed, root), splits, meta)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return save_tiny_lm(tmp_path_factory.mktemp("tiny-llama"), WORDS)


def test_the_loss_and_its_labels_count_the_target_tokens_only():
    tokenizer = tiny_lm_tokenizer(WORDS)
    encoder = GenerationEncoder(tokenizer, "\n")
    chunk = [
        {"text_a": _source("vaults", "french"), "label": "vaults serves french food"},
        {"text_a": "name : mill", "label": "mill"},
    ]
    inputs, labels = encoder(chunk, max_length=32)
    source = encoder.source_ids(chunk[0]["text_a"])
    target = encoder.target_ids(chunk[0]["label"])
    assert target[-1] == tokenizer.eos_token_id
    assert inputs["input_ids"][0, : len(source) + len(target)].tolist() == source + target
    assert labels[0].tolist() == [IGNORE_INDEX] * len(source) + target  # source masked, target kept
    short = len(encoder.source_ids("name : mill")) + 2  # "mill" + eos
    assert inputs["attention_mask"][1].tolist() == [1] * short + [0] * (labels.shape[1] - short)
    assert (labels[1, short:] == IGNORE_INDEX).all()  # padding masked

    model = tiny_causal_lm("llama")
    logits = model(**inputs).logits
    ours = causal_lm_loss(logits, labels)
    assert torch.allclose(ours, model(**inputs, labels=labels).loss, atol=1e-6)  # transformers' shifted loss
    # Changing the source's logits leaves the loss unchanged: only target positions count.
    moved = logits.clone()
    moved[0, : len(source) - 1] += torch.randn_like(moved[0, : len(source) - 1])
    assert torch.allclose(causal_lm_loss(moved, labels), ours)
    smooth = causal_lm_loss(logits, labels, label_smoothing=0.1)
    positions = labels[:, 1:] != IGNORE_INDEX
    logp = logits[:, :-1].log_softmax(-1)[positions]
    nll = -logp.gather(-1, labels[:, 1:][positions].unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(smooth, (0.9 * nll + 0.1 * -logp.mean(-1)).mean(), atol=1e-6)  # the official rule


def test_the_consistency_term_is_masked_to_the_target_positions():
    labels = torch.tensor(
        [[IGNORE_INDEX, IGNORE_INDEX, 7, 8, 2], [IGNORE_INDEX, 5, 2, IGNORE_INDEX, IGNORE_INDEX]]
    )
    mask = next_token_mask(labels)
    # logits at t predict token t + 1: the positions just before each target token
    assert mask.tolist() == [[False, True, True, True, False], [True, True, False, False, False]]
    a, b = torch.randn(2, 5, 11), torch.randn(2, 5, 11)
    outside = b.clone()
    outside[~mask] = torch.randn_like(outside[~mask]) * 5
    assert torch.allclose(consistency_loss(a, b, mask), consistency_loss(a, outside, mask))
    assert not torch.allclose(consistency_loss(a, b), consistency_loss(a, outside))
    loss, mask_of = task_objective({"kind": "generation"}, 0.1)
    assert mask_of is next_token_mask and loss.keywords == {"label_smoothing": 0.1}
    assert task_objective({"kind": "classification"})[1] is None


def test_decoding_settings_are_the_official_ones_and_reach_generate(monkeypatch):
    official = Decoding()
    assert (
        official.num_beams,
        official.length_penalty,
        official.no_repeat_ngram_size,
        official.max_new_tokens,
    ) == (
        10,
        0.8,
        4,
        64,
    )
    params = tiny_params_for_generation()
    assert Decoding.from_params(params) == official  # the defaults of params.yaml are the official ones
    assert Decoding.from_params(params, validation=True).num_beams == 1
    model, tokenizer = tiny_causal_lm("llama"), tiny_lm_tokenizer(WORDS)
    seen = {}
    original = type(model).generate

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "generate", spy)
    encoder = GenerationEncoder(tokenizer, "\n")
    sources = [_source("mill", "indian"), "name : eagle", _source("vaults", "chinese")]
    decoding = Decoding(num_beams=3, max_new_tokens=5)
    batched = generate_texts(
        model, encoder, sources, decoding, max_length=32, batch_size=8, device=torch.device("cpu")
    )
    assert {
        k: seen[k] for k in ("num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens")
    } == {
        "num_beams": 3,
        "length_penalty": 0.8,
        "no_repeat_ngram_size": 4,
        "max_new_tokens": 5,
    }
    assert seen["do_sample"] is False
    one_by_one = [
        generate_texts(
            model, encoder, [s], decoding, max_length=32, batch_size=1, device=torch.device("cpu")
        )[0]
        for s in sources
    ]
    assert batched == one_by_one  # left padding: a batch decodes as each source alone, in the input order
    assert all(len(text.split()) <= 5 for text in batched)


def tiny_params_for_generation(root=None, model_dir=None, methods=("adamix_lora",), **sections):
    params = tiny_params(
        Path(root or "/nonexistent"), Path(model_dir or "/nonexistent"), methods=methods, **sections
    )
    params["tasks"] = [TASK]
    params["datasets"] = {}
    return params


@pytest.mark.parametrize("method", ["adamix_lora", "adamix_adapter", "lora", "full"])
def test_every_method_trains_merges_and_decodes_a_generation_task(tmp_path, lm_dir, method, monkeypatch):
    write_generation_task(tmp_path)
    java = method == "adamix_lora"  # METEOR's Java run once; elsewhere it is made unavailable (seconds each)
    if not java:

        def no_java(*_):
            raise coco.Unavailable("METEOR needs Java (switched off by the test)")

        monkeypatch.setattr(coco, "meteor", no_java)
    params = tiny_params_for_generation(
        tmp_path,
        lm_dir,
        methods=(method,),
        train={"epochs": 2, "batch_size": 4, "max_length": 24, "label_smoothing": 0.1, "learning_rate": 1e-2},
        generation={"num_beams": 2, "max_new_tokens": 6},
        evaluate={"inference_modes": ["merge"]},
    )
    info = train_run(params, TASK, method, SEED, root=tmp_path, track=False)
    assert len(info["step_loss"]) == 12 and all(v > 0 for v in info["step_loss"])
    assert "validation/bleu" in info["final_validation"]
    merge_run(params, TASK, method, SEED, root=tmp_path)
    result = evaluate_run(params, TASK, method, SEED, root=tmp_path, track=False)
    mode = "merge" if method.startswith("adamix") else "single"
    scores = result["modes"][mode]
    assert set(scores) == {"bleu", "meteor", "ter"}
    assert 0 <= scores["bleu"] <= 1
    if java:
        assert 0 <= scores["meteor"] <= 1 and result["unavailable"] == {}
    else:  # a metric that cannot run is None with its reason, never 0
        assert scores["meteor"] is None and "Java" in result["unavailable"]["meteor"]
    outputs = result["outputs"][mode]["test"]
    assert len(outputs) == 2 and all(isinstance(t, str) for t in outputs)
    on_disk = json.loads(paths.result_path(TASK, method, SEED, tmp_path).read_text())
    assert on_disk["outputs"] == result["outputs"]


def test_the_consistency_term_trains_on_generation_tasks(tmp_path, lm_dir):
    write_generation_task(tmp_path)
    params = tiny_params_for_generation(
        tmp_path, lm_dir, train={"epochs": 1, "batch_size": 4, "max_length": 24}
    )
    train_run(params, TASK, "adamix_lora", SEED, root=tmp_path, track=False)
    history = json.loads((paths.run_dir(TASK, "adamix_lora", SEED, tmp_path) / "history.json").read_text())
    assert history[0]["consistency_loss"] > 0  # two views with different experts disagree on target tokens


def test_generation_trains_on_the_fast_path_of_classification(tmp_path, lm_dir, monkeypatch):
    """bf16 autocast around both views, computed as one batched forward, with target-only losses that stay finite."""
    import adamix

    seen = []
    original = adamix.adamix_loss

    def spy(forward, inputs, labels, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), kwargs["batched"]))
        out = original(forward, inputs, labels, **kwargs)
        seen.append(out.loss.dtype)
        return out

    monkeypatch.setattr(adamix, "adamix_loss", spy)
    write_generation_task(tmp_path)
    params = tiny_params_for_generation(
        tmp_path,
        lm_dir,
        train={"epochs": 1, "batch_size": 4, "max_length": 24, "precision": "bf16", "two_view": "batched"},
    )
    info = train_run(params, TASK, "adamix_lora", SEED, root=tmp_path, track=False)
    assert seen and seen[0] == (True, torch.bfloat16, True)
    assert seen[1] == torch.float32  # the loss is reduced in fp32 under autocast
    assert all(v > 0 for v in info["step_loss"]) and info["epochs"] == 1


def test_a_model_without_a_causal_lm_head_is_refused_for_generation(tmp_path, tiny_model_dir):
    write_generation_task(tmp_path)
    params = tiny_params_for_generation(tmp_path, tiny_model_dir)
    with pytest.raises(ModelError, match="has no causal LM head"):
        train_run(params, TASK, "adamix_lora", SEED, root=tmp_path, track=False)


def test_the_tokenizer_of_a_generation_task_is_a_generation_encoder(lm_dir):
    params = tiny_params_for_generation(model_dir=lm_dir)
    encoder = load_tokenizer(params, {"kind": "generation"})
    assert isinstance(encoder, GenerationEncoder) and encoder.separator == "\n"


def test_few_shot_sampling_refuses_a_generation_task(tmp_path):
    from flows.data.source import DataError
    from flows.stages.fewshot import make_fewshot_split

    prepared = write_generation_task(tmp_path)
    with pytest.raises(DataError, match="has no classes: set fewshot.k to 0"):
        make_fewshot_split(prepared, tmp_path / "out", k=4, seed=SEED)
    assert make_fewshot_split(prepared, tmp_path / "full", k=0, seed=SEED).is_dir()  # k = 0 passes it through
