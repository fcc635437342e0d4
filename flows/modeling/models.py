"""Each method's trainable model: build it over a fresh base, save and reload a run's artifact, count parameters."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

import adamix
from adamix import AdaMixConfig

from ..config.grid import base_method
from ..data.prompts import task_prompt
from .base import ModelError, hub_hint, pretrained_tokenizer, prompt_mode, resolve_model_path
from .generation import GenerationEncoder, is_generation
from .prompting import PromptEncoder, load_prompt_model
from .prompting_causal import CausalPromptClassifier, CausalPromptEncoder

ADAMIX_METHODS = ("adamix_adapter", "adamix_lora")
FULL_MODEL_FILE = "model.safetensors"


@dataclass(frozen=True)
class Method:
    """How one method of the tables is built and trained."""

    name: str
    kind: str  # "adamix" (our library, any M), "peft_lora" (the peer implementation) or "full"
    consistency: bool  # two views + consistency term in training

    @property
    def has_mixture(self) -> bool:
        return self.kind == "adamix"


def method_spec(name: str, run_params: dict) -> tuple[Method, AdaMixConfig | None]:
    """The Method and (for our library's methods) the AdaMixConfig of a run, from its resolved params."""
    section = dict(run_params["adamix"])
    base = base_method(name)  # an ablation variant trains its method with one key changed
    if base in ("adamix_adapter", "adamix_lora", "adapter"):
        variant = "lora" if base == "adamix_lora" else "adapter"
        if base == "adapter":  # the single-module baseline: M = 1, same code path
            section.update(num_experts=1, fixed_expert=0)
        config = AdaMixConfig(method=variant, **section)
        consistency = base in ADAMIX_METHODS and run_params["train"]["consistency_weight"] > 0
        return Method(name, "adamix", consistency), config
    if base == "lora":
        return Method(name, "peft_lora", False), None
    if base == "full":
        return Method(name, "full", False), None
    raise ModelError(f"unknown method {name!r}")


def load_tokenizer(params: dict, meta: dict | None = None):
    """The model's tokenizer; with `fewshot.prompt` and the task's `meta`, a PromptEncoder over it; for a
    generation task, a GenerationEncoder (source + separator + target sequences)."""
    if is_generation(meta):
        causal_lm_config(params)  # an encoder model is named as such, before its tokenizer's missing EOS
    tokenizer = pretrained_tokenizer(params)
    if is_generation(meta):
        try:
            return GenerationEncoder(tokenizer, params["generation"]["separator"])
        except ValueError as err:
            raise ModelError(f"model {params['model']['name_or_path']!r}: {err}") from None
    if meta is not None and prompt_mode(params):
        if prompt_head(params) == "causal":
            return CausalPromptEncoder(tokenizer, task_prompt(params, meta, causal=True))
        return PromptEncoder(tokenizer, task_prompt(params, meta))
    return tokenizer


def prompt_head(params: dict, path: str | Path | None = None) -> str:
    """Which head `fewshot.prompt` reads the label words with, from the model's architecture.

    Args:
        params: validated parameters (`model.name_or_path`, `model.revision`).
        path: a saved model folder to read instead (a fully fine-tuned run's artifact).

    Returns:
        ``"mlm"`` for an encoder with a masked-LM class (BERT, RoBERTa, ...: the mask token's logits, as
        `flows.modeling.prompting`), ``"causal"`` for a decoder (GPT-2, Llama, SmolLM2: the next-token logits
        after the prompt, `flows.modeling.prompting_causal`).

    Raises:
        ModelError: the config cannot be read, or the architecture has neither head.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    config = _model_config(params, path)
    # BERT-like encoders have a causal-LM class too, but only a checkpoint trained as a decoder can use it
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        return "mlm"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    raise ModelError(
        f"model {params['model']['name_or_path']!r} ({config.model_type}) has neither a masked-LM nor a "
        "causal-LM head: fewshot.prompt reads label words with one (e.g. roberta-large, or smollm2); set "
        "fewshot.prompt: false to fine-tune a classification head"
    )


def load_prompt_classifier(params: dict, meta: dict, path: str | Path | None = None) -> nn.Module:
    """The pretrained model read through the task's prompt, with the head `prompt_head` picks (no new head).

    Args:
        params: validated parameters.
        meta: the task's meta.json.
        path: a saved model folder (full fine-tuning's artifact) instead of `model.name_or_path`.

    Returns:
        A PromptClassifier (masked LM) or a CausalPromptClassifier (causal LM).
    """
    if prompt_head(params, path) == "mlm":
        return load_prompt_model(params, meta, path)
    encoder = load_tokenizer(params, meta)
    return CausalPromptClassifier(load_causal_lm(params, path), encoder.label_word_ids)


def load_base_model(params: dict, meta: dict) -> nn.Module:
    """The pretrained encoder with a fresh classification (or regression) head sized for the task.

    With `fewshot.prompt`, the pretrained masked or causal LM read through the task's prompt
    (`load_prompt_classifier`): no new head.
    """
    from transformers import AutoModelForSequenceClassification

    if prompt_mode(params):
        return load_prompt_classifier(params, meta)
    if is_generation(meta):
        return load_causal_lm(params)
    path = resolve_model_path(params["model"]["name_or_path"])
    # fp32 master weights whatever the checkpoint stores (transformers 5 keeps a fp16/bf16 checkpoint's dtype, and
    # adapters created in half precision barely train); the training loop computes under autocast instead.
    kwargs: dict[str, Any] = {
        "num_labels": meta["num_labels"],
        "revision": params["model"].get("revision"),
        "dtype": torch.float32,
    }
    if meta.get("is_regression"):
        kwargs["problem_type"] = "regression"
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, output_loading_info=True, **kwargs
        )
    except OSError as err:
        raise ModelError(hub_hint(params["model"]["name_or_path"], err)) from None
    except (
        ValueError,
        KeyError,
        RuntimeError,
        SafetensorError,
    ) as err:  # no model_type, a truncated file, ...
        raise ModelError(
            f"model {params['model']['name_or_path']!r} cannot be loaded: {_first_line(err)}"
        ) from None
    check_loading_info(params["model"]["name_or_path"], model, info)
    if model.config.pad_token_id is None:  # decoder-only models classify the last non-pad token
        model.config.pad_token_id = model.config.eos_token_id
    return model


def load_causal_lm(params: dict, folder: str | Path | None = None) -> nn.Module:
    """The pretrained causal LM (fp32 master weights) of `model.name_or_path`, or of a saved `folder`.

    Raises:
        ModelError: the model cannot be loaded, or its architecture has no causal-LM head (an encoder such
            as BERT cannot generate).
    """
    from transformers import AutoModelForCausalLM

    name = params["model"]["name_or_path"]
    path = folder if folder is not None else resolve_model_path(name)
    revision = None if folder is not None else params["model"].get("revision")
    causal_lm_config(params, path)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            path, revision=revision, dtype=torch.float32, output_loading_info=True
        )
    except OSError as err:
        raise ModelError(hub_hint(name, err)) from None
    except (ValueError, KeyError, RuntimeError, SafetensorError) as err:
        raise ModelError(f"model {name!r} cannot be loaded: {_first_line(err)}") from None
    check_loading_info(name, model, info)
    # The head's own parameters (a tied head is the embeddings' tensor and counts as the body's): a checkpoint of
    # a sequence classifier has none, and a random head would make every next-token logit meaningless.
    body = f"{model.base_model_prefix}."
    missing = sorted(
        {n for n, _ in model.named_parameters() if not n.startswith(body)} & set(info["missing_keys"])
    )
    if missing:
        raise ModelError(
            f"model {name!r} has no causal-LM head in its checkpoint (missing {missing[:4]}): its LM head would "
            "be initialised at random; use a checkpoint saved as a causal LM"
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model


def causal_lm_config(params: dict, path: str | Path | None = None):
    """The config of `model.name_or_path` (or of `path`), refused unless its architecture has a causal-LM head.

    Raises:
        ModelError: the config cannot be read, or the model is an encoder (BERT, ...) that cannot generate.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    name = params["model"]["name_or_path"]
    config = _model_config(params, path)
    # BERT-like encoders have a causal-LM class too, but only a checkpoint trained as a decoder can use it
    encoder = config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(
        config, "is_decoder", False
    )
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or encoder:
        raise ModelError(
            f"model {name!r} ({config.model_type}) has no causal LM head: generation tasks need a decoder "
            "model such as GPT-2, Llama or SmolLM2 (model.name_or_path: smollm2)"
        )
    return config


def _model_config(params: dict, path: str | Path | None = None):
    """The config of `model.name_or_path` (at `model.revision`), or of the saved folder `path`."""
    from transformers import AutoConfig

    name = params["model"]["name_or_path"]
    try:
        return AutoConfig.from_pretrained(
            path or resolve_model_path(name), revision=None if path else params["model"].get("revision")
        )
    except OSError as err:
        raise ModelError(hub_hint(name, err)) from None
    except (ValueError, KeyError) as err:
        raise ModelError(f"model {name!r} cannot be loaded: {_first_line(err)}") from None


# Models whose positions start after the padding index: max_position_embeddings - (pad_token_id + 1) are usable.
_PADDING_OFFSET_POSITIONS = frozenset(
    {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod"}
)


def cap_max_length(run: dict[str, Any], model: nn.Module) -> int:
    """Cap ``train.max_length`` of a run's params (in place) at what the model's position embeddings hold.

    A longer setting used to crash on the first long text, deep in the embedding lookup. The cap prints one
    warning and is what both training and evaluation then use.
    """
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    wanted = run["train"]["max_length"]
    if not isinstance(limit, int) or limit <= 0:
        return wanted
    if getattr(config, "model_type", "") in _PADDING_OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1
    if wanted > limit:
        print(
            f"warning: train.max_length {wanted} exceeds the {limit} positions of the model "
            f"({getattr(config, 'model_type', '?')}); using {limit}",
            file=sys.stderr,
        )
        run["train"]["max_length"] = limit
    return run["train"]["max_length"]


def check_loading_info(name: str, model: nn.Module, info: dict[str, Any]) -> None:
    """Raise ModelError when checkpoint weights and model config disagree inside the pretrained body.

    The task head is new (its weights are expected to be missing), and so is BERT's pooler where a checkpoint
    saved without it; anything else missing (a config with more layers than the weights) would train from a random
    initialisation, and anything unexpected (fewer layers) would be dropped, both silently.
    """
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    in_body = [
        (kind, key)
        for kind in ("missing_keys", "unexpected_keys")
        for key in sorted(info.get(kind) or ())
        if key.startswith(prefix) and ".pooler." not in f".{key}"
    ]
    if in_body:
        shown = "; ".join(f"{kind.split('_')[0]} {key}" for kind, key in in_body[:4])
        raise ModelError(
            f"model {name!r}: {len(in_body)} weight(s) of the pretrained body do not match its config ({shown}"
            f"{', ...' if len(in_body) > 4 else ''}): the config.json does not describe these weights "
            "(number of layers, sizes?); fix the config or point model.name_or_path at a matching folder"
        )


def _first_line(err: BaseException) -> str:
    """The first line of an error's message (library errors can span many), or its type when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def build_model(params: dict, method: str, meta: dict) -> tuple[nn.Module, Method]:
    """The trainable model of `method` on top of a freshly loaded base."""
    spec, config = method_spec(method, params)
    model = load_base_model(params, meta)
    if spec.kind == "adamix":
        try:
            adamix.get_adamix_model(model, config)
        except ValueError as err:  # sizes or targets that do not fit this model: bad params, named
            raise ModelError(f"method {method!r}: {err}") from None
    elif spec.kind == "peft_lora":
        model = _peft_lora(model, params)
    return model, spec


def _quiet_peft() -> None:
    # PEFT 0.21 calls a transformers method that transformers 5 deprecates; the warning is not ours to fix.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def _peft_lora(model: nn.Module, params: dict) -> nn.Module:
    """PEFT's LoRA on the same targets, rank and alpha as our LoRA variant: the peer implementation."""
    import peft

    _quiet_peft()

    section = params["adamix"]
    ours = AdaMixConfig(
        method="lora", bottleneck=section["bottleneck"], target_modules=section["target_modules"]
    )
    targets = ours.resolved_targets(model.config.model_type)
    heads = [n for n in ("classifier", "score") if hasattr(model, n)]
    config = peft.LoraConfig(
        r=section["bottleneck"],
        lora_alpha=section["lora_alpha"],
        lora_dropout=section["dropout"],
        target_modules=targets,
        modules_to_save=heads,
    )
    return peft.get_peft_model(model, config)


def save_run_model(model: nn.Module, spec: Method, out_dir: Path) -> None:
    """Adapters + head for parameter-efficient methods, the whole model (safetensors) for full fine-tuning."""
    if spec.kind == "adamix":
        adamix.save_adamix(model, out_dir / "adapter")
    elif spec.kind == "peft_lora":
        model.save_pretrained(out_dir / "adapter", safe_serialization=True)
    else:
        model.save_pretrained(out_dir / "model", safe_serialization=True)


def load_run_model(params: dict, spec: Method, meta: dict, artifact_dir: Path) -> nn.Module:
    """Rebuild a trained run's model from its saved artifact (safetensors only).

    Raises:
        ModelError: the artifact is missing, truncated, of another shape or otherwise unreadable (named).
    """
    try:
        return _load_run_model(params, spec, meta, artifact_dir)
    except ModelError:
        raise
    except (ValueError, OSError, RuntimeError, KeyError, SafetensorError) as err:
        # adamix.serialization, safetensors and transformers report a bad artifact in these types
        raise ModelError(f"cannot load the trained run in {artifact_dir}: {_first_line(err)}") from None


def _load_run_model(params: dict, spec: Method, meta: dict, artifact_dir: Path) -> nn.Module:
    if spec.kind == "full":
        from transformers import AutoModelForSequenceClassification

        if prompt_mode(params):
            return load_prompt_classifier(params, meta, artifact_dir / "model")
        if is_generation(meta):
            return load_causal_lm(params, artifact_dir / "model")
        return AutoModelForSequenceClassification.from_pretrained(artifact_dir / "model", dtype=torch.float32)
    base = load_base_model(params, meta)
    if spec.kind == "adamix":
        return adamix.load_adamix(base, artifact_dir / "adapter")
    import peft

    _quiet_peft()

    return peft.PeftModel.from_pretrained(base, artifact_dir / "adapter")


def parameter_counts(model: nn.Module, spec: Method) -> dict[str, int]:
    """Trainable, deployed (tunable parameters a served model carries) and total parameter counts."""
    if spec.kind == "adamix":
        counts = adamix.count_parameters(model)
        return {k: counts[k] for k in ("trainable", "adapter", "deployed", "total")}
    named = {id(p): (n, p) for n, p in model.named_parameters()}.values()  # tied weights once
    trainable = sum(p.numel() for _, p in named if p.requires_grad)
    # PEFT keeps a frozen original of each module_to_save beside the trained copy: count the model once
    total = sum(p.numel() for n, p in named if ".original_module." not in n)
    return {"trainable": trainable, "adapter": trainable, "deployed": trainable, "total": total}
