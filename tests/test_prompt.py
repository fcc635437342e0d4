"""Tests for flows.data.prompts and flows.modeling.prompting: templates and label words, the PromptClassifier's logits, AdaMix / LoRA / full
fine-tuning of a masked LM through it, and one prompt-based run through the pipeline's stages."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import transformers as T
from tiny_models import CONFIGS, tiny_tokenizer
from tiny_project import SEED, TASK, WORDS, make_project

import adamix
from flows.config import paths
from flows.config.files import deep_merge
from flows.config.grid import run_params
from flows.config.params import ParamsError, load_params, validate
from flows.config.schema import DEFAULTS, KNOWN_METHODS
from flows.data.bigbench import BIGBENCH_TASKS
from flows.data.catalog import GLUE_TASKS, LMBFF_TASKS
from flows.data.prompts import BUILTIN_PROMPTS, Prompt, PromptError, parse_template, task_prompt
from flows.modeling.base import ModelError
from flows.modeling.models import build_model, load_run_model, load_tokenizer, save_run_model
from flows.modeling.prompting import PromptClassifier, PromptEncoder, load_prompt_model
from flows.stages import evaluate, fewshot, merge, prepare, train

ROOT = Path(__file__).resolve().parents[1]
# Every built-in template's literal words and label words, plus the toy project's words (fits the 64-token vocab).
PROMPT_WORDS = [
    *WORDS,
    *"it this . ? , terrible yes maybe no subjective objective incorrect correct cat sat dog ran".split(),
]
TOY_PROMPT = {"templates": {TASK: "{text_a} It was {mask} ."}, "label_words": {TASK: ["bad", "good"]}}


def _label_names(task: str) -> list[str]:
    if task in GLUE_TASKS:
        return list(GLUE_TASKS[task].label_names)
    if task in BIGBENCH_TASKS:
        return list(BIGBENCH_TASKS[task].label_names)
    return list(LMBFF_TASKS.get(task, ("negative", "positive")))


def _meta(task: str, names: list[str] | None = None, pair: bool | None = None) -> dict:
    names = _label_names(task) if names is None else names
    if pair is None:
        pair = task in BIGBENCH_TASKS or (task in GLUE_TASKS and GLUE_TASKS[task].columns[1] is not None)
    return {
        "task": task,
        "label_names": names,
        "num_labels": len(names),
        "is_regression": False,
        "text_pair": pair,
    }


def _params(**fewshot_section) -> dict:
    return deep_merge(DEFAULTS, {"fewshot": {"prompt": True, **fewshot_section}})


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer(PROMPT_WORDS)


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BertForMaskedLM (head included) and its tokenizer, saved as a local model folder."""
    path = tmp_path_factory.mktemp("tiny-mlm")
    torch.manual_seed(0)
    T.BertForMaskedLM(CONFIGS["bert"]()).save_pretrained(path)
    tiny_tokenizer(PROMPT_WORDS).save_pretrained(path)
    return path


def _example(pair: bool, a: str = "The cat sat.", b: str = "A dog ran.", label: int = 0) -> dict:
    return {"text_a": a, "text_b": b if pair else None, "label": label}


def _tokens(tokenizer, ids: torch.Tensor) -> list[str]:
    return [t for t in tokenizer.convert_ids_to_tokens(ids.tolist()) if t != tokenizer.pad_token]


# -- templates and label words ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(BUILTIN_PROMPTS))
def test_builtin_prompt_renders_one_mask_even_when_truncated(task, tokenizer) -> None:
    meta = _meta(task)
    encoder = PromptEncoder(tokenizer, task_prompt(_params(), meta))
    long = " ".join(["the movie was very good"] * 8) + "."
    chunk = [_example(meta["text_pair"], label=1), _example(meta["text_pair"], a=long, b=long, label=0)]
    for max_length in (64, 12):
        inputs, labels = encoder(chunk, max_length)
        assert inputs["input_ids"].shape[1] <= max_length
        assert ((inputs["input_ids"] == tokenizer.mask_token_id).sum(1) == 1).all()
        assert labels.tolist() == [1, 0]
    # truncation cuts the sentences, never the template: the prompt ends as the template does
    tail = _tokens(tokenizer, inputs["input_ids"][1])[-4:]
    expected = {
        "It was {mask}.": ["was", "[MASK]", ".", "[SEP]"],
        "This is {mask}.": ["is", "[MASK]", ".", "[SEP]"],
    }
    for ending, tokens in expected.items():
        if BUILTIN_PROMPTS[task].template.endswith(ending):
            assert tail == tokens


