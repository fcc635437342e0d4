"""Model-level API: inject mixtures into a transformers model, merge them, unload them, count parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch
from torch import nn

from .config import DEFAULT_INIT_STD, AdaMixConfig, matches_target
from .layers import AdaMixAdapterLayer, AdaMixLayer, AdaMixLoRALayer, ExpertLinear

# Task heads found automatically (top-level children of transformers' task models).
_HEAD_NAMES = ("classifier", "score", "qa_outputs")


def get_adamix_model(model: nn.Module, config: AdaMixConfig) -> nn.Module:
    """Inject a mixture of adaptation modules into `model` in place and freeze everything else.

    Only the mixtures and `modules_to_save` (the task head; found automatically when not given) train.
    `forward` (and `generate` for causal LMs) work as before; the resolved config is stored as
    `model.adamix_config`.

    Args:
        model: a transformers model (or any nn.Module whose config has a `model_type`).
        config: the AdaMixConfig.

    Returns:
        The same model object, adapted.

    Example:
        >>> from transformers import AutoModelForSequenceClassification
        >>> model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")  # doctest: +SKIP
        >>> model = get_adamix_model(model, AdaMixConfig(method="adapter", num_experts=4))  # doctest: +SKIP
    """
    if not isinstance(config, AdaMixConfig):
        raise TypeError(f"config must be an AdaMixConfig, got {type(config).__name__}")
    if any(True for _ in iter_adamix_layers(model)):
        raise ValueError("model already has AdaMix modules; load a fresh base model to adapt it again")
    model_type = getattr(getattr(model, "config", None), "model_type", None) or ""
    targets = config.resolved_targets(model_type)
    names = [name for name, module in model.named_modules() if name and matches_target(name, targets)]
    if not names:
        raise ValueError(
            f"AdaMixConfig.target_modules {targets!r} matched no module of this {type(model).__name__}; "
            "pass the names of its linear layers"
        )
    heads = config.modules_to_save if config.modules_to_save is not None else _find_heads(model)
    for head in heads:
        _get_submodule(model, head, "modules_to_save")

    _check_sizes(model, names, config)
    init_std = config.init_std
    if init_std is None:
        init_std = float(
            getattr(getattr(model, "config", None), "initializer_range", None) or DEFAULT_INIT_STD
        )
    for name in names:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        base = getattr(parent, child_name)
        if config.method == "adapter":
            layer = AdaMixAdapterLayer(
                base,
                config.num_experts,
                config.bottleneck,
                config.share,
                config.dropout,
                config.expert_init,
                init_std,
            )
        else:
            layer = AdaMixLoRALayer(
                base,
                config.num_experts,
                config.bottleneck,
                config.lora_alpha,
                config.share,
                config.dropout,
                config.expert_init,
            )
        layer.train(base.training)  # new modules start in train mode; follow the model's current mode
        setattr(parent, child_name, layer)

    resolved = dataclasses.replace(
        config, target_modules=targets, modules_to_save=list(heads), init_std=init_std
    )
    model.adamix_config = resolved
    set_inference_mode(model, config.inference, config.fixed_expert)
    _freeze_all_but_adamix(model, heads)
    return model


MAX_ADDED_RATIO = 10  # a mixture may add at most this many times the base model's parameters


def _features(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) of a linear layer (nn.Linear, or GPT-2's Conv1D whose weight is (in, out)); None otherwise."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def _check_sizes(model: nn.Module, names: list[str], config: AdaMixConfig) -> None:
    """Refuse a mixture that would add more than MAX_ADDED_RATIO times the model's own parameters, before
    allocating anything (a huge `bottleneck` or `num_experts` used to exhaust memory)."""
    added = 0
    for name in names:
        sizes = _features(model.get_submodule(name))
        if sizes is None:
            continue
        per_expert = config.bottleneck * (2 * sizes[1] if config.method == "adapter" else sum(sizes))
        added += config.num_experts * per_expert
    own = sum(p.numel() for p in model.parameters())
    if own and added > MAX_ADDED_RATIO * own:
        raise ValueError(
            f"AdaMixConfig.num_experts {config.num_experts} x bottleneck {config.bottleneck} would add about "
            f"{added:,} parameters, more than {MAX_ADDED_RATIO}x the model's {own:,}; lower num_experts or bottleneck"
        )


def iter_adamix_layers(model: nn.Module) -> Iterator[tuple[str, AdaMixLayer]]:
    """(name, layer) for every AdaMix wrapper in `model`."""
    for name, module in model.named_modules():
        if isinstance(module, AdaMixLayer):
            yield name, module


def iter_expert_projections(model: nn.Module) -> Iterator[tuple[str, ExpertLinear]]:
    """(name, projection) for every stacked-expert projection in `model`."""
    for name, module in model.named_modules():
        if isinstance(module, ExpertLinear):
            yield name, module


def set_inference_mode(model: nn.Module, mode: str, fixed_expert: int | None = None) -> None:
    """Choose how every mixture routes in eval mode: 'merge', 'random', 'random_token' or 'fixed'."""
    config = _adamix_config(model)
    fixed = config.fixed_expert if fixed_expert is None else fixed_expert
    model.adamix_config = dataclasses.replace(config, inference=mode, fixed_expert=fixed)  # validates
    for _, projection in iter_expert_projections(model):
        projection.inference, projection.fixed_expert = mode, fixed


def merge_experts(model: nn.Module) -> nn.Module:
    """Collapse every mixture in place to one module by uniform averaging of weights and biases.

    Down and up (LoRA: A and B) projections are averaged separately; network outputs are not averaged.
    Afterwards each mixture has exactly one module's parameters and FLOPs. Idempotent.

    Returns:
        The same model.

    Example:
        >>> merge_experts(model)  # doctest: +SKIP
        >>> count_parameters(model)["adapter"] == count_parameters(model)["adapter_merged"]  # doctest: +SKIP
        True
    """
    _adamix_config(model)
    for _, projection in iter_expert_projections(model):
        projection.collapse()
    model.adamix_merged = True
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    """LoRA only: fold the merged update into the base weights and remove every AdaMix module.

    Returns:
        A plain transformers model (same object) with no AdaMix modules; the base weights now include the
        averaged LoRA update, so inference costs exactly the base model.

    Raises:
        ValueError: for the adapter method (a GELU sits between its projections, so it cannot fold into a weight).
    """
    config = _adamix_config(model)
    if config.method != "lora":
        raise ValueError(
            "merge_and_unload needs method='lora': a bottleneck adapter has a nonlinearity between its "
            "projections and cannot be folded into a base weight; use merge_experts() to collapse the "
            "mixture to a single adapter instead"
        )
    with torch.no_grad():
        for _, layer in iter_adamix_layers(model):
            layer.base_layer.weight.add_(layer.delta_weight().to(layer.base_layer.weight.dtype))
    return unload(model)


def unload(model: nn.Module) -> nn.Module:
    """Remove every AdaMix module without merging, giving back the untouched base layers.

    Returns:
        The same model object with its original layers (parameters keep their current `requires_grad`).
    """
    _adamix_config(model)
    for name, layer in list(iter_adamix_layers(model)):
        parent_name, _, child_name = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child_name, layer.base_layer)
    del model.adamix_config
    if hasattr(model, "adamix_merged"):
        del model.adamix_merged
    return model


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts.

    Returns:
        `trainable` (requires grad), `adapter` (all mixture parameters, every expert counted), `adapter_merged`
        (what the mixtures cost after `merge_experts`: one module each), `head` (modules_to_save), `deployed`
        (adapter_merged + head: the tunable parameters a served model carries) and `total` (every parameter).
    """
    params = {id(p): p for p in model.parameters()}  # tied weights once
    adapter = merged = 0
    for _, projection in iter_expert_projections(model):
        for p in projection.parameters():
            adapter += p.numel()
            merged += p.numel() // projection.num_experts
    heads = getattr(getattr(model, "adamix_config", None), "modules_to_save", None) or []
    head = sum(p.numel() for h in heads for p in model.get_submodule(h).parameters())
    return {
        "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        "adapter": adapter,
        "adapter_merged": merged,
        "head": head,
        "deployed": merged + head,
        "total": sum(p.numel() for p in params.values()),
    }


