"""Model shapes and the methods the benchmark compares, each built on its own copy of one random base model."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
import transformers
from torch import nn

import adamix

# Architectures by shape only (random weights): speed and memory do not depend on the values.
SHAPES: dict[str, tuple[str, dict]] = {
    "tiny": (
        "bert",
        dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=128,
            max_position_embeddings=64,
        ),
    ),
    "minilm": (
        "bert",
        dict(
            hidden_size=384,
            num_hidden_layers=6,
            num_attention_heads=12,
            intermediate_size=1536,
            vocab_size=30522,
        ),
    ),
    "bert-base": (
        "bert",
        dict(
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            vocab_size=30522,
        ),
    ),
    "roberta-large": (
        "roberta",
        dict(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            vocab_size=50265,
            max_position_embeddings=514,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        ),
    ),
}


@dataclass(frozen=True)
class MethodSpec:
    """One trained configuration: how it is built and how its step runs."""

    name: str
    kind: str  # "full", "peft_lora" or "adamix" (our library, any M)
    family: str | None = None  # "adapter" or "lora" for our library's methods
    experts: bool = False  # M experts (True) or one module (False)
    two_view: str | None = None  # consistency term: None, "batched" or "sequential"

    @property
    def source(self) -> str:
        """The method this one is a training variant of (the consistency variants share their model)."""
        return self.name.split("+")[0]


METHODS: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        MethodSpec("full", "full"),
        MethodSpec("peft_lora", "peft_lora"),
        MethodSpec("adapter", "adamix", "adapter"),
        MethodSpec("lora", "adamix", "lora"),
        MethodSpec("adamix_adapter", "adamix", "adapter", True),
        MethodSpec("adamix_adapter+cons_batched", "adamix", "adapter", True, "batched"),
        MethodSpec("adamix_adapter+cons_seq", "adamix", "adapter", True, "sequential"),
        MethodSpec("adamix_lora", "adamix", "lora", True),
        MethodSpec("adamix_lora+cons_batched", "adamix", "lora", True, "batched"),
        MethodSpec("adamix_lora+cons_seq", "adamix", "lora", True, "sequential"),
    )
}

# Deployed (inference) forms: name -> (training method it comes from, how it is made ready for serving).
INFERENCE: dict[str, tuple[str, str]] = {
    "base": ("full", "as_is"),  # also what any merge_and_unload gives back
    "adapter": ("adapter", "as_is"),
    "adamix_adapter:merged": ("adamix_adapter", "merge_experts"),
    "lora": ("lora", "as_is"),
    "adamix_lora:merged": ("adamix_lora", "merge_experts"),
    "adamix_lora:unloaded": ("adamix_lora", "merge_and_unload"),
}


@dataclass(frozen=True)
class Sizes:
    """Adaptation sizes shared by every method (the pipeline's defaults)."""

    experts: int = 4
    bottleneck: int = 16  # adapter bottleneck r
    lora_rank: int = 4
    lora_alpha: float = 32.0


def build_base(shape: str, seed: int) -> nn.Module:
    """A randomly initialised sequence classifier (2 labels, SDPA attention) of the named shape, in train mode."""
    arch, fields = SHAPES[shape]
    config_cls = transformers.RobertaConfig if arch == "roberta" else transformers.BertConfig
    config = config_cls(num_labels=2, **fields)
    torch.manual_seed(seed)
    model = transformers.AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    return model.train()


def max_length(base: nn.Module) -> int:
    """Longest input the position table allows (RoBERTa reserves padding_idx + 1 positions)."""
    config = base.config
    offset = config.pad_token_id + 1 if config.model_type == "roberta" else 0
    return config.max_position_embeddings - offset


def adamix_config(spec: MethodSpec, sizes: Sizes) -> adamix.AdaMixConfig:
    """Our library's config for `spec`; a single module is the same code path with M = 1."""
    rank = sizes.bottleneck if spec.family == "adapter" else sizes.lora_rank
    return adamix.AdaMixConfig(
        method=spec.family,
        num_experts=sizes.experts if spec.experts else 1,
        bottleneck=rank,
        lora_alpha=sizes.lora_alpha,
    )


def build_method(base: nn.Module, spec: MethodSpec, sizes: Sizes, seed: int, *, copy_base: bool = True):
    """The trainable model of `spec` on a copy of `base` (or on `base` itself when `copy_base` is False)."""
    model = copy.deepcopy(base) if copy_base else base
    torch.manual_seed(seed)  # same adapter initialisation for every method
    if spec.kind == "adamix":
        return adamix.get_adamix_model(model, adamix_config(spec, sizes))
    if spec.kind == "peft_lora":
        return _peft_lora(model, sizes)
    return model


def build_inference(base: nn.Module, name: str, sizes: Sizes, seed: int) -> nn.Module:
    """The deployed form `name` of INFERENCE, in eval mode."""
    source, prepare = INFERENCE[name]
    model = build_method(base, METHODS[source], sizes, seed)
    if prepare == "merge_experts":
        adamix.merge_experts(model)
    elif prepare == "merge_and_unload":
        model = adamix.merge_and_unload(model)
    return model.eval()


def _peft_lora(model: nn.Module, sizes: Sizes) -> nn.Module:
    """PEFT's LoRA on the same targets (query, value), rank and alpha as ours; the head trains too."""
    import peft

    # PEFT calls a transformers method that transformers 5 deprecates; not ours to fix.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    targets = adamix.AdaMixConfig(method="lora").resolved_targets(model.config.model_type)
    config = peft.LoraConfig(
        r=sizes.lora_rank,
        lora_alpha=sizes.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        modules_to_save=["classifier"],
    )
    return peft.get_peft_model(model, config)


def trainable_parameters(model: nn.Module) -> int:
    """Parameters that receive gradients (tied weights counted once)."""
    unique = {id(p): p for p in model.parameters()}
    return sum(p.numel() for p in unique.values() if p.requires_grad)


def active_matmul_parameters(base: nn.Module, model: nn.Module, spec: MethodSpec) -> int:
    """Parameters one forward multiplies with: the base's non-embedding weights plus ONE module per mixture.

    Embedding tables are lookups (no FLOPs). A mixture routes each forward through one expert, so only the
    merged size of the adaptation modules counts; PEFT's LoRA matrices count in full.
    """
    embeddings = {id(p) for m in base.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    unique = {id(p): p for p in base.parameters()}
    n = sum(p.numel() for key, p in unique.items() if key not in embeddings)
    if spec.kind == "adamix":
        n += adamix.count_parameters(model)["adapter_merged"]
    elif spec.kind == "peft_lora":
        n += sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
    return n


def step_flops(base: nn.Module, model: nn.Module, spec: MethodSpec, batch: int, length: int) -> float:
    """Model FLOPs of one training step (the formula is FLOPS_FORMULA)."""
    config = base.config
    tokens = batch * length
    attention = 4.0 * config.num_hidden_layers * batch * length * length * config.hidden_size
    forward = 2.0 * active_matmul_parameters(base, model, spec) * tokens + attention
    passes = 3.0 if spec.kind == "full" else 2.0
    views = 2.0 if spec.two_view else 1.0
    return views * passes * forward


FLOPS_FORMULA = (
    "forward = 2*N*B*T + 4*L*B*T^2*H (N: non-embedding parameters of the base plus one adaptation module per "
    "mixture; the second term is the attention scores QK^T and PV); full fine-tuning step = 3*forward "
    "(= 6*N*tokens + attention), adapter/LoRA/AdaMix step = 2*forward (= 4*N*tokens: activation gradients "
    "only, frozen weights get none); a consistency step counts both views (x2). Tokens/s counts the B*T input "
    "tokens once, also for two views. MFU = achieved FLOP/s / --peak-tflops."
)
