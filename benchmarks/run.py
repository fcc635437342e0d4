"""`python -m benchmarks.run`: per-method training step time, tokens/s, peak memory, MFU and merged inference
latency on one random batch, with the ratios and targets of issue 5. Prints tables and writes JSON.

Every method trains its own copy of the same randomly initialised model on the same batch. Methods are timed
in interleaved rounds (the order rotates each round) so that a slow spell of a shared machine hits all of them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch
import transformers
from tqdm.auto import tqdm

from flows.modeling.base import autocast_dtype

from .measure import (
    cuda_peak_context,
    make_inference_step,
    make_optimizer,
    make_train_step,
    pick_device,
    random_batch,
    resident_bytes,
    summary,
    time_steps,
    warm_up,
)
from .memory_probe import run_probe
from .models import (
    FLOPS_FORMULA,
    INFERENCE,
    METHODS,
    SHAPES,
    Sizes,
    build_base,
    build_inference,
    build_method,
    max_length,
    step_flops,
    trainable_parameters,
)
from .report import INFERENCE_REFERENCE, TRAIN_REFERENCE, evaluate_checks, format_tables

SCHEMA_VERSION = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Defaults by where it runs; every one can be overridden by its flag.
DEFAULTS = {
    "cpu": dict(model="minilm", batch=16, length=64, steps=10, warmup=2, rounds=10),
    "cuda": dict(model="roberta-large", batch=32, length=128, steps=30, warmup=5, rounds=3),
    "quick": dict(model="tiny", batch=4, length=16, steps=2, warmup=1, rounds=1),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", choices=sorted(SHAPES), help="shape (random weights); cpu: minilm, cuda: roberta-large"
    )
    p.add_argument("--batch", type=int, help="examples per step (cpu default 16, cuda 32)")
    p.add_argument("--length", type=int, help="tokens per example (cpu default 64, cuda 128)")
    p.add_argument(
        "--steps", type=int, help="timed steps per method, split over the rounds (cpu 10, cuda 30)"
    )
    p.add_argument(
        "--warmup", type=int, help="untimed steps per method before its first round (cpu 2, cuda 5)"
    )
    p.add_argument(
        "--rounds", type=int, help="interleaved rounds over the methods (cpu 10: one step each, cuda 3)"
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="auto: bf16 on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile every model (slow to start)")
    p.add_argument("--methods", default="all", help=f"comma list of {', '.join(METHODS)}; default all")
    p.add_argument("--experts", type=int, default=4, help="M, experts per AdaMix mixture")
    p.add_argument("--bottleneck", type=int, default=16, help="adapter bottleneck size")
    p.add_argument("--lora-rank", type=int, default=4, help="LoRA rank (ours and PEFT's)")
    p.add_argument("--lora-alpha", type=float, default=32.0)
    p.add_argument(
        "--grad-clip", type=float, default=1.0, help="max grad norm as in training; 0 = no clipping"
    )
    p.add_argument("--peak-tflops", type=float, default=800.0, help="peak for MFU (H100 bf16 dense ~800)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-memory", action="store_true", help="skip the CPU memory probes (one process each)")
    p.add_argument(
        "--json", type=Path, help="output path; default benchmarks/results/<model>-<device>-b<B>-t<T>.json"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny settings (tiny model unless --model), for tests"
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def _settings(args: argparse.Namespace, device: torch.device) -> dict:
    defaults = DEFAULTS["quick" if args.quick else device.type]
    s = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()}
    for k in ("batch", "length", "steps", "warmup", "rounds"):
        if s[k] < (0 if k == "warmup" else 1):
            raise SystemExit(f"--{k} must be positive, got {s[k]}")
    s["rounds"] = min(s["rounds"], s["steps"])
    s["steps_per_round"] = s["steps"] // s["rounds"]
    s["timed_steps"] = s["steps_per_round"] * s["rounds"]
    methods = (
        list(METHODS) if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    )
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    s["methods"] = list(dict.fromkeys(methods))
    return s


def _environment(device: torch.device) -> dict:
    try:
        import peft

        peft_version = peft.__version__
    except ImportError:
        peft_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft_version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device_name": name,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _rounds(jobs: dict, settings: dict, device: torch.device, bar) -> dict[str, dict]:
    """Time every job's step in rotating interleaved rounds; {name: {'times': [...], 'extra_bytes': int}}."""
    names = list(jobs)
    out = {n: {"times": [], "extra_bytes": 0} for n in names}
    for r in range(settings["rounds"]):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            job = jobs[name]
            bar.set_description(f"round {r + 1}/{settings['rounds']} {name}")
            if r == 0:
                warm_up(job["step"], settings["warmup"], device)
            if job.get("optimizer") is not None:
                job["optimizer"].zero_grad(
                    set_to_none=True
                )  # gradients of idle models would count as resident
            with cuda_peak_context(device) as peak:
                out[name]["times"] += time_steps(job["step"], settings["steps_per_round"], device)
            if peak is not None:
                out[name]["extra_bytes"] = max(out[name]["extra_bytes"], peak.extra)
            if job.get("optimizer") is not None:
                job["optimizer"].zero_grad(set_to_none=True)
                job.setdefault("resident", resident_bytes(job["model"], job["optimizer"]))  # state exists now
            bar.update(1)
    return out


