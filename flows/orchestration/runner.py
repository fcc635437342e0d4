"""Run the whole pipeline in plain Python processes: no DVC, no Prefect server.

For a batch job on a GPU node (Slurm, a cloud VM) where the orchestration stack is not installed or not wanted:
the same stage functions as `dvc repro` and the Prefect flow, in the same folders, with the runs of the grid
spread over worker processes (several small runs share one GPU well)::

    python -m flows.orchestration.runner --profile ablations --workers 8            # then: dvc commit, to adopt the outputs
    python -m flows.orchestration.runner --profile smoke --no-track                 # without MLflow
    python -m flows.orchestration.runner --profile ablations --workers 8 --resume   # after a crash: the rest only

`--resume` keeps every run that already has its result file (results/<task>/<method>/seed<seed>.json, written
last, atomically, by the evaluate stage) and trains only the others. It trusts those results as they are: use it
to finish a sweep that stopped, or to extend a finished one with more runs under the same settings, never after
changing a setting the kept runs depend on (`dvc repro` tracks that; this runner does not).

Exit code 2 on bad input (named in one line), 1 if a run fails (the others still finish; the report is skipped).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from ..config import paths


def _one_run(params: dict, task: str, method: str, seed: int, track: bool, workers: int) -> tuple[str, float]:
    """Train, merge and evaluate one run (in a worker process)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if workers > 1:  # share the CPU cores between the workers instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    from ..stages.evaluate import evaluate_run
    from ..stages.merge import merge_run
    from ..stages.train import train_run

    started = time.perf_counter()
    train_run(params, task, method, seed, track=track)
    merge_run(params, task, method, seed)
    evaluate_run(params, task, method, seed, track=track)
    return f"{task}/{method}/seed{seed}", time.perf_counter() - started


def seed_major(grid: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The runs ordered seed by seed, every method (and rate) of the first seed before the next seed: a sweep
    stopped part-way then holds every arm at the same seeds, ready to compare, and `--resume` finishes it."""
    rank = {seed: i for i, seed in enumerate(dict.fromkeys(seed for _, _, seed in grid))}
    return sorted(grid, key=lambda run: rank[run[2]])


def run_all(
    params: dict, *, workers: int = 1, track: bool = True, skip_prepare: bool = False, resume: bool = False
) -> int:
    """Prepare, split, then train/merge/evaluate every run of the grid, then report.

    Args:
        params: validated parameters.
        workers: worker processes for the runs (1 = in this process, one after another).
        track: record runs in MLflow.
        skip_prepare: use the tasks already in data/prepared (prepared where the sources are) as they are.
        resume: leave out the runs that already have a result file (see the module docstring).

    Returns:
        The number of failed runs (0 = the report was written).
    """
    from tqdm.auto import tqdm

    from ..config.grid import runs
    from ..stages.fewshot import split_for_seed
    from ..stages.prepare import prepare
    from ..stages.report import build_report

    grid = runs(params)
    prepared: set[str] = set()
    for task, seed in dict.fromkeys((t, s) for t, _, s in grid):
        if skip_prepare and not (paths.prepared_dir(task) / "meta.json").is_file():
            raise FileNotFoundError(f"--skip-prepare: no prepared task at {paths.prepared_dir(task)}")
        if not skip_prepare and task not in prepared:
            prepare(params, task)
            prepared.add(task)
        split_for_seed(params, task, seed)
    grid = seed_major(grid)
    if resume:
        kept = len(grid)
        grid = [run for run in grid if not paths.result_path(*run).is_file()]
        print(f"--resume: {kept - len(grid)} runs kept as they are, {len(grid)} to run")
    failed = 0
    bar = tqdm(total=len(grid), desc="runs", unit="run")
    if workers <= 1:
        for task, method, seed in grid:
            name, seconds = _one_run(params, task, method, seed, track, 1)
            bar.set_postfix_str(f"{name} {seconds:.0f}s")
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")  # CUDA and forked parents do not mix
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(_one_run, params, t, m, s, track, workers): (t, m, s) for t, m, s in grid}
            for future in as_completed(futures):
                task, method, seed = futures[future]
                try:
                    name, seconds = future.result()
                    bar.set_postfix_str(f"{name} {seconds:.0f}s")
                except Exception as err:  # report every failed run, finish the others
                    failed += 1
                    tqdm.write(f"error: run {task}/{method}/seed{seed} failed: {type(err).__name__}: {err}")
                bar.update()
    bar.close()
    if not failed:
        out = paths.reports_dir(params=params)
        build_report(paths.results_dir(), out, params)
        print(f"report: {out}")
    return failed


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    from ..stages.common import run_stage

    parser = argparse.ArgumentParser(description="Run the whole pipeline in plain Python processes.")
    parser.add_argument(
        "--workers", type=_positive, default=1, help="worker processes for the runs (default 1)"
    )
    parser.add_argument("--no-track", action="store_true", help="do not record runs in MLflow")
    parser.add_argument(
        "--skip-prepare", action="store_true", help="use data/prepared as it is (prepared on another machine)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="train only the runs without a result file; the others are kept as they are (same settings only)",
    )
    failed = []

    def stage(params: dict, args: argparse.Namespace) -> None:
        failed.append(
            run_all(
                params,
                workers=args.workers,
                track=not args.no_track,
                skip_prepare=args.skip_prepare,
                resume=args.resume,
            )
        )

    code = run_stage(parser, argv, stage, default_params="params.yaml")
    return code or (1 if failed and failed[0] else 0)


if __name__ == "__main__":
    sys.exit(main())
