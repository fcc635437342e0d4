"""The same run, trained twice in two processes, gives byte-identical run folders, so DVC sees no change.

Two things used to differ: wall-clock seconds in run.json / history.json (now in timings/, outside every DVC
output) and the safetensors metadata order of AdaMix artifacts (now sorted; tests/test_serialization.py).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from tiny_project import SEED, TASK, make_project, run_tool

from flows.config import paths
from flows.config.params import load_params
from flows.stages import fewshot, prepare


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