def test_label_words_follow_each_tasks_label_order() -> None:
    words = {
        task: dict(zip(_label_names(task), p.label_words, strict=True)) for task, p in BUILTIN_PROMPTS.items()
    }
    assert words["mnli"] == {"entailment": "Yes", "neutral": "Maybe", "contradiction": "No"}
    assert words["rte"] == words["qnli"] == {"entailment": "Yes", "not_entailment": "No"}
    assert words["qqp"] == {"not_duplicate": "No", "duplicate": "Yes"}
    assert words["mrpc"] == {"not_equivalent": "No", "equivalent": "Yes"}
    assert words["sst2"] == words["mpqa"] == {"negative": "terrible", "positive": "great"}
    assert words["subj"] == {"subjective": "subjective", "objective": "objective"}
    assert words["cola"] == {"unacceptable": "incorrect", "acceptable": "correct"}
    assert {"mnli", "rte", "qqp", "sst2", "mpqa", "subj"} <= set(BUILTIN_PROMPTS)  # the paper's tasks


def test_nli_template_modifiers_and_longest_first_truncation(tokenizer) -> None:
    encoder = PromptEncoder(tokenizer, BUILTIN_PROMPTS["mnli"])
    assert encoder.render(encoder._texts(_example(True))) == "The cat sat? [MASK], a dog ran."
    long_b = "A dog ran " + "very " * 20 + "good."
    inputs, _ = encoder([_example(True, b=long_b)], 12)
    tokens = _tokens(tokenizer, inputs["input_ids"][0])
    # the short sentence is kept whole
    assert tokens[:7] == ["[CLS]", "the", "cat", "sat", "?", "[MASK]", ","]
    assert len(tokens) == 12 and tokens[-1] == "[SEP]"


def test_mask_token_inside_a_text_cannot_add_a_second_mask(tokenizer) -> None:
    encoder = PromptEncoder(tokenizer, BUILTIN_PROMPTS["sst2"])
    inputs, _ = encoder([_example(False, a="the [MASK] movie")], 32)
    assert int((inputs["input_ids"] == tokenizer.mask_token_id).sum()) == 1


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{text_a} It was great.", "exactly once"),
        ("{text_a} {mask} and {mask}.", "exactly once"),
        ("{mask} only", "{text_a}"),
        ("{text_a} {label} {mask}", "unknown field"),
        ("{text_a:upper} {mask}", "unknown modifier"),
        ("{text_a} {mask:nopunct}", "no modifiers"),
        ("{text_a} {mask", "braces"),
    ],
)
def test_bad_templates_fail_clearly(template, message) -> None:
    with pytest.raises(PromptError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_template(template)


def test_label_words_must_be_single_known_tokens(tokenizer) -> None:
    with pytest.raises(PromptError, match="'wonderful' is not a single token"):
        PromptEncoder(tokenizer, Prompt("{text_a} It was {mask}.", ("terrible", "wonderful")))
    with pytest.raises(PromptError, match="same token ids"):
        PromptEncoder(tokenizer, Prompt("{text_a} It was {mask}.", ("great", "GREAT")))  # lower-cased alike


def test_task_prompt_overrides_and_mismatches() -> None:
    override = _params(templates={"sst2": "{text_a} This is {mask}."}, label_words={"sst2": ["bad", "good"]})
    assert task_prompt(override, _meta("sst2")) == Prompt("{text_a} This is {mask}.", ("bad", "good"))
    with pytest.raises(PromptError, match="no built-in prompt: set params key fewshot.templates.toy"):
        task_prompt(_params(), _meta("toy", ["neg", "pos"], pair=False))
    with pytest.raises(PromptError, match="3 classes .* but 2 label words"):
        task_prompt(_params(label_words={"mnli": ["Yes", "No"]}), _meta("mnli"))
    with pytest.raises(PromptError, match="add \\{text_b\\}"):
        task_prompt(_params(templates={"rte": "{text_a} {mask}."}), _meta("rte"))
    with pytest.raises(PromptError, match="regression"):
        task_prompt(_params(), {**_meta("stsb", []), "is_regression": True})


def test_bpe_label_words_take_the_leading_space_variant() -> None:
    """With a byte-level BPE tokenizer (RoBERTa's kind) the label word is the token that follows a space."""
    tokenizer = _byte_level_tokenizer()
    encoder = PromptEncoder(tokenizer, BUILTIN_PROMPTS["sst2"])
    assert tokenizer.convert_ids_to_tokens(encoder.label_word_ids) == ["Ġterrible", "Ġgreat"]
    inputs, _ = encoder([_example(False, a="a great film.")], 32)
    assert int((inputs["input_ids"] == tokenizer.mask_token_id).sum()) == 1


def _byte_level_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(
        ["a great film. It was great", "a terrible film. It was terrible"] * 20, trainer
    )
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return T.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=AddedToken("<mask>", lstrip=True),  # as RoBERTa's: the space before it belongs to the mask
    )


