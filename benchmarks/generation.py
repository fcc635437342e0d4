"""`python -m benchmarks.generation`: decoding throughput (new tokens/s) of the deployed NLG models against the base.

Rows, each on its own copy of one causal LM, with beam search (10 beams, as the official NLG evaluation) and
greedy decoding:

- `base`: the pretrained model alone, the reference every ratio is against;
- `adamix_lora merged`: AdaMix LoRA after `merge_experts` (one LoRA module per projection, still a module);
- `adamix_lora unloaded`: the same after `merge_and_unload` (the update folded into the base weights);
- `lora`: PEFT's LoRA as trained (an unmerged adapter);
- `lora unloaded`: PEFT's `merge_and_unload`.

Every row decodes the same batch of random prompts for exactly `--new-tokens` tokens (EOS is ignored), so the
rows do the same work; rows are timed in interleaved rounds (the order rotates each round), median reported.
The adapters are random (non-zero) updates: speed does not depend on their values. Prints a table and writes
JSON (`--out`). A folded model costs exactly the base model, so its ratio should be 1 within the noise band
(the spread of the base row's own rounds).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from torch import nn
from tqdm.auto import tqdm

import adamix

SHAPES = {
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=128,
        max_position_embeddings=128,
    ),
}
ROWS = ("base", "adamix_lora merged", "adamix_lora unloaded", "lora", "lora unloaded")


def load_model(name: str) -> nn.Module:
    """A random tiny Llama (`tiny`), or a pretrained causal LM: `smollm2`, a folder or a hub id."""
    if name in SHAPES:
        torch.manual_seed(0)
        config = transformers.LlamaConfig(**SHAPES[name], bos_token_id=1, eos_token_id=2, pad_token_id=0)
        return transformers.AutoModelForCausalLM.from_config(config).eval()
    from flows.modeling.base import resolve_model_path

    path = resolve_model_path(name)
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _randomise_lora(model: nn.Module) -> None:
    """Non-zero LoRA B matrices (a fresh LoRA is an exact no-op, which would flatter nothing but is unrealistic)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)


def build_rows(base: nn.Module, experts: int, rank: int) -> dict[str, nn.Module]:
    """Every row of ROWS as a model in eval mode, each on its own copy of `base`."""
    import peft

    rows: dict[str, nn.Module] = {"base": base}
    config = adamix.AdaMixConfig(method="lora", num_experts=experts, bottleneck=rank, lora_alpha=32)
    mixture = adamix.get_adamix_model(copy.deepcopy(base), config)
    for _, p in mixture.named_parameters():
        if p.requires_grad:
            with torch.no_grad():
                p.normal_(0, 0.01)
    adamix.merge_experts(mixture)
    rows["adamix_lora merged"] = mixture.eval()
    rows["adamix_lora unloaded"] = adamix.merge_and_unload(copy.deepcopy(mixture)).eval()
    targets = config.resolved_targets(base.config.model_type)
    lora = peft.get_peft_model(
        copy.deepcopy(base), peft.LoraConfig(r=rank, lora_alpha=32, target_modules=targets)
    )
    _randomise_lora(lora)
    rows["lora"] = lora.eval()
    rows["lora unloaded"] = copy.deepcopy(lora).merge_and_unload().eval()
    return rows


@torch.no_grad()
def decode_ms(model: nn.Module, prompts: dict, beams: int, new_tokens: int) -> float:
    """Milliseconds of one `generate` call producing exactly `new_tokens` tokens per sequence."""
    start = time.perf_counter()
    model.generate(
        **prompts,
        num_beams=beams,
        do_sample=False,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        pad_token_id=0,
    )
    if prompts["input_ids"].is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def run(args: argparse.Namespace) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    base = load_model(args.model).to(device)
    rows = {name: m.to(device) for name, m in build_rows(base, args.experts, args.rank).items()}
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, base.config.vocab_size, (args.batch, args.prompt_length), generator=g).to(device)
    prompts = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    results: dict[str, dict] = {}
    for beams in args.beams:
        times: dict[str, list[float]] = {name: [] for name in rows}
        for model in rows.values():  # warm-up
            decode_ms(model, prompts, beams, 2)
        order = list(rows)
        for r in tqdm(range(args.rounds), desc=f"beams {beams}", leave=False):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                times[name].append(decode_ms(rows[name], prompts, beams, args.new_tokens))
        base_ms = statistics.median(times["base"])
        spread = (max(times["base"]) - min(times["base"])) / base_ms if len(times["base"]) > 1 else 0.0
        results[f"beams={beams}"] = {
            name: {
                "median_ms": statistics.median(t),
                "new_tokens_per_s": args.batch * args.new_tokens / (statistics.median(t) / 1e3),
                "ratio_to_base": statistics.median(t) / base_ms,
                "rounds": len(t),
            }
            for name, t in times.items()
        }
        results[f"beams={beams}"]["base"]["noise_band"] = spread
    return {
        "model": args.model,
        "device": str(device),
        "torch": torch.__version__,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "results": results,
    }


def format_table(report: dict) -> str:
    lines = [
        f"Generation throughput, {report['model']} on {report['device']} (new tokens/s; time ratio to base)"
    ]
    for setting, rows in report["results"].items():
        band = rows["base"].get("noise_band", 0.0)
        lines.append(f"\n{setting} (base noise band: ±{band * 100:.0f}%)")
        lines.append(f"{'model':<24}{'tokens/s':>12}{'ms':>12}{'x base':>10}")
        for name, row in rows.items():
            lines.append(
                f"{name:<24}{row['new_tokens_per_s']:>12.1f}{row['median_ms']:>12.1f}{row['ratio_to_base']:>10.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny (random), smollm2, a folder or a hub id")
    parser.add_argument("--beams", type=int, nargs="+", default=[10, 1])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even with a GPU")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    args = parser.parse_args(argv)
    report = run(args)
    print(format_table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
