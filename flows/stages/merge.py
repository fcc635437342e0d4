"""The `merge` stage: collapse each AdaMix mixture to one module and record parameter counts before and after."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import adamix

from ..atomic import staging_dir
from ..config import paths
from ..config.grid import run_params
from ..data import read_meta
from ..modeling.models import load_run_model, method_spec, parameter_counts


def merge_run(params: dict, task: str, method: str, seed: int, *, root: Path | None = None) -> dict:
    """Write merged/<task>/<method>/seed<seed>/: the deployable artifact and `params.json`.

    AdaMix runs are merged by uniform weight averaging (one adapter per layer afterwards). Single-module runs
    have nothing to merge: their trained artifact is what is deployed, so only the counts are written.

    Returns:
        {"before": counts, "after": counts, "merged": bool}.
    """

    run = run_params(params, method)
    spec, _ = method_spec(method, run)
    meta = read_meta(paths.split_dir(task, seed, root))
    source = paths.run_dir(task, method, seed, root)
    # counts as trained (a reloaded PEFT model comes back frozen, so its own count would say 0 trainable);
    # read first: a missing run is reported before the base model is loaded
    before = json.loads((source / "run.json").read_text())["params"]
    model = load_run_model(run, spec, meta, source)
    out_dir = paths.merged_dir(task, method, seed, root)
    staging = staging_dir(out_dir)
    try:
        merged = spec.has_mixture and model.adamix_config.num_experts > 1
        if merged:
            adamix.merge_experts(model)
            adamix.save_adamix(model, staging / "adapter")
        after = parameter_counts(model, spec) if merged else before
        record = {"before": before, "after": after, "merged": merged}
        (staging / "params.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(
        f"[{task}/{method}/seed{seed}] adapter params {before['adapter']:,} -> {after['adapter']:,}"
        f" (deployed {after['deployed']:,})"
    )
    return record


def main(argv: list[str] | None = None) -> int:
    from .common import run_stage

    parser = argparse.ArgumentParser(description="Merge one trained run's experts.")
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, a: merge_run(params, a.task, a.method, a.seed))


if __name__ == "__main__":
    sys.exit(main())
