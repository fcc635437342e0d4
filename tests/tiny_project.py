"""A tiny pipeline project in a folder: a tiny saved BERT, a csv task, params.yaml, and (optionally) DVC.

Stages read and write under the project when given ``root=`` or when ``ADAMIX_ROOT`` names it. Training one
run takes a fraction of a second: 24 training examples, batches of 8, 2 epochs.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from flows.config.files import deep_merge
from flows.config.params import load_params
from flows.config.schema import DEFAULTS

REPO = Path(__file__).resolve().parents[1]
TASK = "toy"
SEED = 13
POSITIVE = ["good", "great", "fine", "nice", "superb", "fun"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "weak"]
WORDS = [*POSITIVE, *NEGATIVE, "the", "a", "movie", "film", "plot", "was", "is", "very", "quite"]
ADAMIX = ("adamix_adapter", "adamix_lora")


def write_toy_csv(path: Path, rows: int = 40, label_column: str = "label") -> Path:
    """A balanced two-class sentiment csv (`text`, `label_column`) with distinct texts, the same every time."""
    rng = random.Random(0)
    lines = [f"text,{label_column}"]
    for i in range(rows):
        positive = i % 2 == 0
        pool = POSITIVE if positive else NEGATIVE
        text = f"the {rng.choice(['movie', 'film', 'plot'])} was {rng.choice(['very', 'quite'])} " + " ".join(
            rng.sample(pool, 2) + [str(i)]
        )
        lines.append(f"{text},{'pos' if positive else 'neg'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_params(root: Path, model_dir: Path, methods=ADAMIX[:1], seeds=(SEED,), **sections: Any) -> dict:
    """Full params (every key, as params.yaml has) for the tiny project; `sections` are merged over them."""
    base = {
        "model": {"name_or_path": str(model_dir)},
        "tasks": [TASK],
        "datasets": {
            TASK: {
                "path": str(root / "toy.csv"),
                "text_columns": ["text"],
                "label_column": "label",
                "metric": "accuracy",
            }
        },
        "methods": list(methods),
        "seeds": list(seeds),
        "data": {"max_train_examples": 24, "max_eval_examples": 8, "validation_size": 8, "test_size": 8},
        "train": {"epochs": 2, "batch_size": 8, "eval_batch_size": 8, "max_length": 16, "device": "cpu"},
        "adamix": {"num_experts": 2, "bottleneck": 4},
        "method_overrides": {
            "adamix_lora": {"adamix": {"bottleneck": 2}},
            "lora": {"adamix": {"bottleneck": 2}},
        },
        "tracking": {"experiment": f"tiny-{uuid.uuid4().hex[:10]}"},
    }
    merged = deep_merge(DEFAULTS, base)
    # Both adapter methods train at `train.learning_rate` here (params.yaml gives the adapter a rate of its own),
    # so that a test setting that rate sets it for every method but LoRA and full.
    merged["method_overrides"].pop("adapter", None)
    return deep_merge(merged, sections)


def make_project(root: Path, model_dir: Path, **kwargs: Any) -> Path:
    """Write toy.csv and params.yaml into `root` (created); returns the params file."""
    root.mkdir(parents=True, exist_ok=True)
    write_toy_csv(root / "toy.csv")
    params = tiny_params(root, model_dir, **kwargs)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    load_params(path, profile="")  # a test project must be valid
    return path


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def add_dvc(root: Path) -> None:
    """Make `root` a git + DVC repository with the pipeline's dvc.yaml and the code its stages depend on."""
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("adamix", "flows"):
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    env = tool_env(root)
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "--local", "core.site_cache_dir", str(root.parent / f"{root.name}-dvc-site")],
    ):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True, text=True)


def tool_env(root: Path) -> dict[str, str]:
    """The environment for pipeline commands in `root`: the venv's tools first, stages writing under `root`."""
    env = {**os.environ, "ADAMIX_ROOT": str(root), "PYTHONPATH": str(root)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("ADAMIX_PIPELINE_RUN", None)
    env.pop("PROFILE", None)
    return env


def run_tool(root: Path, *command: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command in `root`; a failure shows its output."""
    done = subprocess.run(
        command, cwd=root, env=tool_env(root), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    return done


def run_prefect_flow(root: Path, model_dir: Path, methods, **flow: Any) -> dict:
    """One Prefect flow run of the tiny project in a fresh DVC project at `root`, with params `flow` settings.

    Returns the project `root`, its `params`, the pipeline run `key`, the flow's return value `out` and the
    task `runner` it ran under. Needs a Prefect server (the `prefect_harness` fixture).
    """
    from flows.orchestration import prefect_flow as pipeline

    params_file = make_project(root, model_dir, methods=methods, flow=flow)
    add_dvc(root)
    params = load_params(params_file, profile="")
    key = f"{params['flow']['task_runner']}-test-{uuid.uuid4().hex[:8]}"
    env = {"ADAMIX_ROOT": str(root), "ADAMIX_PIPELINE_RUN": key}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # before the runner starts its workers: they inherit the root and the pipeline run
    try:
        runner = pipeline.task_runner(params)
        out = pipeline.reproduce.with_options(task_runner=runner)(profile="", params_path=str(params_file))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {"root": root, "params": params, "key": key, "out": out, "runner": runner}
