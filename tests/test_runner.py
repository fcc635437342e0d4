"""The plain-process runner (flows.orchestration.runner): every run of the grid, then the report; --resume."""

from __future__ import annotations

import json

import pytest
from tiny_project import SEED, TASK, make_project

from flows.config import paths
from flows.config.params import load_params
from flows.orchestration import runner


@pytest.fixture()
def project(tmp_path, tiny_model_dir, monkeypatch):
    root = tmp_path / "project"
    params_file = make_project(root, tiny_model_dir, methods=("lora",), seeds=(SEED, 21))
    monkeypatch.setenv("ADAMIX_ROOT", str(root))
    return root, load_params(params_file, profile="")


def test_the_runner_trains_the_grid_and_resume_trains_only_the_missing_runs(project, monkeypatch) -> None:
    root, params = project
    assert runner.run_all(params, track=False) == 0
    runs = [(TASK, "lora", s) for s in (SEED, 21)]
    assert all(paths.result_path(*run, root).is_file() for run in runs)
    assert (paths.reports_dir(params=params) / "results.md").is_file()

    kept = paths.result_path(TASK, "lora", SEED, root)
    before = kept.read_bytes()
    missing = paths.result_path(TASK, "lora", 21, root)
    missing.unlink()
    trained = []
    real = runner._one_run

    def spy(params, task, method, seed, track, workers):
        trained.append((task, method, seed))
        return real(params, task, method, seed, track, workers)

    monkeypatch.setattr(runner, "_one_run", spy)
    assert runner.run_all(params, track=False, resume=True) == 0
    assert trained == [(TASK, "lora", 21)]  # only the run without a result
    assert kept.read_bytes() == before and json.loads(missing.read_text())["seed"] == 21


def test_the_command_line_takes_resume(project, monkeypatch) -> None:
    root, _ = project
    seen = {}

    def fake(params, **kwargs):
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(runner, "run_all", fake)
    assert runner.main(["--params", str(root / "params.yaml"), "--resume", "--no-track"]) == 0
    assert seen["resume"] is True and seen["track"] is False


def test_runs_go_seed_by_seed_so_a_stopped_sweep_has_every_arm_at_the_same_seeds() -> None:
    grid = [("t", m, s) for m in ("a.lr=1", "a.lr=2", "b") for s in (13, 21, 42)]
    assert runner.seed_major(grid) == [("t", m, s) for s in (13, 21, 42) for m in ("a.lr=1", "a.lr=2", "b")]
