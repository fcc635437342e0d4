"""The `train` stage: one run of (task, method, seed), read top to bottom.

AdaMix runs two stochastic views of every batch (different random routes and dropout masks), takes the task
loss on the first view only and adds the weighted consistency term; the other methods run one forward.
Only adapters + head are saved (the whole model for full fine-tuning), with the per-epoch history.

The pieces are flows.training's: `build_setup` (model, optimizer, schedule), the checkpoint read once before the
loop, `train_epoch` and its `train_step` (where the two views and the consistency term are), `end_epoch`
(validation, best epoch) and the run folder's writers.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..config import paths
from ..config.grid import lr_variants, run_params
from ..config.schema import ParamsError
from ..data import load_split, read_meta
from ..training import checkpoint, distributed
from ..training.loop import end_epoch, train_epoch
from ..training.outputs import Clock, keep_selected, run_info, write_run, write_timings
from ..training.setup import Setup, build_setup, set_seed
from ..training.state import TrainState


def train_run(
    params: dict, task: str, method: str, seed: int, *, root: Path | None = None, track: bool = True
) -> dict:
    """Train one run and write runs/<task>/<method>/seed<seed>/ (replaced atomically when complete).

    With ``train.select: best`` the saved weights are those of the epoch with the best validation primary metric
    (scored in the run's inference mode), and ``selection`` says which epoch that was.

    Returns:
        Run info (run.json's content): parameter counts, epochs, final and selected validation metrics, and the
        wall-clock ``seconds`` (not in run.json: timings/<task>/<method>/seed<seed>.json has it).
    """
    run = _one_rate_params(params, method)
    cfg = run["train"]
    split = paths.split_dir(task, seed, root)
    meta = read_meta(split)
    data = load_split(split, "train"), load_split(split, "validation")
    dp = distributed.start(cfg, seed, len(data[0]))  # under torchrun: this process's part; else inactive
    set_seed(seed)
    setup = build_setup(run, method, meta, data, dp, task=task, seed=seed)
    # Resume: a checkpoint beside the run (written every train.checkpoint_every steps and at each epoch end)
    # restores weights, optimizer, scheduler, RNGs, batch order and history, once, here; other params are refused.
    checkpoints = _checkpoints(setup, split, task, method, seed, root)
    resumed = checkpoints.resume(setup.device)
    state = resumed or TrainState.fresh(seed, setup.total_steps, setup.device)
    if resumed:
        tqdm.write(
            f"[{setup.name}] resuming from {checkpoints.folder} at step {state.step} of {setup.total_steps}"
        )
    clock = Clock(state.epoch_seconds)
    with _tracker(params, run, task, method, seed, split, resumed, track and dp.is_main) as tracker:
        state.run_id = tracker.run_id if tracker else None
        if tracker and not resumed:
            tracker.log_metrics({f"params/{k}": v for k, v in setup.counts.items()})
        for epoch in range(state.step // setup.steps_per_epoch + 1, cfg["epochs"] + 1):
            train_epoch(setup, state, epoch, checkpoints)
            record = end_epoch(setup, state, epoch)
            state.epoch_seconds.append(clock.seconds())
            _log_epoch(setup, record, state.epoch_seconds[-1], tracker)
            if epoch < cfg["epochs"]:  # each epoch end, except the last: the run folder follows at once
                checkpoints.save(state)
        if not dp.is_main:  # data-parallel: rank 0 alone writes the run
            return {"task": task, "method": method, "seed": seed, "rank": dp.rank}
        info = run_info(setup, state, keep_selected(setup, state), task, method, seed)
        out_dir = paths.run_dir(task, method, seed, root)
        write_run(setup, out_dir, state.history, info)
        checkpoints.remove()  # the run is complete: nothing to resume
        seconds = clock.seconds()
        write_timings(
            paths.timing_path(task, method, seed, root), seconds, state.epoch_seconds, info["device"]
        )
        if tracker:
            tracker.log_metrics({"seconds_total": seconds})
            tracker.log_artifact(out_dir / "history.json")
    return {**info, "seconds": seconds}


def _checkpoints(
    setup: Setup, split: Path, task: str, method: str, seed: int, root: Path | None
) -> checkpoint.Checkpoints:
    """The run's checkpoint: beside its run folder, for its params and data; rank 0 alone writes it."""
    return checkpoint.Checkpoints(
        checkpoint.checkpoint_dir(paths.run_dir(task, method, seed, root)),
        checkpoint.fingerprint(setup.run, task, method, seed, checkpoint.data_hash(split)),
        setup.model,
        setup.optimizer,
        setup.scheduler,
        enabled=setup.dp.is_main,
    )


def _one_rate_params(params: dict, method: str) -> dict:
    """The run's params; a method that trains at several learning rates is refused (train its candidates)."""
    run = run_params(params, method)
    rate = run["train"]["learning_rate"]
    if isinstance(rate, list):
        candidates = ", ".join(v.method for v in lr_variants(params, method))
        raise ParamsError(
            f"method {method!r} trains at several learning rates {rate}: train one of its candidates ({candidates})"
        )
    return run


def _log_epoch(setup: Setup, record: dict[str, Any], seconds: float, tracker: Any) -> None:
    """Print the epoch's record with its wall-clock seconds, and log both to MLflow.

    Wall-clock time goes to the log, MLflow and timings/, never into the run folder: DVC hashes that, and a
    retrain with the same seed must give the same bytes.
    """
    shown = {**record, "seconds": seconds}
    tqdm.write(f"[{setup.name}] " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()))
    if tracker:
        tracker.log_metrics({k: v for k, v in shown.items() if k != "epoch"}, step=record["epoch"])


def _tracker(
    params: dict,
    run: dict,
    task: str,
    method: str,
    seed: int,
    split: Path,
    resumed: TrainState | None,
    track: bool,
) -> contextlib.AbstractContextManager:
    """The MLflow run of this training (the resumed run's own, when there is one); a null context without."""
    if not track:
        return contextlib.nullcontext()
    from ..tracking import StageRun, run_tags

    tags = run_tags(task, method, seed, split)
    resume = resumed.run_id if resumed else None
    return StageRun(params, "train", f"train {task}/{method}/{seed}", run, tags=tags, resume=resume)


def _fmt(value: Any) -> str:
    """A float to 4 decimals, anything else as it prints."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    from .common import run_stage

    parser = argparse.ArgumentParser(description="Train one (task, method, seed) run.")
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, a: train_run(params, a.task, a.method, a.seed))


if __name__ == "__main__":
    sys.exit(main())
