"""Peak CPU memory of one method's training, measured in a fresh process (CPU has no allocator statistics).

`benchmarks.run` starts `python -m benchmarks.memory_probe '<json>'` once per method. The probe notes its
resident set after imports and the input batch, resets the kernel's high-water mark (Linux
/proc/self/clear_refs), builds the model, runs a few training steps and reports the high-water mark's growth:
weights + gradients + optimizer state + activations + allocator overhead. Without /proc the growth of
ru_maxrss is reported instead (a lower bound: imports may have set the mark higher).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _status_kib(field: str) -> int | None:
    """A `kB` field (VmRSS, VmHWM) of /proc/self/status, or None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes, Linux KiB


def measure(payload: dict) -> dict:
    """Peak resident-memory growth (MiB) of building and training `payload['method']` on the CPU."""
    import torch

    from .measure import make_optimizer, make_train_step, random_batch, warm_up
    from .models import METHODS, SHAPES, Sizes, build_base, build_method

    torch.set_num_threads(payload.get("threads") or torch.get_num_threads())
    device = torch.device("cpu")
    spec = METHODS[payload["method"]]
    vocab = SHAPES[payload["model"]][1]["vocab_size"]
    inputs, labels = random_batch(vocab, payload["batch"], payload["length"], payload["seed"], device)
    dtype = torch.bfloat16 if payload["precision"] == "bf16" else None

    # Load every lazily imported module and start the libraries' thread pools and kernels on a tiny model
    # first, so that the growth below is the method's own memory, not one-time library set-up.
    tiny = build_method(build_base("tiny", 0), spec, Sizes(**payload["sizes"]), 0, copy_base=False)
    tiny_inputs, tiny_labels = random_batch(SHAPES["tiny"][1]["vocab_size"], 2, 8, 0, device)
    tiny_step = make_train_step(tiny, spec, tiny_inputs, tiny_labels, make_optimizer(tiny), dtype, 1.0)
    warm_up(tiny_step, 2, device)
    del tiny, tiny_step
    gc.collect()

    precise = _reset_high_water_mark() and _status_kib("VmHWM") is not None
    before = _status_kib("VmRSS") if precise else _maxrss_kib()
    base = build_base(payload["model"], payload["seed"])
    model = build_method(base, spec, Sizes(**payload["sizes"]), payload["seed"], copy_base=False)
    optimizer = make_optimizer(model)
    step = make_train_step(model, spec, inputs, labels, optimizer, dtype, payload["grad_clip"])
    warm_up(step, payload["steps"], device)
    peak = _status_kib("VmHWM") if precise else _maxrss_kib()
    how = "VmHWM growth (clear_refs)" if precise else "ru_maxrss growth (lower bound)"
    return {"peak_mb": (peak - before) / 1024, "how": how}


def run_probe(payload: dict, timeout: float = 900.0) -> dict:
    """Run `measure(payload)` in a fresh interpreter; {'peak_mb': None, 'error': ...} when it fails."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "benchmarks.memory_probe", json.dumps(payload)]
    try:
        done = subprocess.run(command, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"peak_mb": None, "error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peak_mb": None, "error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(measure(json.loads(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
