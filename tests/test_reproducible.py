"""The same run, trained twice in two processes, gives byte-identical run folders, so DVC sees no change; and a
tiny run's numbers are those of a committed golden file, so a refactor of the loop cannot change them.

Two things used to differ: wall-clock seconds in run.json / history.json (now in timings/, outside every DVC
output) and the safetensors metadata order of AdaMix artifacts (now sorted; tests/test_serialization.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from tiny_project import SEED, TASK, make_project, run_tool

from flows.config import paths
from flows.config.params import load_params
from flows.stages import fewshot, prepare, train

# run.json and history.json (bytes) and the weights' sha256 of two tiny runs, written with the train stage as it
# was before flows/training (commit 07a403e): select best, checkpoints every 2 steps, 3 epochs of 6 steps.
# ADAMIX_WRITE_GOLDEN=1 rewrites it: only for a change that is meant to change the numbers, said so.
GOLDEN = Path(__file__).parent / "fixtures" / "golden_tiny_runs.json"
GOLDEN_TRAIN = {
    "epochs": 3,
    "batch_size": 4,
    "checkpoint_every": 2,
    "select": "best",
    "learning_rate": 5.0e-2,
}
GOLDEN_METHODS = ("adamix_adapter", "lora")  # two views + consistency with random routing; one forward


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("method", ["adamix_adapter"])
def test_a_retrain_in_another_process_gives_the_same_bytes(
    tmp_path: Path, tiny_model_dir: Path, method
) -> None:
    params_file = make_project(tmp_path, tiny_model_dir)
    params = load_params(params_file, profile="")
    prepare.prepare(params, TASK, root=tmp_path)
    fewshot.split_for_seed(params, TASK, SEED, root=tmp_path)
    argv = ["--task", TASK, "--method", method, "--seed", str(SEED), "--params", str(params_file)]
    folders = []
    for attempt in range(2):
        run_tool(tmp_path, sys.executable, "-m", "flows.stages.train", *argv)
        folder = paths.run_dir(TASK, method, SEED, tmp_path)
        folders.append(folder.rename(tmp_path / f"attempt{attempt}"))
    first, second = (_files(f) for f in folders)
    assert sorted(first) == sorted(second) and "run.json" in first and "history.json" in first
    assert first == second
    # the timings are kept, outside the run folder
    timing = json.loads(paths.timing_path(TASK, method, SEED, tmp_path).read_text())
    assert timing["seconds"] > 0 and len(timing["epoch_seconds"]) == params["train"]["epochs"]
    assert "seconds" not in json.loads(first["run.json"]) and all(
        "seconds" not in h for h in json.loads(first["history.json"])
    )
    shutil.rmtree(tmp_path / "attempt0")


def _golden_files(folder: Path) -> dict[str, str]:
    """What the golden file holds of a run folder: run.json, history.json, and the weights' sha256 (the
    adapter config is left out: it names the base model's temporary path)."""
    weights = folder / "adapter" / "adapter_model.safetensors"
    return {
        "run.json": (folder / "run.json").read_text(encoding="utf-8"),
        "history.json": (folder / "history.json").read_text(encoding="utf-8"),
        "adapter/adapter_model.safetensors": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }


def test_tiny_runs_match_the_golden_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    params = load_params(
        make_project(tmp_path, tiny_model_dir, methods=GOLDEN_METHODS, train=GOLDEN_TRAIN), ""
    )
    prepare.prepare(params, TASK, root=tmp_path)
    fewshot.split_for_seed(params, TASK, SEED, root=tmp_path)
    got = {}
    for method in GOLDEN_METHODS:
        train.train_run(params, TASK, method, SEED, root=tmp_path, track=False)
        got[method] = _golden_files(paths.run_dir(TASK, method, SEED, tmp_path))
    if os.environ.get("ADAMIX_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for method in GOLDEN_METHODS:
        for name, expected in golden[method].items():
            assert got[method][name] == expected, f"{method}: {name} differs from {GOLDEN.name}"