def adamix_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors an AdaMix artifact holds: every mixture projection and the `modules_to_save`."""
    config = _adamix_config(model)
    state: dict[str, torch.Tensor] = {}
    for name, projection in iter_expert_projections(model):
        for pname, p in projection.named_parameters():
            state[f"{name}.{pname}"] = p
    for head in config.modules_to_save or []:
        for pname, p in model.get_submodule(head).named_parameters():
            state[f"{head}.{pname}"] = p
    return state


def _adamix_config(model: nn.Module) -> AdaMixConfig:
    config = getattr(model, "adamix_config", None)
    if not isinstance(config, AdaMixConfig):
        raise ValueError("model has no AdaMix modules: call get_adamix_model(model, config) first")
    return config


def _find_heads(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_children() if name in _HEAD_NAMES]


def _get_submodule(model: nn.Module, name: str, field: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"AdaMixConfig.{field}: {type(model).__name__} has no module {name!r}") from None


def _freeze_all_but_adamix(model: nn.Module, heads: list[str]) -> None:
    """Freeze every parameter, then unfreeze the mixtures (found by class, not by name) and the heads."""
    for p in model.parameters():
        p.requires_grad_(False)
    for _, projection in iter_expert_projections(model):
        for p in projection.parameters():
            p.requires_grad_(True)
    for head in heads:
        for p in model.get_submodule(head).parameters():
            p.requires_grad_(True)