# -- the classifier -------------------------------------------------------------------------------------------


# BERT's head is `cls`, RoBERTa's `lm_head`; DistilBERT takes the full MLM forward
@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
def test_logits_are_the_mlm_logits_at_the_mask_for_the_label_words(arch, tokenizer) -> None:
    if arch == "roberta":
        tokenizer = _byte_level_tokenizer()
    config = CONFIGS[arch]()
    config.vocab_size = len(tokenizer)
    torch.manual_seed(0)
    mlm = T.AutoModelForMaskedLM.from_config(config).eval()
    encoder = PromptEncoder(tokenizer, BUILTIN_PROMPTS["sst2"])
    chunk = [_example(False, a="a great film."), _example(False, a="a film", label=1)]
    inputs, labels = encoder(chunk, 32)
    model = PromptClassifier(mlm, encoder.label_word_ids, tokenizer.mask_token_id)
    out = model(**inputs, labels=labels)
    vocab = mlm(**inputs).logits  # (batch, tokens, vocab): the manual computation
    position = (inputs["input_ids"] == tokenizer.mask_token_id).nonzero()
    manual = torch.stack([vocab[row, col, encoder.label_word_ids] for row, col in position.tolist()])
    assert out.logits.shape == (2, 2)
    torch.testing.assert_close(out.logits, manual)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(manual, labels))


def test_rows_without_exactly_one_mask_are_rejected(tokenizer) -> None:
    mlm = T.BertForMaskedLM(CONFIGS["bert"]()).eval()
    model = PromptClassifier(mlm, [5, 6], tokenizer.mask_token_id)
    with pytest.raises(ValueError, match="exactly one mask"):
        model(input_ids=torch.tensor([[2, 7, 8, 3]]))


def test_adamix_on_the_mlm_trains_only_the_mixtures_and_keeps_the_head_frozen(tokenizer) -> None:
    torch.manual_seed(0)
    encoder = PromptEncoder(tokenizer, BUILTIN_PROMPTS["mnli"])
    model = PromptClassifier(
        T.BertForMaskedLM(CONFIGS["bert"]()), encoder.label_word_ids, tokenizer.mask_token_id
    )
    adamix.get_adamix_model(model, adamix.AdaMixConfig(method="adapter", num_experts=4, bottleneck=4))
    assert model.adamix_config.modules_to_save == []  # no new head, the MLM head is not picked up as one
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adamix_" in name for name in trainable)
    decoder = model.mlm.get_output_embeddings()
    assert not decoder.weight.requires_grad and decoder.weight is model.mlm.get_input_embeddings().weight
    with torch.no_grad():  # experts start identical; make them differ so the two views disagree
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn_like(p))
    model.train()
    chunk = [_example(True, label=i % 3) for i in range(4)]
    inputs, labels = encoder(chunk, 24)
    out = adamix.adamix_loss(model, inputs, labels, consistency_weight=1.0)
    assert out.logits.shape == (4, 3) and out.consistency.item() > 0
    out.loss.backward()
    assert all(p.grad is None for name, p in model.named_parameters() if name not in trainable)
    assert all(model.get_parameter(name).grad is not None for name in trainable)


# -- pipeline: build, save and load each method ---------------------------------------------------------------


@pytest.mark.parametrize("method", KNOWN_METHODS)
def test_each_method_round_trips_through_its_saved_artifact(method, mlm_dir, tmp_path) -> None:
    params = _tiny_params(tmp_path, mlm_dir)
    run = run_params(params, method)
    meta = _meta(TASK, ["neg", "pos"], pair=False)
    model, spec = build_model(run, method, meta)
    assert isinstance(model, PromptClassifier) or isinstance(model.get_base_model(), PromptClassifier)
    trainable = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        for p in trainable:
            p.add_(0.1 * torch.randn_like(p))
    if method != "full":  # the parameter-efficient methods leave the whole masked LM frozen
        assert sum(p.numel() for p in trainable) < sum(p.numel() for p in model.parameters()) / 4
    save_run_model(model, spec, tmp_path / "run")
    loaded = load_run_model(run, spec, meta, tmp_path / "run")
    encoder = load_tokenizer(run, meta)
    inputs, _ = encoder([_example(False, a="the movie was good"), _example(False, a="a dull plot")], 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**inputs).logits, model.eval()(**inputs).logits)


