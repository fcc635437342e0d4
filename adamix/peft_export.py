"""Export a merged AdaMix LoRA as a standard PEFT LoRA adapter folder, loadable by `PeftModel.from_pretrained`.

A merged LoRA mixture is one plain LoRA per adapted layer (A and B averaged over the experts), so it has an
exact PEFT equivalent: the same A (rank, in) and B (out, rank), the same scale `lora_alpha / r`, and the task
head as `modules_to_save`. PEFT itself is not imported: the folder is written from its documented layout
(`adapter_config.json` + `adapter_model.safetensors`, tensors named `base_model.model.<module>.lora_A.weight`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .config import CONFIG_NAME, WEIGHTS_NAME, AdaMixConfig
from .layers import AdaMixLoRALayer
from .model import _adamix_config, iter_adamix_layers
from .serialization import _replace_dir, _umask

# PEFT's key prefix: a PeftModel holds the tuner as `base_model`, which holds the transformers model as `model`.
PEFT_PREFIX = "base_model.model."
# PEFT task types for transformers' auto-model families (name of the mapping in transformers' modeling_auto).
_TASK_TYPES = (
    ("SEQ_CLS", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"),
    ("CAUSAL_LM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"),
    ("TOKEN_CLS", "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES"),
    ("QUESTION_ANS", "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES"),
    ("SEQ_2_SEQ_LM", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"),
    ("FEATURE_EXTRACTION", "MODEL_MAPPING_NAMES"),
)


def export_peft(
    model: nn.Module,
    path: str | Path,
    *,
    task_type: str | None = None,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write a merged AdaMix LoRA (or a single LoRA, num_experts=1) as a PEFT LoRA adapter folder.

    The folder holds exactly PEFT's two files, `adapter_config.json` and `adapter_model.safetensors`, and is
    written atomically (a staging folder renamed into place; an existing folder is replaced). Loading it with
    `peft.PeftModel.from_pretrained(base, path)` on a fresh copy of the base model gives the logits of `model`.

    Args:
        model: an AdaMix model with method="lora" whose mixtures hold one expert each (after `merge_experts`,
            or built with num_experts=1).
        path: output folder.
        task_type: PEFT task type ("SEQ_CLS", "CAUSAL_LM", ...); None = inferred from the model class.
        base_model_name_or_path: recorded in the config; None = the model config's `_name_or_path`.

    Returns:
        The folder path.

    Raises:
        ValueError: for the adapter method (no PEFT equivalent) or a mixture that is not merged.

    Example:
        >>> adamix.merge_experts(model)  # doctest: +SKIP
        >>> adamix.export_peft(model, "sst2-lora")  # doctest: +SKIP
        >>> peft.PeftModel.from_pretrained(fresh_base, "sst2-lora")  # doctest: +SKIP
    """
    config = _adamix_config(model)
    if config.method != "lora":
        raise ValueError(
            f"export_peft writes PEFT LoRA adapters, but this model uses method={config.method!r}: a bottleneck "
            "adapter mixture has no PEFT LoRA equivalent; save it with adamix.save_adamix(model, path) "
            "(after adamix.merge_experts(model) to collapse the mixture to one adapter)"
        )
    layers = dict(iter_adamix_layers(model))
    routed = sorted(
        name
        for name, layer in layers.items()
        if layer.adamix_A.num_experts > 1 or layer.adamix_B.num_experts > 1
    )
    if routed:
        raise ValueError(
            f"export_peft needs one LoRA per layer, but {len(routed)} layer(s) (e.g. {routed[0]!r}) still hold a "
            f"mixture of {config.num_experts} experts; call adamix.merge_experts(model) first (PEFT has no "
            "mixture of experts)"
        )
    tensors = _peft_tensors(model, layers, config.modules_to_save or [])
    payload = _peft_config(model, layers, config, task_type, base_model_name_or_path)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700: the folder gets the mode of a plain mkdir
    try:
        save_file(tensors, staging / WEIGHTS_NAME, metadata={"format": "pt"})  # PEFT's own metadata
        (staging / WEIGHTS_NAME).chmod(0o666 & ~_umask())
        (staging / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        _replace_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _peft_tensors(
    model: nn.Module, layers: dict[str, AdaMixLoRALayer], heads: list[str]
) -> dict[str, torch.Tensor]:
    """PEFT's saved state dict: lora_A / lora_B per layer (nn.Linear layout, Conv1D too), then the heads."""
    tensors: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():
        # A stack of one: (1, r, in) and (1, out, r). PEFT stores A as (r, in) and B as (out, r) for Linear and
        # Conv1D alike (fan_in_fan_out only transposes the delta when merging into a Conv1D weight).
        tensors[f"{PEFT_PREFIX}{name}.lora_A.weight"] = layer.adamix_A.weight[0]
        tensors[f"{PEFT_PREFIX}{name}.lora_B.weight"] = layer.adamix_B.weight[0]
    for head in heads:
        for pname, p in model.get_submodule(head).named_parameters():
            tensors[f"{PEFT_PREFIX}{head}.{pname}"] = p
    # clone: safetensors refuses tensors that share storage (a tied head, or views of one stack).
    return {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}


def _peft_config(
    model: nn.Module,
    layers: dict[str, AdaMixLoRALayer],
    config: AdaMixConfig,
    task_type: str | None,
    base_model_name_or_path: str | None,
) -> dict[str, Any]:
    """The fields of PEFT's LoraConfig that reproduce our layers; PEFT fills every other field by default."""
    scales = {layer.scaling for layer in layers.values()}
    if scales != {config.lora_alpha / config.bottleneck}:  # cannot happen: every layer gets alpha / rank
        raise ValueError(f"LoRA layers have scales {sorted(scales)}, expected lora_alpha / r only")
    alpha = config.lora_alpha
    if base_model_name_or_path is None:
        base_model_name_or_path = getattr(getattr(model, "config", None), "_name_or_path", None) or None
    return {
        "peft_type": "LORA",
        "task_type": task_type if task_type is not None else _infer_task_type(model),
        "base_model_name_or_path": base_model_name_or_path,
        "r": config.bottleneck,
        "lora_alpha": int(alpha) if float(alpha).is_integer() else alpha,  # PEFT's scale is lora_alpha / r
        "use_rslora": False,
        "lora_dropout": config.dropout,
        "target_modules": _target_modules(model, layers),
        # GPT-2's Conv1D stores its weight as (in, out); PEFT needs the flag to merge it the right way round.
        "fan_in_fan_out": any(not isinstance(layer.base_layer, nn.Linear) for layer in layers.values()),
        "bias": "none",
        "modules_to_save": list(config.modules_to_save) or None,
        "inference_mode": True,
        "init_lora_weights": True,
        "use_dora": False,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def _target_modules(model: nn.Module, layers: dict[str, AdaMixLoRALayer]) -> list[str]:
    """The adapted modules as PEFT's suffix list: leaf names (["query", "value"]) where these select exactly
    the adapted modules, else the full module names (PEFT matches a list entry by equality or dotted suffix)."""
    adapted = set(layers)
    inside = tuple(name + "." for name in adapted)  # base_layer and adamix_* of the wrappers
    names = [name for name, _ in model.named_modules() if name and not name.startswith(inside)]
    leaves = {name.rpartition(".")[2] for name in adapted}
    if {name for name in names if name.rpartition(".")[2] in leaves} == adapted:
        return sorted(leaves)
    return sorted(adapted)


def _infer_task_type(model: nn.Module) -> str | None:
    """PEFT task type of a transformers model class, from transformers' auto-model mappings."""
    from transformers.models.auto import modeling_auto

    cls = type(model).__name__
    for task, mapping in _TASK_TYPES:
        for value in getattr(modeling_auto, mapping, {}).values():
            if cls == value or (isinstance(value, tuple | list) and cls in value):
                return task
    return None
