"""The GPU fidelity study (reports/fidelity/GPU.md): its profiles' design, and the same profiles and study files run
end to end at toy size on CPU (tiny BERT, the toy csv task, 2 seeds, 1 epoch)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from tiny_project import REPO, TASK, tiny_params, write_params, write_toy_csv

from flows.config.files import deep_merge, read_yaml
from flows.config.grid import lr_variants, run_params, runs
from flows.config.params import load_params
from flows.data.prepare import prepare_task, read_meta
from flows.orchestration import runner
from flows.report import study

PROFILES = {"rotten_tomatoes": "fidelity-gpu", "imdb": "fidelity-gpu-imdb"}
STUDIES = {"rotten_tomatoes": "study-gpu-rt.yaml", "imdb": "study-gpu-imdb.yaml"}
INDEPENDENT = "adamix_adapter.expert_init=independent"
ARMS = ("adapter", "adamix_adapter", INDEPENDENT)
# The keys the two profiles may differ in, by section (None: the top level); everything else is shared.
PER_TASK = {
    None: {"tasks", "data", "train", "ablations", "report"},
    "train": {"epochs", "max_length"},
    "ablations": {"tasks"},
}


def gpu_params(task: str) -> dict:
    return load_params(REPO / "params.yaml", profile=PROFILES[task])


def optimizer_steps(params: dict, train_size: int) -> int:
    train = params["train"]
    return train["epochs"] * math.ceil(train_size / train["batch_size"])


@pytest.mark.parametrize("task", list(PROFILES))
def test_each_profile_has_the_studys_shape(task: str) -> None:
    params = gpu_params(task)
    assert params["tasks"] == [task] and params["ablations"]["tasks"] == [task]
    assert len(set(params["seeds"])) == 10
    assert params["model"]["name_or_path"] == "minilm" and params["data"]["max_train_examples"] is None
    assert params["train"]["device"] == "cuda" and params["train"]["precision"] == "bf16"
    assert params["train"]["select"] == "best" and params["evaluate"]["inference_modes"] == ["merge"]
    for arm in ARMS:  # every arm, the init variant included, swept over the same rates
        rates = [v.value for v in lr_variants(params, arm)]
        assert rates == params["train"]["learning_rate"] and len(rates) == 2
    assert run_params(params, INDEPENDENT)["adamix"]["expert_init"] == "independent"
    assert params["adamix"]["expert_init"] == "identical"
    assert len(runs(params)) == 3 * 2 * 10


@pytest.mark.parametrize("task", list(PROFILES))
def test_each_task_trains_all_its_data_for_1250_to_5000_steps(task: str, tmp_path: Path) -> None:
    params = gpu_params(task)
    folder = prepare_task(task, params["datasets"], params["data"], tmp_path / task)
    sizes = read_meta(folder)["splits"]
    assert sizes["validation"] == params["data"]["validation_size"]
    assert sizes["test"] == params["data"]["test_size"]
    assert 1250 <= optimizer_steps(params, sizes["train"]) <= 5000


def test_the_two_profiles_differ_only_in_their_tasks_data_and_budget() -> None:
    files = [read_yaml(REPO / "profiles" / f"{name}.yaml") for name in PROFILES.values()]
    for section, own in PER_TASK.items():  # each profile's own keys left out, the rest must be the same
        kept = [
            {k: v for k, v in (f if section is None else f[section]).items() if k not in own} for f in files
        ]
        assert kept[0] == kept[1], section


def test_the_study_files_name_every_arm_of_their_profile() -> None:
    for task, name in STUDIES.items():
        spec = study.load_study(REPO / "reports" / "fidelity" / name)
        assert spec["task"] == task
        assert {arm["profile"] for arm in spec["arms"]} == {PROFILES[task]}
        assert sorted(arm["method"] for arm in spec["arms"]) == sorted(ARMS)
        assert len(spec["comparisons"]) == 3


def toy_project(root: Path, model_dir: Path) -> Path:
    """The RT profile with only what must shrink for a CPU test replaced; returns the project's params file."""
    root.mkdir(parents=True)
    write_toy_csv(root / "toy.csv")
    params_file = write_params(root / "params.yaml", tiny_params(root, model_dir))
    toy = {
        "model": {"name_or_path": str(model_dir)},
        "tasks": [TASK],
        "datasets": {
            TASK: {**tiny_params(root, model_dir)["datasets"][TASK], "validation_size": 8, "test_size": 8}
        },
        "seeds": [13, 21],
        "ablations": {"tasks": [TASK]},
        "train": {"epochs": 1, "device": "cpu", "precision": "fp32", "eval_batch_size": 8},
    }
    profile = deep_merge(read_yaml(REPO / "profiles" / "fidelity-gpu.yaml"), toy)
    (root / "profiles").mkdir()
    write_params(root / "profiles" / "fidelity-gpu.yaml", profile)
    return params_file


def test_the_profile_and_its_study_run_end_to_end_at_toy_size(tmp_path, tiny_model_dir, monkeypatch) -> None:
    root = tmp_path / "project"
    params_file = toy_project(root, tiny_model_dir)
    monkeypatch.setenv("ADAMIX_ROOT", str(root))
    params = load_params(params_file, profile="fidelity-gpu")
    assert len(runs(params)) == 3 * 2 * 2
    assert runner.run_all(params, track=False) == 0

    spec = yaml.safe_load((REPO / "reports" / "fidelity" / STUDIES["rotten_tomatoes"]).read_text())
    study_file = write_params(tmp_path / "study.yaml", {**spec, "task": TASK})
    out = tmp_path / "study"
    argv = [str(study_file), "--runs", str(root), "--out", str(out), "--params", str(params_file)]
    assert study.main(argv) == 0
    assert all((out / name).is_file() for name in study.OUTPUTS)
    text = (out / "study.md").read_text()
    arms = (out / "arms.csv").read_text()
    for arm in spec["arms"]:
        assert f"| {arm['name']} |" in text and arm["method"] in arms