def run(args: argparse.Namespace) -> dict:
    """Measure everything `args` asks for; returns the results dictionary (also written as JSON)."""
    load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    dtype = autocast_dtype(args.precision, device)
    s = _settings(args, device)
    sizes = Sizes(args.experts, args.bottleneck, args.lora_rank, args.lora_alpha)
    torch.manual_seed(args.seed)
    base = build_base(s["model"], args.seed)
    if s["length"] > max_length(base):
        raise SystemExit(f"--length {s['length']} exceeds the {s['model']} maximum of {max_length(base)}")
    inputs, labels = random_batch(base.config.vocab_size, s["batch"], s["length"], args.seed, device)
    variants = ["base"] + [
        v for v, (src, _) in INFERENCE.items() if v != "base" and _wanted(src, s["methods"])
    ]
    probes = device.type == "cpu" and not args.no_memory
    total = (len(s["methods"]) if probes else 0) + (len(s["methods"]) + len(variants)) * (1 + s["rounds"])
    bar = tqdm(total=total, disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)

    memory = {}
    if probes:
        payload = dict(
            model=s["model"],
            batch=s["batch"],
            length=s["length"],
            seed=args.seed,
            precision="bf16" if dtype is not None else "fp32",
            grad_clip=args.grad_clip,
            sizes=sizes.__dict__,
            steps=2,
            threads=torch.get_num_threads(),
        )
        for name in s["methods"]:
            bar.set_description(f"memory probe {name}")
            memory[name] = run_probe({**payload, "method": name})
            bar.update(1)

    train_jobs, train_rows = {}, {}
    for name in s["methods"]:
        bar.set_description(f"build {name}")
        spec = METHODS[name]
        model = build_method(base, spec, sizes, args.seed).to(device).train()
        optimizer = make_optimizer(model)
        forward = torch.compile(model) if args.compile else model
        step = make_train_step(model, spec, inputs, labels, optimizer, dtype, args.grad_clip, forward)
        train_jobs[name] = {"model": model, "optimizer": optimizer, "step": step}
        train_rows[name] = {
            "kind": spec.kind,
            "family": spec.family,
            "experts": sizes.experts if spec.experts else 1,
            "two_view": spec.two_view,
            "trainable_params": trainable_parameters(model),
            "flops_per_step": step_flops(base, model, spec, s["batch"], s["length"]),
        }
        bar.update(1)
    train_times = _rounds(train_jobs, s, device, bar)
    resident = {n: j.get("resident", 0) for n, j in train_jobs.items()}
    train_jobs.clear()
    _free(device)

    infer_jobs = {}
    for name in variants:
        bar.set_description(f"build {name}")
        model = build_inference(base, name, sizes, args.seed).to(device)
        forward = torch.compile(model) if args.compile else model
        infer_jobs[name] = {"model": model, "step": make_inference_step(model, inputs, dtype, forward)}
        bar.update(1)
    infer_times = _rounds(infer_jobs, s, device, bar)
    infer_jobs.clear()
    _free(device)
    bar.close()

    tokens = s["batch"] * s["length"]
    for name, row in train_rows.items():
        timing = summary(train_times[name]["times"])
        seconds = timing["median"] / 1e3
        row["step_ms"] = timing
        row["tokens_per_s"] = tokens / seconds
        row["tflops"] = row["flops_per_step"] / seconds / 1e12
        row["mfu"] = row["tflops"] / args.peak_tflops if device.type == "cuda" else None
        if device.type == "cuda":
            row["peak_mem_mb"] = (resident[name] + train_times[name]["extra_bytes"]) / 2**20
        else:
            row["peak_mem_mb"] = memory.get(name, {}).get("peak_mb")
            if name in memory and memory[name].get("error"):
                row["peak_mem_error"] = memory[name]["error"]
    infer_rows = {n: {"latency_ms": summary(t["times"])} for n, t in infer_times.items()}
    for rows, refs, key in (
        (train_rows, TRAIN_REFERENCE, "step_ms"),
        (infer_rows, INFERENCE_REFERENCE, "latency_ms"),
    ):
        for name, row in rows.items():
            ref = refs[name] if refs[name] in rows else name
            row["reference"] = ref
            row["ratio_vs_reference"] = row[key]["median"] / rows[ref][key]["median"]

    env = _environment(device)
    env["load_average_at_start"] = load_at_start
    results = {
        "schema_version": SCHEMA_VERSION,
        "command": shlex.join(["python", "-m", "benchmarks.run", *args.argv]),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "settings": {
            **{k: v for k, v in s.items() if k != "steps"},
            "device": device.type,
            "device_name": env["device_name"],
            "precision": "bf16 autocast" if dtype is not None else "fp32",
            "compile": args.compile,
            "sizes": sizes.__dict__,
            "grad_clip": args.grad_clip,
            "peak_tflops": args.peak_tflops,
            "seed": args.seed,
        },
        "environment": env,
        "flops_formula": FLOPS_FORMULA,
        "memory_method": (
            "CUDA: parameters + buffers + optimizer state of the method's model, plus the peak that "
            "torch.cuda.max_memory_allocated shows above everything resident during its timed steps "
            "(gradients, activations, temporaries)"
            if device.type == "cuda"
            else "CPU: peak resident-set growth of a fresh process building the model and running 2 steps "
            "(benchmarks/memory_probe.py); includes allocator overhead; null if not measured"
        ),
        "train": train_rows,
        "inference": infer_rows,
    }
    results["checks"] = evaluate_checks(results)
    return results


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _wanted(source: str, methods: list[str]) -> bool:
    return any(METHODS[m].source == source for m in methods)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    s = results["settings"]
    path = args.json or RESULTS_DIR / f"{s['model']}-{s['device']}-b{s['batch']}-t{s['length']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(format_tables(results))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
