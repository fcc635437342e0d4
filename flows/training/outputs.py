"""What a finished training run leaves: the selected weights, run.json and history.json, and its timings.

The run folder is what DVC hashes, so it holds nothing that changes between two trainings with the same seed:
wall-clock times go to timings/, the log and MLflow instead.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..atomic import ordinary_modes, staging_dir
from ..config.files import write_if_changed
from ..modeling.models import save_run_model
from .setup import Setup
from .state import TrainState


class Clock:
    """Seconds since the run started; a resumed run counts on from the end of its last finished epoch."""

    def __init__(self, epoch_seconds: list[float]) -> None:
        self.started = time.perf_counter() - (epoch_seconds[-1] if epoch_seconds else 0.0)

    def seconds(self) -> float:
        """Seconds so far, rounded to hundredths."""
        return round(time.perf_counter() - self.started, 2)


def keep_selected(setup: Setup, state: TrainState) -> int:
    """Put the selected epoch's weights in the model; returns that epoch.

    `select: best` keeps the weights of the epoch with the best validation score (ties: the earliest), as the
    official scripts' --load_best_model_at_end; test is scored once, on what is saved. Otherwise the last.
    """
    epochs = setup.cfg["epochs"]
    if state.best is None:
        return epochs
    if state.best.epoch != epochs:
        state.best.restore(setup.model)
    return state.best.epoch


def run_info(setup: Setup, state: TrainState, kept: int, task: str, method: str, seed: int) -> dict[str, Any]:
    """run.json's content: parameter counts, epochs, final and selected validation metrics, per-step losses."""
    cfg = setup.cfg

    def validation(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k.startswith("validation/")}

    return {
        "task": task,
        "method": method,
        "seed": seed,
        "params": setup.counts,
        "epochs": cfg["epochs"],
        "train_examples": len(setup.train_data),
        "device": str(setup.device),
        "final_validation": validation(state.history[-1]),
        "selection": {
            "rule": cfg["select"],
            "epoch": kept,
            "metric": setup.meta["primary_metric"],
            "validation": validation(state.history[kept - 1]),
        },
        "learning_rate": cfg["learning_rate"],
        "step_loss": [round(v, 5) for v in state.step_loss.tolist()],
    }


def write_run(setup: Setup, out_dir: Path, history: list[dict], info: dict) -> None:
    """Write the run into a staging folder, then swap it in: a crash never leaves a run that looks complete."""
    staging = staging_dir(out_dir)
    try:
        save_run_model(setup.model.cpu(), setup.spec, staging)
        (staging / "history.json").write_text(json.dumps(history, indent=2) + "\n")
        (staging / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        ordinary_modes(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_timings(path: Path, seconds: float, epoch_seconds: list[float], device: str) -> None:
    """The run's wall-clock seconds, in all and at each epoch's end (timings/<task>/<method>/seed<seed>.json)."""
    payload = {"seconds": seconds, "epoch_seconds": epoch_seconds, "device": device}
    write_if_changed(path, json.dumps(payload) + "\n")
