"""Save and load an AdaMix artifact: adapter_config.json + adapter_model.safetensors, never the backbone."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .config import CONFIG_NAME, WEIGHTS_NAME, AdaMixConfig
from .model import _adamix_config, adamix_state_dict, get_adamix_model, merge_experts, unload

FORMAT_VERSION = 1
# Keys written into adapter_config.json beside the config fields.
_EXTRA_KEYS = ("format_version", "merged", "base_model")


def _base_description(model: nn.Module) -> dict:
    cfg = getattr(model, "config", None)
    return {
        "model_type": getattr(cfg, "model_type", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "num_hidden_layers": getattr(cfg, "num_hidden_layers", None),
        "name_or_path": getattr(cfg, "_name_or_path", None) or None,
    }


def save_adamix(model: nn.Module, path: str | Path) -> Path:
    """Write the mixtures and the task head of `model` to the folder `path`.

    Only AdaMix tensors and `modules_to_save` are written (a shared projection is one tensor, stored once);
    the folder is replaced atomically, so a crash never leaves a half-written artifact.

    Args:
        model: an AdaMix model (merged or not).
        path: output folder (created; an existing one is replaced).

    Returns:
        The folder path.

    Example:
        >>> save_adamix(model, "runs/sst2-adamix")  # doctest: +SKIP
    """
    config = _adamix_config(model)
    path = Path(path)
    tensors = {name: t.detach().contiguous().cpu() for name, t in adamix_state_dict(model).items()}
    base = _base_description(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700: the artifact gets the mode of a plain mkdir
    try:
        metadata = {"format": "pt", "adamix_format_version": str(FORMAT_VERSION)}
        save_file(tensors, staging / WEIGHTS_NAME, metadata=metadata)
        _sort_header(staging / WEIGHTS_NAME)
        (staging / WEIGHTS_NAME).chmod(0o666 & ~_umask())  # safetensors creates it 0600
        extra = {"format_version": FORMAT_VERSION, "merged": bool(getattr(model, "adamix_merged", False))}
        config.to_json_file(staging / CONFIG_NAME, extra={**extra, "base_model": base})
        _replace_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sort_header(path: Path) -> None:
    """Rewrite a safetensors header with its metadata keys sorted, in place.

    safetensors stores `__metadata__` from a hash map, in an order that changes from process to process, so two
    saves of the same tensors differ in bytes (and DVC sees a change). Sorting the keys changes neither the
    header's length nor anything a reader sees.
    """
    with path.open("r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        if "__metadata__" in header:
            header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > size:  # cannot happen (same keys and values); leave the file as written
            return
        f.seek(8)
        f.write(text.ljust(size, b" "))


def read_adamix_config(path: str | Path) -> tuple[AdaMixConfig, dict]:
    """Read `adapter_config.json` of an artifact folder: (config, metadata with merged/base_model)."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"not an AdaMix artifact: {file} is missing")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object")
    try:
        config = AdaMixConfig.from_dict(data, ignore=_EXTRA_KEYS)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{file}: {err}") from None
    return config, {k: data.get(k) for k in _EXTRA_KEYS}


def load_adamix(model: nn.Module, path: str | Path) -> nn.Module:
    """Load an artifact written by `save_adamix` into `model`.

    `model` is a freshly loaded base (it gets the mixtures first) or an AdaMix model of the same config.
    Reading uses safetensors only; nothing is unpickled.

    Args:
        model: the base model the artifact was trained on (same architecture and size).
        path: the artifact folder.

    Returns:
        The model, with the artifact's weights; logits equal those of the saved model.

    Raises:
        ValueError: the artifact does not fit the model (architecture, size, tensor names or shapes).

    Example:
        >>> base = AutoModelForSequenceClassification.from_pretrained(name, num_labels=2)  # doctest: +SKIP
        >>> model = load_adamix(base, "runs/sst2-adamix")  # doctest: +SKIP
    """
    path = Path(path)
    config, meta = read_adamix_config(path)
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"not an AdaMix artifact: {weights} is missing")
    saved_type = (meta.get("base_model") or {}).get("model_type")
    here_type = _base_description(model)["model_type"]
    if saved_type and here_type and saved_type != here_type:
        raise ValueError(
            f"{path} was saved from a {saved_type!r} model, but this model is a {here_type!r} model"
        )
    if getattr(model, "adamix_config", None) is not None:
        have = _adamix_config(model)
        for field in ("method", "num_experts", "bottleneck", "share", "placement"):
            if getattr(have, field) != getattr(config, field):
                raise ValueError(
                    f"{path} has {field}={getattr(config, field)!r} but the model's AdaMix modules have "
                    f"{field}={getattr(have, field)!r}; load into a fresh base model instead"
                )
        return _load_weights(model, path, weights, meta)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    get_adamix_model(model, config)
    try:
        return _load_weights(model, path, weights, meta)
    except BaseException:
        unload(model)  # leave the caller's base model as it was
        for p, flag in flags:
            p.requires_grad_(flag)
        raise


def _load_weights(model: nn.Module, path: Path, weights: Path, meta: dict) -> nn.Module:
    """Copy the artifact's tensors into the (wrapped) model after checking names and shapes."""
    saved_base = meta.get("base_model") or {}
    here = _base_description(model)
    if meta.get("merged"):
        merge_experts(model)

    expected = adamix_state_dict(model)
    try:
        handle = safe_open(str(weights), framework="pt", device="cpu")
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{weights} is not a readable safetensors file: {err}") from None
    with handle:
        stored = set(handle.keys())
        missing, unexpected = sorted(set(expected) - stored), sorted(stored - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{path} does not fit this model: "
                + (f"missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}; " if missing else "")
                + (
                    f"unexpected tensors {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}; "
                    if unexpected
                    else ""
                )
                + _size_hint(saved_base, here)
            )
        loaded = {}
        for name, param in expected.items():
            tensor = handle.get_tensor(name)
            if tensor.shape != param.shape:
                raise ValueError(
                    f"{path}: tensor {name!r} has shape {tuple(tensor.shape)} in the artifact but "
                    f"{tuple(param.shape)} in the model; {_size_hint(saved_base, here)}"
                )
            loaded[name] = tensor
    with torch.no_grad():
        for name, param in expected.items():
            param.copy_(loaded[name].to(device=param.device, dtype=param.dtype))
    return model


def _size_hint(saved: dict, here: dict) -> str:
    """Name the base-model difference that explains a mismatch, when the metadata shows one."""
    diffs = [
        f"{key} {saved.get(key)} (artifact) vs {here.get(key)} (model)"
        for key in ("model_type", "hidden_size", "num_hidden_layers")
        if saved.get(key) is not None and here.get(key) is not None and saved.get(key) != here.get(key)
    ]
    return "base model differs: " + ", ".join(diffs) if diffs else "the base model's architecture differs"


def _replace_dir(staging: Path, target: Path) -> None:
    """Move `staging` to `target`, replacing an existing folder only once the new one is complete."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