def test_checkpoint_without_mlm_head_is_refused(tiny_model_dir, tmp_path) -> None:
    """A checkpoint with no MLM weights (a sentence-embedding model such as MiniLM) would get a random head."""
    model = {"name_or_path": str(tiny_model_dir)}  # a sequence classifier's checkpoint: encoder, no MLM head
    params = deep_merge(DEFAULTS, {"model": model, "fewshot": {"prompt": True, **TOY_PROMPT}})
    with pytest.raises(ModelError, match="no masked-LM head in its checkpoint"):
        load_prompt_model(params, _meta(TASK, ["neg", "pos"], pair=False))


def test_half_precision_checkpoint_loads_in_fp32(tmp_path) -> None:
    T.BertForMaskedLM(CONFIGS["bert"]()).to(torch.bfloat16).save_pretrained(tmp_path)
    tiny_tokenizer(PROMPT_WORDS).save_pretrained(tmp_path)
    params = deep_merge(DEFAULTS, {"model": {"name_or_path": str(tmp_path)}, "fewshot": {"prompt": True}})
    model = load_prompt_model(params, _meta("sst2"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def _tiny_params(root: Path, model_dir: Path, **kwargs) -> dict:
    path = make_project(root, model_dir, fewshot={"prompt": True, **TOY_PROMPT}, **kwargs)
    return load_params(path, profile="")


def test_prompt_runs_train_merge_and_evaluate(mlm_dir, tmp_path) -> None:
    root = tmp_path / "project"
    params = _tiny_params(root, mlm_dir, methods=("adamix_adapter", "lora", "full"))
    params["fewshot"]["k"] = 4
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    for method in params["methods"]:
        info = train.train_run(params, TASK, method, SEED, root=root, track=False)
        assert info["train_examples"] == 8 and info["epochs"] == 2  # K = 4 per class, fixed epochs
        merge.merge_run(params, TASK, method, SEED, root=root)
        result = evaluate.evaluate_run(params, TASK, method, SEED, root=root, track=False)
        modes = ["merge", "random", "fixed"] if method == "adamix_adapter" else ["single"]
        assert list(result["modes"]) == modes
        assert all(0.0 <= scores["accuracy"] <= 1.0 for scores in result["modes"].values())
    history = json.loads((paths.run_dir(TASK, "adamix_adapter", SEED, root) / "history.json").read_text())
    assert history[-1]["consistency_loss"] >= 0.0 and len(history) == 2


# -- params ---------------------------------------------------------------------------------------------------


def _invalid(change: dict, match: str) -> None:
    params = deep_merge(copy.deepcopy(DEFAULTS), change)
    with pytest.raises(ParamsError, match=match):
        validate(params)


def test_params_check_prompt_settings() -> None:
    validate(deep_merge(DEFAULTS, {"tasks": ["sst2", "mnli"], "fewshot": {"prompt": True, "k": 16}}))
    _invalid({"fewshot": {"prompt": "yes"}}, "'fewshot.prompt' must be true or false")
    _invalid(
        {"fewshot": {"templates": {"sst2": "{text_a} It was great."}}},
        "'fewshot.templates.sst2'.*exactly once",
    )
    _invalid({"fewshot": {"templates": {"sst3": "{text_a} {mask}"}}}, "unknown key 'fewshot.templates.sst3'")
    _invalid({"fewshot": {"label_words": {"mnli": ["Yes", "No"]}}}, "'fewshot.label_words.mnli'.*3 classes")
    _invalid({"fewshot": {"label_words": {"sst2": "great"}}}, "'fewshot.label_words' must be a mapping")
    _invalid({"tasks": ["stsb"], "fewshot": {"prompt": True}}, "task 'stsb' has no built-in prompt")


def test_fewshot_profiles_are_valid() -> None:
    paper = load_params(ROOT / "params.yaml", profile="fewshot")
    assert paper["fewshot"]["prompt"] is True and paper["fewshot"]["k"] == 16
    assert sorted(paper["tasks"]) == sorted(["sst2", "mnli", "rte", "qqp", "mpqa", "subj"])
    assert paper["seeds"] == [13, 21, 42, 87, 100]
    offline = load_params(ROOT / "params.yaml", profile="fewshot-offline")
    assert offline["fewshot"]["k"] == 16 and offline["model"]["name_or_path"] == "minilm"
