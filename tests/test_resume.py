"""Resume after a crash: a training run killed with SIGKILL mid-epoch resumes from its last checkpoint and ends
with a run folder byte-identical to an uninterrupted run's, in the same MLflow run; other params are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from mlflow import MlflowClient
from tiny_project import SEED, TASK, make_project, tool_env

from flows import tracking
from flows.config import paths
from flows.config.params import load_params
from flows.stages import fewshot, prepare
from flows.training.checkpoint import checkpoint_dir

METHOD = "adamix_adapter"  # random routing and dropout: the RNG states must come back too
# Runs the train stage, but SIGKILLs itself just before optimizer step KILL_AT (a real crash: no cleanup runs).
_KILLED = """
import os, signal, sys, torch
from flows.stages import train
calls, step = [0], torch.optim.AdamW.step
def dying_step(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, *args, **kwargs)
torch.optim.AdamW.step = dying_step
sys.exit(train.main(sys.argv[1:]))
"""


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _train(root: Path, argv: list[str], kill_at: int | None = None) -> subprocess.CompletedProcess:
    code = ["-c", _KILLED.format(kill_at=kill_at)] if kill_at else ["-m", "flows.stages.train"]
    return subprocess.run(
        [sys.executable, *code, *argv],
        cwd=root,
        env=tool_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_killed_run_resumes_to_the_same_bytes(tmp_path: Path, tiny_model_dir: Path) -> None:
    # 24 examples in batches of 4: 6 steps an epoch, 18 in all; checkpoints after steps 2, 4, 6 (epoch end), 8, ...
    train_cfg = {"epochs": 3, "batch_size": 4, "checkpoint_every": 2, "select": "best"}
    params_file = make_project(tmp_path, tiny_model_dir, train=train_cfg)
    params = load_params(params_file, profile="")
    prepare.prepare(params, TASK, root=tmp_path)
    fewshot.split_for_seed(params, TASK, SEED, root=tmp_path)
    argv = ["--task", TASK, "--method", METHOD, "--seed", str(SEED), "--params", str(params_file)]
    run_dir = paths.run_dir(TASK, METHOD, SEED, tmp_path)
    ckpt = checkpoint_dir(run_dir)

    assert _train(tmp_path, argv).returncode == 0  # uninterrupted
    expected = _files(run_dir)
    run_dir.rename(tmp_path / "uninterrupted")
    assert not ckpt.exists()  # removed once the run was complete

    killed = _train(tmp_path, argv, kill_at=9)  # mid-epoch 2; the last checkpoint is after step 8
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert ckpt.is_dir() and not run_dir.exists()

    # a checkpoint from other params is refused, and left alone
    other = yaml.safe_load(params_file.read_text())
    other["train"]["learning_rate"] = 1.0e-3
    other_file = tmp_path / "other.yaml"
    other_file.write_text(yaml.safe_dump(other))
    refused = _train(tmp_path, [*argv[:-1], str(other_file)])
    assert (
        refused.returncode == 2
        and "was written for other params" in refused.stderr
        and str(ckpt) in refused.stderr
    )
    assert ckpt.is_dir() and not run_dir.exists()

    resumed = _train(tmp_path, argv)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {ckpt} at step 8 of 18" in resumed.stdout
    assert _files(run_dir) == expected  # weights, history, selection and losses: bit-identical
    assert not ckpt.exists()

    # the killed run and its resumption are one MLflow run, FINISHED; the uninterrupted run is another
    client = MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`adamix.stage` = 'train'")
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
    assert os.environ.get("MLFLOW_TRACKING_URI")  # the suite's temporary store (conftest)
