"""The targets of issue 5 as checks over the measured figures, and the printed tables."""

from __future__ import annotations

from dataclasses import dataclass

# Each method's row shows its time relative to this reference (the comparison the targets make).
TRAIN_REFERENCE = {
    "full": "peft_lora",
    "peft_lora": "peft_lora",
    "adapter": "peft_lora",
    "lora": "peft_lora",
    "adamix_adapter": "adapter",
    "adamix_adapter+cons_batched": "adapter",
    "adamix_adapter+cons_seq": "adapter",
    "adamix_lora": "lora",
    "adamix_lora+cons_batched": "lora",
    "adamix_lora+cons_seq": "lora",
}
INFERENCE_REFERENCE = {
    "base": "base",
    "adapter": "base",
    "adamix_adapter:merged": "adapter",
    "lora": "base",
    "adamix_lora:merged": "lora",
    "adamix_lora:unloaded": "base",
}


@dataclass(frozen=True)
class Check:
    """A target: `numerator / denominator` (or the MFU of `numerator`) compared with `target` by `op`."""

    name: str
    section: str  # "train", "inference" or "mfu"
    numerator: str
    denominator: str | None
    target: float
    op: str = "<="
    gpu_only: bool = False
    batch: int | None = None  # the target is stated at this batch size


CHECKS = (
    Check("AdaMix adapter step / adapter step", "train", "adamix_adapter", "adapter", 1.05),
    Check("AdaMix LoRA step / LoRA step", "train", "adamix_lora", "lora", 1.05),
    Check(
        "AdaMix adapter+consistency (batched) / adapter",
        "train",
        "adamix_adapter+cons_batched",
        "adapter",
        2.0,
    ),
    Check(
        "AdaMix adapter+consistency (sequential) / adapter",
        "train",
        "adamix_adapter+cons_seq",
        "adapter",
        2.0,
    ),
    Check("AdaMix LoRA+consistency (batched) / LoRA", "train", "adamix_lora+cons_batched", "lora", 2.0),
    Check("AdaMix LoRA+consistency (sequential) / LoRA", "train", "adamix_lora+cons_seq", "lora", 2.0),
    Check("AdaMix adapter merged latency / adapter", "inference", "adamix_adapter:merged", "adapter", 1.02),
    Check("AdaMix LoRA merged latency / LoRA", "inference", "adamix_lora:merged", "lora", 1.02),
    Check(
        "AdaMix LoRA merge_and_unload latency / base (1.00x)",
        "inference",
        "adamix_lora:unloaded",
        "base",
        1.02,
    ),
    Check("our LoRA step / PEFT LoRA step", "train", "lora", "peft_lora", 1.0),
    Check("AdaMix adapter MFU", "mfu", "adamix_adapter", None, 0.40, ">=", gpu_only=True, batch=64),
    Check(
        "AdaMix adapter+consistency (batched) / PEFT LoRA",
        "train",
        "adamix_adapter+cons_batched",
        "peft_lora",
        1.6,
        gpu_only=True,
        batch=32,
    ),
    Check(
        "AdaMix LoRA+consistency (batched) / PEFT LoRA",
        "train",
        "adamix_lora+cons_batched",
        "peft_lora",
        1.6,
        gpu_only=True,
        batch=32,
    ),
    Check(
        "AdaMix adapter+consistency (sequential) / PEFT LoRA",
        "train",
        "adamix_adapter+cons_seq",
        "peft_lora",
        1.6,
        gpu_only=True,
        batch=32,
    ),
    Check(
        "AdaMix LoRA+consistency (sequential) / PEFT LoRA",
        "train",
        "adamix_lora+cons_seq",
        "peft_lora",
        1.6,
        gpu_only=True,
        batch=32,
    ),
)


def ratio_band(num: dict, den: dict) -> tuple[float, float, float]:
    """(median ratio, low, high); low/high pair the quartiles pessimistically: a rough noise band."""
    return num["median"] / den["median"], num["p25"] / den["p75"], num["p75"] / den["p25"]


