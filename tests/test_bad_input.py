"""Bad input stops a stage before it trains: one clear message naming the problem, exit code 2, no traceback,
and no output a later stage or DVC would take as complete. A crash in the middle of training leaves no run."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file, save_file
from tiny_project import SEED, TASK, make_project, tool_env, write_params

from flows import tracking
from flows.config import __main__ as flow_params
from flows.config import paths
from flows.config.params import load_params
from flows.orchestration import prefect_flow as pipeline
from flows.stages import evaluate, fewshot, merge, prepare, train
from flows.training import outputs
from flows.training.checkpoint import checkpoint_dir

METHOD = "adamix_adapter"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict:
    """A tiny project whose data is prepared and split, so the later stages can be run on it."""
    root = tmp_path_factory.mktemp("bad-input")
    params_file = make_project(root, tiny_model_dir)
    params = load_params(params_file, profile="")
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    return {"root": root, "file": params_file, "params": params}


@pytest.fixture
def root(project: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project, as the stages' default root (what DVC's `python -m flows.<stage>` commands get)."""
    monkeypatch.setenv("ADAMIX_ROOT", str(project["root"]))
    return project["root"]


def _variant(project: dict, tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of the project's params file with `edit` applied to its content."""
    params = copy.deepcopy(project["params"])
    edit(params)
    return write_params(tmp_path / "params.yaml", params)


_PROGRESS = re.compile(r"\d+%\|.*\| *\d+/\d+ \[")


def _fails(capsys, main: Callable[[list[str]], int], argv: list[str], *named: str) -> str:
    """main(argv) returns 2 with one `error:` line on stderr that names every string of `named`."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    # Progress bars (tqdm, redrawn with carriage returns) may precede an error raised during training.
    fragments = (part.strip() for part in re.split(r"[\r\n]", err))
    lines = [part for part in fragments if part and not _PROGRESS.search(part)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _absent(path: Path) -> None:
    """No output at `path`, and no half-written staging copy of it beside it (a resume checkpoint may be there:
    it is what a rerun continues from, and no stage takes it for the output)."""
    assert not path.exists(), path
    if path.parent.exists():
        staging = [
            p.name
            for p in path.parent.iterdir()
            if p.name.startswith(f".{path.stem}") and p.name != checkpoint_dir(path).name
        ]
        assert not staging, path


def _set(section: str, key: str, value) -> Callable[[dict], None]:
    return lambda params: params[section].__setitem__(key, value)


def _set_dataset(key: str, value) -> Callable[[dict], None]:
    return lambda params: params["datasets"][TASK].__setitem__(key, value)


def _train_argv(params_file: Path, task: str = TASK, method: str = METHOD) -> list[str]:
    return ["--task", task, "--method", method, "--seed", str(SEED), "--params", str(params_file)]


# -- params ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda p: p.__setitem__("tasks", ["toyy"]), ["unknown task 'toyy'", "did you mean 'toy'"]),
        (lambda p: p.__setitem__("methods", ["adamix"]), ["'methods'", "adamix_adapter"]),
        (lambda p: p["train"].__setitem__("epoch", 2), ["unknown key 'train.epoch'", "'train.epochs'"]),
        (lambda p: p.__setitem__("trainer", {}), ["unknown key 'trainer'"]),
        (_set("train", "batch_size", 0), ["'train.batch_size'", "0"]),
    ],
    ids=["unknown-task", "unknown-method", "unknown-key", "unknown-section", "bad-value"],
)
def test_invalid_params_stop_every_stage(project, root, tmp_path, capsys, edit, named) -> None:
    params_file = _variant(project, tmp_path, edit)
    _fails(capsys, prepare.main, ["--task", TASK, "--params", str(params_file)], str(params_file), *named)
    _fails(capsys, train.main, _train_argv(params_file), str(params_file), *named)
    _absent(paths.run_dir(TASK, METHOD, SEED, root))
    # `make params` fails too: nothing written for DVC to pick up
    out, grid = tmp_path / "resolved.yaml", tmp_path / "grid.yaml"
    argv = ["resolve", "--params", str(params_file), "--out", str(out), "--grid-out", str(grid)]
    _fails(capsys, flow_params.main, argv, *named)
    assert not out.exists() and not grid.exists()
    _fails(capsys, pipeline.main, ["run", "--params", str(params_file), "--profile", ""], *named)


def test_every_path_of_a_run_goes_through_the_name_check() -> None:
    assert paths.run_dir("rt", "adamix_adapter.lr=5e-4", 13).parts[-3:] == (
        "rt",
        "adamix_adapter.lr=5e-4",
        "seed13",
    )
    for make in (
        lambda: paths.prepared_dir("../x"),
        lambda: paths.split_dir("a/b", 1),
        lambda: paths.run_dir("rt", "../../m", 1),
        lambda: paths.merged_dir("rt", "/abs", 1),
        lambda: paths.result_path("..", "m", 1),
    ):
        with pytest.raises(paths.UnsafeNameError, match="cannot be a folder name"):
            make()


def test_unknown_task_or_method_on_the_command_line(project, root, capsys) -> None:
    params_file = str(project["file"])
    _fails(capsys, prepare.main, ["--task", "nope", "--params", params_file], "unknown task 'nope'", "toy")
    _absent(paths.prepared_dir("nope", root))
    _fails(
        capsys,
        fewshot.main,
        ["--task", "nope", "--seed", "13", "--params", params_file],
        "data/prepared/nope",
    )
    _absent(paths.split_dir("nope", SEED, root))
    _fails(capsys, train.main, _train_argv(project["file"], task="nope"), "data/splits/nope")
    _absent(paths.run_dir("nope", METHOD, SEED, root))
    for main in (train.main, merge.main, evaluate.main):
        _fails(capsys, main, _train_argv(project["file"], method="adamixx"), "unknown method 'adamixx'")
    _absent(paths.run_dir(TASK, "adamixx", SEED, root))
    _absent(paths.merged_dir(TASK, "adamixx", SEED, root))
    _absent(paths.result_path(TASK, "adamixx", SEED, root))


def test_malformed_params_yaml_names_file_and_line(project, root, tmp_path, capsys) -> None:
    params_file = tmp_path / "params.yaml"
    text = project["file"].read_text().replace("epochs: 2", "epochs: [2")
    params_file.write_text(text)
    line = _fails(capsys, train.main, _train_argv(params_file), "invalid YAML")
    assert re.search(rf"{re.escape(str(params_file))}:\d+: invalid YAML", line), line  # file and line
    _absent(paths.run_dir(TASK, METHOD, SEED, root))
    params_file.write_text("- just\n- a list\n")
    _fails(capsys, train.main, _train_argv(params_file), str(params_file), "mapping")
    params_file.write_text(project["file"].read_text() + "train: {}\n")
    _fails(capsys, train.main, _train_argv(params_file), "duplicate key 'train'")
    _fails(capsys, train.main, _train_argv(tmp_path / "missing.yaml"), "missing.yaml", "no such params file")


_ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("profile", "named"),
    [
        ("train:\n  epochs: [1\n", ["invalid YAML"]),
        ("train:\n  epoch: 1\n", ["unknown key 'train.epoch'"]),
        ("- a\n- b\n", ["mapping"]),
        ("train: 3\n", ["'train' must be a mapping"]),
        # issue 22 item 8: a 9^9-value alias bomb hung every command at 2-4 GB; 100k-deep nesting and a
        # trillion epochs gave tracebacks (RecursionError; the allocator, for a loss per step)
        (_ALIAS_BOMB, ["invalid YAML", "aliases expand to more than 100,000 values"]),
        ("train: " + "[" * 100_000 + "]" * 100_000 + "\n", ["invalid YAML", "nested too deeply"]),
        ("train:\n  epochs: 1e12\n", ["'train.epochs'", "an int from 1 to 10000"]),
    ],
    ids=["bad-yaml", "unknown-key", "not-a-mapping", "section-not-a-mapping", "alias-bomb", "deep", "epochs"],
)
def test_malformed_profile_is_named(project, root, tmp_path, capsys, profile, named) -> None:
    profile_file = tmp_path / "broken.yaml"
    profile_file.write_text(profile)
    argv = [*_train_argv(project["file"]), "--profile", str(profile_file)]
    _fails(capsys, train.main, argv, str(profile_file), *named)
    _absent(paths.run_dir(TASK, METHOD, SEED, root))


def test_unknown_profile_lists_the_available_ones(project, root, tmp_path, capsys) -> None:
    (project["root"] / "profiles").mkdir(exist_ok=True)
    (project["root"] / "profiles" / "quick.yaml").write_text("train: {epochs: 1}\n")
    argv = [*_train_argv(project["file"]), "--profile", "quik"]
    _fails(capsys, train.main, argv, "unknown profile 'quik'", "quick")
    _absent(paths.run_dir(TASK, METHOD, SEED, root))


# -- data and model --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_set_dataset("path", "/nonexistent/toy.csv"), ["/nonexistent/toy.csv"]),
        (
            _set_dataset("label_column", "sentiment"),
            ["label column 'sentiment'", "toy.csv", "columns present"],
        ),
        (_set_dataset("text_columns", ["sentence"]), ["text column 'sentence'"]),
        (_set_dataset("path", "toy.txt"), ["datasets.toy.path", "'.txt'"]),
    ],
    ids=["missing-data-file", "absent-label-column", "absent-text-column", "unsupported-file-type"],
)
def test_bad_dataset_stops_prepare(project, root, tmp_path, capsys, edit, named) -> None:
    params_file = _variant(project, tmp_path, edit)
    prepared = paths.prepared_dir(TASK, root)
    before = {p.name: p.read_bytes() for p in prepared.iterdir()}
    _fails(capsys, prepare.main, ["--task", TASK, "--params", str(params_file)], *named)
    # a previous complete output is kept as it was; nothing half-written beside it
    assert {p.name: p.read_bytes() for p in prepared.iterdir()} == before
    assert [p.name for p in prepared.parent.iterdir()] == [TASK]


def test_missing_model_path_stops_train_before_training(project, root, tmp_path, capsys) -> None:
    missing = tmp_path / "no-such-model"
    params_file = _variant(project, tmp_path, _set("model", "name_or_path", str(missing)))
    _fails(capsys, train.main, _train_argv(params_file), str(missing), "does not exist")
    _absent(paths.run_dir(TASK, METHOD, SEED, root))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    params_file = _variant(project, tmp_path, _set("model", "name_or_path", str(empty)))
    _fails(capsys, train.main, _train_argv(params_file), str(empty), "config.json")
    _absent(paths.run_dir(TASK, METHOD, SEED, root))
    params_file = _variant(project, tmp_path, _set("model", "name_or_path", "nobody/no-model"))
    _fails(capsys, train.main, _train_argv(params_file), "'nobody/no-model'", "HF_HUB_OFFLINE")


def test_max_length_beyond_the_position_embeddings_is_capped_with_a_warning(
    tmp_path, capsys, tiny_model_dir
) -> None:
    """The tiny model has 40 positions; max_length 512 with long texts used to crash in the embedding lookup."""
    root = tmp_path / "long"
    params_file = make_project(root, tiny_model_dir, train={"max_length": 512})
    toy = root / "toy.csv"  # every text repeated 12 times: far past 40 tokens
    rows = toy.read_text().splitlines()
    toy.write_text(
        "\n".join(
            [rows[0], *(f"{' '.join([r.rsplit(',', 1)[0]] * 12)},{r.rsplit(',', 1)[1]}" for r in rows[1:])]
        )
        + "\n"
    )
    params = load_params(params_file, profile="")
    prepare.prepare(params, TASK, root=root)
    fewshot.split_for_seed(params, TASK, SEED, root=root)
    capsys.readouterr()
    info = train.train_run(params, TASK, METHOD, SEED, root=root, track=False)
    assert info["epochs"] == params["train"]["epochs"]
    assert (
        "warning: train.max_length 512 exceeds the 40 positions of the model (bert); using 40"
        in capsys.readouterr().err
    )
    merge.merge_run(params, TASK, METHOD, SEED, root=root)
    evaluate.evaluate_run(params, TASK, METHOD, SEED, root=root, track=False)


# -- the catalogue: bad input found by trying the pipeline as a user would (issue 13), one case per row --------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _model_copy(project: dict, tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of the tiny model folder with `edit` applied, and params pointing at it."""
    model_dir = tmp_path / "model"
    shutil.copytree(project["params"]["model"]["name_or_path"], model_dir)
    edit(model_dir)
    return _variant(project, tmp_path, _set("model", "name_or_path", str(model_dir)))


def _edit_config(**changes) -> Callable[[Path], None]:
    def edit(model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        config.update(changes)
        (model_dir / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))

    return edit


def _renamed_dataset(name: str) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        params["datasets"] = {name: params["datasets"][TASK]}
        params["tasks"] = [name]

    return edit


def _nan_labels(project: dict, tmp_path: Path) -> Path:
    rows = (project["root"] / "toy.csv").read_text().splitlines()
    rows[1], rows[4] = rows[1].rsplit(",", 1)[0] + ",NaN", rows[4].rsplit(",", 1)[0] + ",nan"
    (tmp_path / "nan.csv").write_text("\n".join(rows) + "\n")
    return _variant(project, tmp_path, _set_dataset("path", str(tmp_path / "nan.csv")))


def _damaged_artifact(damage: str) -> Callable[[dict, Path], Path]:
    def setup(project: dict, tmp_path: Path) -> Path:
        train.train_run(project["params"], TASK, METHOD, SEED, track=False)
        weights = paths.run_dir(TASK, METHOD, SEED, project["root"]) / "adapter" / "adapter_model.safetensors"
        if damage == "truncated":
            _truncate(weights)
        else:
            tensors = load_file(weights)
            name = next(n for n, t in tensors.items() if t.dim() == 3)
            tensors[name] = torch.zeros(tensors[name].shape[0], 3, 5)
            save_file(tensors, weights)
        return project["file"]

    return setup


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the stage it stops, what the one error line names, what must not exist."""

    id: str
    problem: str  # what went wrong before
    setup: Callable[[dict, Path], Path]  # (project, tmp_path) -> the params file to run with
    stage: str  # prepare | train | merge
    named: tuple[str, ...]
    task: str = TASK


CATALOGUE = [
    Case("dataset-name-escapes", "prepare wrote its splits outside the project",
         lambda p, t: _variant(p, t, _renamed_dataset("../../../tmp/adamix-escape")), "prepare",
         ("'datasets'", "dataset name '../../../tmp/adamix-escape'", "folder name"), "../../../tmp/adamix-escape"),
    Case("dataset-name-nests", "a name with '/' made nested folders",
         lambda p, t: _variant(p, t, _renamed_dataset("a/b")), "prepare", ("dataset name 'a/b'",), "a/b"),
    Case("dataset-name-hidden", "a name starting with '.' made a hidden folder",
         lambda p, t: _variant(p, t, _renamed_dataset(".hidden")), "prepare", ("dataset name '.hidden'",), ".hidden"),
    Case("nan-labels", "'NaN' and 'nan' labels became a class", _nan_labels, "prepare",
         ("2 missing label(s)", "row(s) 1, 4", "column 'label'")),
    Case("config-more-layers", "4 layers in config.json over 2 layers of weights trained 2 random layers",
         lambda p, t: _model_copy(p, t, _edit_config(num_hidden_layers=4)), "train",
         ("missing bert.encoder.layer.2", "do not match its config")),
    Case("config-fewer-layers", "1 layer in config.json dropped the second layer's weights silently",
         lambda p, t: _model_copy(p, t, _edit_config(num_hidden_layers=1)), "train",
         ("unexpected bert.encoder.layer.1", "do not match its config")),
    Case("config-without-model_type", "a traceback", lambda p, t: _model_copy(p, t, _edit_config(model_type=None)),
         "train", ("cannot be loaded",)),
    Case("truncated-base-weights", "a traceback", lambda p, t: _model_copy(p, t, lambda d: _truncate(d / "model.safetensors")),
         "train", ("cannot be loaded",)),
    Case("nan-loss", "trained on, saved NaN weights, reported 50% as a score",
         lambda p, t: _variant(p, t, _set("train", "learning_rate", 1.0e30)), "train",
         ("non-finite loss or gradient norm", "nothing was saved", "learning rate 1e+30")),
    Case("huge-bottleneck", "allocated until memory ran out", lambda p, t: _variant(p, t, _set("adamix", "bottleneck", 10**6)),
         "train", ("x bottleneck 1000000 would add about", "more than 10x the model's")),
    Case("huge-mixture", "allocated until memory ran out", lambda p, t: _variant(p, t, _set("adamix", "num_experts", 10**5)),
         "train", ("num_experts 100000 x bottleneck 4 would add about", "lower num_experts or bottleneck")),
    Case("truncated-artifact", "a traceback in merge", _damaged_artifact("truncated"), "merge",
         ("cannot load the trained run", "runs/toy/adamix_adapter/seed13")),
    Case("wrong-shape-artifact", "a traceback in merge", _damaged_artifact("wrong-shape"), "merge",
         ("cannot load the trained run", "runs/toy/adamix_adapter/seed13")),
]  # fmt: skip


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.id for case in CATALOGUE])
def test_catalogue_of_bad_inputs(project, root, tmp_path, capsys, case: Case) -> None:
    """Every case: exit code 2, one `error:` line naming the problem, no traceback, and no output left behind."""
    client = MlflowClient(tracking.tracking_uri())
    client.search_experiments()  # a fresh store logs its creation: not part of the stage's output
    shutil.rmtree(paths.run_dir(TASK, METHOD, SEED, root), ignore_errors=True)  # left by earlier tests
    params_file = case.setup(project, tmp_path)
    try:
        if case.stage == "prepare":
            _fails(capsys, prepare.main, ["--task", case.task, "--params", str(params_file)], *case.named)
            assert not Path("/tmp/adamix-escape").exists()
            assert sorted(p.name for p in paths.prepared_dir(TASK, root).parent.iterdir()) == [TASK]
        elif case.stage == "train":
            _fails(capsys, train.main, _train_argv(params_file), *case.named)
            _absent(paths.run_dir(TASK, METHOD, SEED, root))
            assert not checkpoint_dir(paths.run_dir(TASK, METHOD, SEED, root)).exists()
        else:
            _fails(capsys, merge.main, _train_argv(params_file), *case.named)
            _absent(paths.merged_dir(TASK, METHOD, SEED, root))
            # evaluate then names the merged output it needs, and writes no result
            _fails(
                capsys,
                evaluate.main,
                _train_argv(params_file),
                str(paths.merged_dir(TASK, METHOD, SEED, root)),
            )
            _absent(paths.result_path(TASK, METHOD, SEED, root))
    finally:
        shutil.rmtree(paths.run_dir(TASK, METHOD, SEED, root), ignore_errors=True)  # the project is shared


def test_later_stages_name_the_missing_input(project, root, capsys) -> None:
    """Merge and evaluate without a trained run (or without a merge) name what is missing and write nothing."""
    argv = _train_argv(project["file"], method="full")
    _fails(capsys, merge.main, argv, str(paths.run_dir(TASK, "full", SEED, root)))
    _absent(paths.merged_dir(TASK, "full", SEED, root))
    _fails(capsys, evaluate.main, argv, str(paths.merged_dir(TASK, "full", SEED, root)))
    _absent(paths.result_path(TASK, "full", SEED, root))


def test_command_line_process_exits_2_without_traceback(project, tmp_path) -> None:
    """The real process: exit status 2 and one line on stderr (what DVC and make show)."""
    params_file = _variant(project, tmp_path, _set_dataset("label_column", "sentiment"))
    done = subprocess.run(
        [sys.executable, "-m", "flows.stages.prepare", "--task", TASK, "--params", str(params_file)],
        cwd=paths.ROOT,
        env=tool_env(project["root"]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: ") and "label column 'sentiment'" in done.stderr


# -- failures after the checks ---------------------------------------------------------------------------


def test_crash_during_training_leaves_no_run_and_keeps_the_previous_one(
    project, root, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = project["params"]
    client = MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment(tracking.experiment_id(params))  # created if this test runs alone
    train_runs = "tags.`adamix.stage` = 'train'"
    earlier = {
        r.info.run_id for r in client.search_runs([experiment.experiment_id], filter_string=train_runs)
    }
    folder = paths.run_dir(TASK, "adapter", SEED, root)
    train.train_run(params, TASK, "adapter", SEED, track=False)
    complete = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def boom(self, *args, **kwargs):
        raise RuntimeError("optimizer exploded")

    monkeypatch.setattr(torch.optim.AdamW, "step", boom)
    for method in ("adapter", METHOD):
        with pytest.raises(RuntimeError, match="optimizer exploded"):
            train.train_run(params, TASK, method, SEED)
    _absent(paths.run_dir(TASK, METHOD, SEED, root))
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == complete
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    # the MLflow child runs of both attempts are marked FAILED
    runs = client.search_runs([experiment.experiment_id], filter_string=train_runs)
    assert sorted(r.info.status for r in runs if r.info.run_id not in earlier) == ["FAILED", "FAILED"]


@pytest.mark.parametrize("method", ["adapter", METHOD])
def test_a_non_finite_loss_stops_training_with_one_line_and_no_run(
    project, root, tmp_path, capsys, method
) -> None:
    """learning_rate 1e30 blows up within a few steps: exit 2 naming run, epoch, step and cause; nothing saved,
    and the MLflow run is FAILED (it used to train on, save NaN weights and report 50% as a score)."""
    import shutil

    shutil.rmtree(paths.run_dir(TASK, method, SEED, root), ignore_errors=True)  # left by earlier tests
    params_file = _variant(project, tmp_path, _set("train", "learning_rate", 1.0e30))
    client = MlflowClient(tracking.tracking_uri())
    client.search_experiments()  # a fresh store logs its creation: not part of the stage's output
    line = _fails(
        capsys,
        train.main,
        _train_argv(params_file, method=method),
        f"{TASK}/{method}/seed{SEED}",
        "non-finite",
    )
    assert re.search(r"at epoch \d+, by step \d+; nothing was saved", line) and "learning rate 1e+30" in line
    _absent(paths.run_dir(TASK, method, SEED, root))
    experiment = client.get_experiment_by_name(project["params"]["tracking"]["experiment"])
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`adamix.stage` = 'train' and tags.`adamix.method` = '{method}'",
        max_results=1,
    )
    assert runs and runs[0].info.status == "FAILED"


def test_bf16_autocast_trains_without_a_false_non_finite_alarm(project, root) -> None:
    params = copy.deepcopy(project["params"])
    params["train"]["precision"] = "bf16"
    info = train.train_run(params, TASK, METHOD, SEED, track=False)
    assert info["epochs"] == params["train"]["epochs"]


def test_crash_while_saving_the_run_leaves_nothing(project, root, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "save_run_model", boom)
    with pytest.raises(OSError, match="disk full"):
        train.train_run(project["params"], TASK, "lora", SEED, track=False)
    _absent(paths.run_dir(TASK, "lora", SEED, root))


def test_crash_during_evaluate_or_merge_leaves_no_result(
    project, root, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = project["params"]
    train.train_run(params, TASK, "adamix_lora", SEED, track=False)
    with monkeypatch.context() as patch:
        patch.setattr(
            merge.adamix, "save_adamix", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
        )
        with pytest.raises(OSError, match="disk full"):
            merge.merge_run(params, TASK, "adamix_lora", SEED)
    _absent(paths.merged_dir(TASK, "adamix_lora", SEED, root))
    merge.merge_run(params, TASK, "adamix_lora", SEED)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second inference mode fails
            raise RuntimeError("evaluation crashed")
        return {"accuracy": 0.5}, [0] * len(args[1])

    monkeypatch.setattr(evaluate, "predict_and_score", flaky)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        evaluate.evaluate_run(params, TASK, "adamix_lora", SEED, track=False)
    _absent(paths.result_path(TASK, "adamix_lora", SEED, root))
    assert not paths.results_dir(root).exists() or not list(paths.results_dir(root).rglob("*.json"))
