"""How many seeds and test examples a comparison needs: variance components of a paired difference, projected.

A study's paired difference is a mean over seeds x test examples of d[s, n] = correct_a[s, n] - correct_b[s, n].
Read as a two-way layout without replication, d[s, n] = mu + seed_s + example_n + residual_sn, and its mean over S
seeds and N examples (the same examples for every seed, as the studies score them) has variance

    var_seed / S + var_example / N + var_residual / (S x N)

The components are estimated from the mean squares of runs already made (method of moments, negative
estimates set to 0), so the interval of a larger design can be projected before it is trained. With 3 seeds
var_seed rests on 2 degrees of freedom: a rough projection, and said so wherever it is printed.

    python -m flows.report.power A_DIR B_DIR --seeds 10 --examples 7230
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .study import per_example_correctness


@dataclass(frozen=True)
class Components:
    """Variance components of per-example paired differences (fractions squared, not x 100)."""

    seed: float
    example: float
    residual: float
    seeds: int  # the design they were estimated on
    examples: int

    def half_width(self, seeds: int, examples: int, z: float = 1.96) -> float:
        """The half-width of a normal 95% interval of the mean difference for a design of this size."""
        var = self.seed / seeds + self.example / examples + self.residual / (seeds * examples)
        return z * math.sqrt(var)


def components(diff: np.ndarray) -> Components:
    """Method-of-moments variance components of a (seeds x examples) matrix of paired differences.

    Raises:
        ValueError: fewer than 2 seeds or 2 examples.
    """
    seeds, examples = diff.shape
    if seeds < 2 or examples < 2:
        raise ValueError(f"need 2 or more seeds and examples, got {seeds} x {examples}")
    rows, cols, grand = diff.mean(1), diff.mean(0), diff.mean()
    ms_seed = examples * float(np.sum((rows - grand) ** 2)) / (seeds - 1)
    ms_example = seeds * float(np.sum((cols - grand) ** 2)) / (examples - 1)
    resid = diff - rows[:, None] - cols[None, :] + grand
    ms_resid = float(np.sum(resid**2)) / ((seeds - 1) * (examples - 1))
    return Components(
        seed=max((ms_seed - ms_resid) / examples, 0.0),
        example=max((ms_example - ms_resid) / seeds, 0.0),
        residual=ms_resid,
        seeds=seeds,
        examples=examples,
    )


def correctness(run_dir: Path, mode: str | None = None) -> dict[int, np.ndarray]:
    """seed -> per-example test correctness from the result files seed<N>.json of one run method, in `mode`
    (default: merge where the files have it, else their one mode); checked as a study checks an arm.

    Raises:
        ValueError: no result files, files without per-example predictions, or seeds tested on other examples.
    """
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(run_dir.glob("seed*.json"))]
    if not records:
        raise ValueError(f"{run_dir}: no result files (seed<N>.json)")
    modes = records[0].get("predictions") or {}
    chosen = mode if mode in modes else "merge" if "merge" in modes else next(iter(modes), "")
    correct, _, why = per_example_correctness(records, chosen, "accuracy", run_dir.name)
    if why:
        raise ValueError(f"{run_dir}: {why}")
    return correct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Project the 95%% interval of a paired difference.")
    parser.add_argument(
        "arm", type=Path, help="folder of one run method's result files (<results>/<task>/<m>)"
    )
    parser.add_argument("against", type=Path, help="the same for the method it is compared with")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--examples", type=int, nargs="+", default=[1000, 7230])
    args = parser.parse_args(argv)
    try:
        a, b = correctness(args.arm), correctness(args.against)
        common = sorted(set(a) & set(b))
        found = components(np.stack([a[s] - b[s] for s in common]))
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(_table(found, args.seeds, args.examples))
    return 0


def _table(found: Components, seeds: list[int], examples: list[int]) -> str:
    lines = [
        f"Estimated on {found.seeds} seeds x {found.examples} examples (x 100 points: seed sd "
        f"{100 * math.sqrt(found.seed):.2f}, example sd {100 * math.sqrt(found.example):.1f}, residual sd "
        f"{100 * math.sqrt(found.residual):.1f}); the seed component rests on {found.seeds - 1} degrees of "
        "freedom.",
        "",
        "| Seeds | Test examples | 95% half-width (points) |",
        "|---:|---:|---:|",
    ]
    for s in seeds:
        for n in examples:
            lines.append(f"| {s} | {n} | {100 * found.half_width(s, n):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