def evaluate_checks(results: dict) -> list[dict]:
    """Every check of CHECKS with its value and status: PASS, MISS, or n/a (with the reason)."""
    on_gpu = results["settings"]["device"] == "cuda"
    batch = results["settings"]["batch"]
    out = []
    for check in CHECKS:
        row = {
            "name": check.name,
            "numerator": check.numerator,
            "denominator": check.denominator,
            "op": check.op,
            "target": check.target,
            "value": None,
            "noise_band": None,
            "status": "n/a",
            "note": "",
        }
        if check.batch is not None:
            row["name"] += f" at batch {check.batch}"
        value, band, missing = _value(check, results)
        row["value"], row["noise_band"] = value, band
        if missing:
            row["note"] = missing
        elif check.gpu_only and not on_gpu:
            row["note"] = "GPU target; this run is on the CPU (value shown for information)"
        elif check.batch is not None and batch != check.batch:
            row["note"] = f"target is stated at --batch {check.batch}; this run used {batch}"
        else:
            met = value <= check.target if check.op == "<=" else value >= check.target
            row["status"] = "PASS" if met else "MISS"
            if band is not None and band[0] <= check.target <= band[1]:
                row["note"] = "target lies within the noise band"
        out.append(row)
    return out


def _value(check: Check, results: dict) -> tuple[float | None, list[float] | None, str]:
    table = results["inference"] if check.section == "inference" else results["train"]
    if check.section == "mfu":
        row = table.get(check.numerator)
        if row is None:
            return None, None, f"{check.numerator} not run"
        if row.get("mfu") is None:
            return None, None, "MFU is measured on CUDA only"
        return row["mfu"], None, ""
    names = [check.numerator, check.denominator]
    absent = [n for n in names if n not in table]
    if absent:
        return None, None, f"not run: {', '.join(absent)}"
    timing = "latency_ms" if check.section == "inference" else "step_ms"
    ratio, low, high = ratio_band(table[check.numerator][timing], table[check.denominator][timing])
    return ratio, [low, high], ""


def _count(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def _timing(t: dict) -> str:
    return f"{t['median']:.1f} ({t['p25']:.1f}-{t['p75']:.1f})"


def format_tables(results: dict) -> str:
    """The training, inference and target tables as plain text."""
    s = results["settings"]
    head = (
        f"model {s['model']}, batch {s['batch']} x length {s['length']}, {s['device']} ({s['device_name']}), "
        f"{s['precision']}, compile={s['compile']}, {s['timed_steps']} timed steps per method in {s['rounds']} "
        f"interleaved rounds; times are medians (p25-p75)"
    )
    lines = [head, "", "Training step (forward + backward + clip + AdamW)"]
    cols = f"{'method':<28} {'trainable':>9} {'step ms':>24} {'tokens/s':>10} {'peak MiB':>9} {'TFLOP/s':>8}"
    cols += f" {'MFU':>6}  vs reference"
    lines += [cols, "-" * len(cols)]
    for name, row in results["train"].items():
        ref = row["reference"]
        vs = "-" if ref == name else f"{row['ratio_vs_reference']:.3f}x {ref}"
        mfu = "n/a" if row["mfu"] is None else f"{100 * row['mfu']:.1f}%"
        lines.append(
            f"{name:<28} {_count(row['trainable_params']):>9} {_timing(row['step_ms']):>24} "
            f"{row['tokens_per_s']:>10.0f} {_num(row['peak_mem_mb'], '.0f'):>9} {row['tflops']:>8.3f} {mfu:>6}  {vs}"
        )
    lines += ["", "Inference latency of the deployed (merged) model, one forward of the batch"]
    cols = f"{'variant':<28} {'latency ms':>24}  vs reference"
    lines += [cols, "-" * len(cols)]
    for name, row in results["inference"].items():
        ref = row["reference"]
        vs = "-" if ref == name else f"{row['ratio_vs_reference']:.3f}x {ref}"
        lines.append(f"{name:<28} {_timing(row['latency_ms']):>24}  {vs}")
    lines += ["", "Targets (issue 5)"]
    cols = f"{'check':<62} {'value':>7} {'target':>9} {'noise band':>13}  status"
    lines += [cols, "-" * len(cols)]
    for c in results["checks"]:
        value = _num(c["value"], ".3f")
        band = "" if c["noise_band"] is None else f"{c['noise_band'][0]:.2f}-{c['noise_band'][1]:.2f}"
        note = f"  ({c['note']})" if c["note"] else ""
        lines.append(
            f"{c['name']:<62} {value:>7} {c['op'] + format(c['target'], '.2f'):>9} {band:>13}  {c['status']}{note}"
        )
    return "\n".join(lines)
