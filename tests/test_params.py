"""Tests for flows.config (params): params.yaml and profiles, validation messages, per-method params, the resolved file."""

from __future__ import annotations

import copy
import math
import types
from pathlib import Path

import pytest
import yaml

from flows.config import __main__ as P
from flows.config import fields, json_schema
from flows.config.files import deep_merge, read_yaml
from flows.config.grid import run_params
from flows.config.params import ParamsError, load_params, resolve_to_file, validate
from flows.config.schema import DEFAULTS, SECTIONS, Params, check_field

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ["imdb", "mnli", "rotten_tomatoes", "sst2"]


@pytest.fixture(autouse=True)
def fake_data_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """flows.data stand-in: these tests check flows.params alone, whatever state flows.data is in."""

    def validate_dataset_cfg(name: str, cfg: dict) -> None:
        if not isinstance(cfg, dict) or "path" not in cfg:
            raise ValueError("missing required key 'path'")

    fake = types.ModuleType("flows.data")
    fake.builtin_task_names = lambda: list(BUILTIN)
    fake.validate_dataset_cfg = validate_dataset_cfg
    monkeypatch.setattr("flows.config.params.data", fake)
    monkeypatch.delenv("PROFILE", raising=False)


@pytest.fixture
def params() -> dict:
    return copy.deepcopy(DEFAULTS)


def _error(params: dict) -> str:
    with pytest.raises(ParamsError) as err:
        validate(params)
    return str(err.value)


def _project(tmp_path: Path, base: dict | str, profiles: dict[str, str] | None = None) -> Path:
    """A params.yaml (and profiles/) in tmp_path; returns the params file."""
    path = tmp_path / "params.yaml"
    path.write_text(base if isinstance(base, str) else yaml.safe_dump(base))
    for name, text in (profiles or {}).items():
        (tmp_path / "profiles").mkdir(exist_ok=True)
        (tmp_path / "profiles" / f"{name}.yaml").write_text(text)
    return path


def test_params_yaml_matches_defaults_and_smoke_profile_is_valid() -> None:
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == DEFAULTS
    assert load_params(ROOT / "params.yaml", profile="") == DEFAULTS
    smoke = load_params(ROOT / "params.yaml", profile="smoke")
    assert smoke["train"]["epochs"] == 1 and smoke["seeds"] == [13]
    assert smoke["data"]["max_train_examples"] <= 200 and smoke["train"]["max_length"] <= 32
    assert smoke["train"]["learning_rate"] == DEFAULTS["train"]["learning_rate"]  # untouched keys kept


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    override = {"a": {"y": [3]}, "c": {"z": 1}}
    merged = deep_merge(base, override)
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1, "c": {"z": 1}}
    merged["a"]["x"] = 99
    merged["c"]["z"] = 99
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1} and override == {"a": {"y": [3]}, "c": {"z": 1}}


def test_unknown_keys_suggest_the_closest(params: dict) -> None:
    params["train"]["epoch"] = 3
    assert _error(params) == "unknown key 'train.epoch' (did you mean 'train.epochs'?)"
    params = copy.deepcopy(DEFAULTS) | {"tracker": {}}
    assert _error(params) == "unknown key 'tracker' (did you mean 'tracking'?)"
    params = copy.deepcopy(DEFAULTS)
    params["flow"]["zzz"] = 1
    assert (
        "unknown key 'flow.zzz' (known keys: task_runner, max_workers, address, cron, deployment)"
        in _error(params)
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("train", "epochs", 0, "'train.epochs' must be an int from 1 to 10000, got 0"),
        ("train", "epochs", True, "'train.epochs' must be an int from 1 to 10000, got True"),
        ("train", "learning_rate", 0, "'train.learning_rate' must be a number > 0"),
        ("train", "learning_rate", "1e-4x", "'train.learning_rate' must be a number > 0"),
        ("train", "warmup_ratio", 1.0, "'train.warmup_ratio' must be a number >= 0 and < 1"),
        ("train", "consistency_weight", -1, "'train.consistency_weight' must be a number >= 0"),
        ("train", "device", "gpu", "'train.device' must be one of auto, cpu, cuda, mps, got 'gpu'"),
        ("train", "precision", "fp8", "'train.precision' must be one of auto, fp32, bf16, fp16"),
        ("train", "two_view", "both", "'train.two_view' must be one of batched, sequential"),
        ("train", "compile", "yes", "'train.compile' must be true or false"),
        ("adamix", "share", "both", "'adamix.share' must be one of up, down, none"),
        ("adamix", "inference", "avg", "'adamix.inference' must be one of merge, random, fixed"),
        ("adamix", "placement", "attn", "'adamix.placement' must be one of ffn, houlsby"),
        ("adamix", "num_experts", 0, "'adamix.num_experts' must be an int >= 1"),
        ("adamix", "bottleneck", 2.5, "'adamix.bottleneck' must be an int >= 1"),
        (
            "adamix",
            "target_modules",
            [],
            "'adamix.target_modules' must be null, a regex string, or a non-empty",
        ),
        (
            "evaluate",
            "inference_modes",
            ["merge", "avg"],
            "'evaluate.inference_modes' must be a non-empty list",
        ),
        ("flow", "task_runner", "celery", "'flow.task_runner' must be one of thread, dask, ray"),
        ("flow", "cron", "weekly", "'flow.cron' must be a 5-field cron expression"),
        ("report", "decimals", 9, "'report.decimals' must be an int from 0 to 6"),
        ("model", "revision", 3, "'model.revision' must be null or a non-empty string, got 3"),
        ("data", "fewshot_dir", "", "'data.fewshot_dir' must be null or a non-empty string"),
    ],
)
def test_bad_values_name_the_key(params: dict, section: str, key: str, value: object, expected: str) -> None:
    params[section][key] = value
    assert expected in _error(params)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "methods",
            ["adamix_adapter", "prefix"],
            "'methods' must be a non-empty list of unique methods from",
        ),
        ("methods", [], "'methods' must be a non-empty list"),
        ("seeds", [13, 13], "'seeds' must be a non-empty list of unique int seeds, got [13, 13]"),
        ("seeds", [], "'seeds' must be a non-empty list"),
        ("tasks", ["sst2", "sst2"], "'tasks' must be a non-empty list of unique task names"),
        ("train", [], "'train' must be a mapping, got []"),
        ("datasets", [], "'datasets' must be a mapping"),
    ],
)
def test_bad_top_level_values(params: dict, key: str, value: object, expected: str) -> None:
    params[key] = value
    assert expected in _error(params)


def test_missing_key(params: dict) -> None:
    del params["data"]["split_seed"]
    assert _error(params) == "missing key 'data.split_seed'"


def test_tasks_must_be_builtin_or_user_datasets(params: dict) -> None:
    params["tasks"] = ["rotten_tomatoes", "sst"]
    message = _error(params)
    assert "unknown task 'sst' in 'tasks[1]' (did you mean 'sst2'?" in message and "imdb, mnli" in message
    params["tasks"] = ["my_reviews"]
    params["datasets"] = {"my_reviews": {"path": "reviews.csv"}}
    validate(params)
    params["datasets"] = {"my_reviews": {"file": "reviews.csv"}}
    assert _error(params) == "'datasets.my_reviews': missing required key 'path'"


def test_method_overrides_are_checked(params: dict) -> None:
    cases = [
        ({"lorra": {"train": {"epochs": 1}}}, "unknown key 'method_overrides.lorra' (did you mean"),
        (
            {"lora": {"data": {"test_size": 1}}},
            "unknown key 'method_overrides.lora.data' (known keys: train,",
        ),
        ({"lora": {"adamix": {"bottlenek": 4}}}, "(did you mean 'method_overrides.lora.adamix.bottleneck'?)"),
        (
            {"full": {"train": {"learning_rate": -1}}},
            "'method_overrides.full.train.learning_rate' must be a number",
        ),
        (
            {"full": {"adamix": {"num_experts": 2, "fixed_expert": 3}}},
            "must be < 'adamix.num_experts' (2) (with",
        ),
        (
            {"full": {"evaluate": {"inference_modes": ["random"]}}},
            "'report.primary_mode' (merge) must be one of",
        ),
        ({"full": 3}, "'method_overrides.full' must be a mapping of sections"),
    ]
    for overrides, expected in cases:
        broken = copy.deepcopy(params)
        broken["method_overrides"] = overrides
        assert expected in _error(broken), overrides


def test_cross_key_checks(params: dict) -> None:
    params["adamix"]["fixed_expert"] = 4
    assert _error(params) == "'adamix.fixed_expert' (4) must be < 'adamix.num_experts' (4)"
    params = copy.deepcopy(DEFAULTS)
    params["evaluate"]["inference_modes"] = ["random", "fixed"]
    assert "'report.primary_mode' (merge) must be one of 'evaluate.inference_modes'" in _error(params)


def test_run_params_applies_one_methods_overrides(params: dict) -> None:
    full = run_params(params, "full")
    assert full["train"]["learning_rate"] == 1.0e-4 and full["adamix"]["bottleneck"] == 16
    assert full["method_overrides"] == {"full": {"train": {"learning_rate": 1.0e-4}}}
    assert run_params(params, "adamix_lora")["adamix"]["bottleneck"] == 4
    adamix_adapter = run_params(params, "adamix_adapter")
    assert adamix_adapter["method_overrides"] == {} and adamix_adapter["train"] == params["train"]
    assert run_params(params, "adapter")["train"]["learning_rate"] == 1.0e-2
    validate(full)  # still a complete, valid params dict
    assert params == DEFAULTS  # input untouched
    with pytest.raises(ParamsError, match="unknown method 'bitfit'"):
        run_params(params, "bitfit")


def test_load_params_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _project(tmp_path, DEFAULTS, {"fast": "train: {epochs: 1, learning_rate: 1e-4}\n", "empty": ""})
    assert load_params(path, "fast")["train"]["epochs"] == 1
    assert (
        load_params(path, "fast")["train"]["learning_rate"] == 1e-4
    )  # YAML 1.2 float, not the string "1e-4"
    assert load_params(path, str(tmp_path / "profiles" / "fast.yaml"))["train"]["epochs"] == 1
    assert load_params(path, "empty") == deep_merge(DEFAULTS, {"report": {"dir": "reports/empty"}})
    monkeypatch.setenv("PROFILE", "fast")
    assert load_params(path)["train"]["epochs"] == 1
    assert (
        load_params(path, profile="")["train"]["epochs"] == DEFAULTS["train"]["epochs"]
    )  # explicit "" wins over $PROFILE
    monkeypatch.setenv("PROFILE", "")
    assert load_params(path) == DEFAULTS
    with pytest.raises(ParamsError, match=r"unknown profile 'slow': .* available profiles: empty, fast$"):
        load_params(path, "slow")


def test_a_profile_never_reports_over_the_default_report(tmp_path: Path) -> None:
    """`make reproduce PROFILE=smoke` used to overwrite the committed default report (reports/) with smoke numbers."""
    profiles = {
        "quick": "train: {epochs: 1}\n",
        "own": "report: {dir: out/own}\n",
        "bad": "report: {dir: ./reports/}\n",
    }
    path = _project(tmp_path, DEFAULTS, profiles)
    assert load_params(path, "")["report"]["dir"] == "reports"
    assert load_params(path, "quick")["report"]["dir"] == "reports/quick"  # no report.dir: its own subfolder
    assert load_params(path, str(tmp_path / "profiles" / "quick.yaml"))["report"]["dir"] == "reports/quick"
    assert load_params(path, "own")["report"]["dir"] == "out/own"
    with pytest.raises(ParamsError, match=r"bad\.yaml: 'report\.dir' is the default report folder 'reports'"):
        load_params(path, "bad")
    root = Path(__file__).resolve().parents[1]
    # Read the files (the paper profiles need their data to load): a profile's own report.dir, else its subfolder.
    own = {
        p.stem: (read_yaml(p, allow_empty=True) or {}).get("report", {})
        for p in (root / "profiles").glob("*.yaml")
    }
    dirs = {name: report.get("dir") or f"reports/{name}" for name, report in own.items()}
    assert dirs["smoke"] == "reports/smoke" and "reports" not in dirs.values()
    assert len(set(dirs.values())) == len(dirs)  # no two profiles share a report folder


def test_load_params_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "absent.yaml", "")
    broken = _project(tmp_path, "model:\n  name_or_path: minilm\ntrain: [epochs: 3\n")
    with pytest.raises(ParamsError, match=r"params\.yaml:4: invalid YAML"):
        load_params(broken, "")
    _project(tmp_path, "- just\n- a list\n")
    with pytest.raises(ParamsError, match="top level must be a mapping of sections, got list"):
        load_params(tmp_path / "params.yaml", "")
    _project(tmp_path, "seeds: [1]\nmodel: {}\nseeds: [2]\n")
    with pytest.raises(ParamsError, match=r"params\.yaml:3: invalid YAML: duplicate key 'seeds'"):
        load_params(tmp_path / "params.yaml", "")


def test_validation_errors_name_the_file_that_set_the_key(tmp_path: Path) -> None:
    base = copy.deepcopy(DEFAULTS)
    base["train"]["device"] = "tpu"
    path = _project(tmp_path, base, {"ok": "train: {device: cpu}\n", "bad": "adamix: {share: all}\n"})
    assert load_params(path, "ok")["train"]["device"] == "cpu"  # the profile fixes the base
    with pytest.raises(ParamsError) as err:
        load_params(path, "bad")
    assert str(err.value).startswith(f"{path}: 'train.device'")
    _project(tmp_path, DEFAULTS, {"bad": "adamix: {share: all}\n"})
    with pytest.raises(ParamsError) as err:
        load_params(path, "bad")
    assert str(err.value).startswith(f"{tmp_path / 'profiles' / 'bad.yaml'}: 'adamix.share' must be one of")


def test_resolve_to_file_writes_only_on_change(tmp_path: Path, params: dict) -> None:
    out = tmp_path / "params.resolved.yaml"
    assert resolve_to_file(params, out) is True
    first = out.stat().st_mtime_ns
    assert resolve_to_file(copy.deepcopy(params), out) is False
    assert out.stat().st_mtime_ns == first
    text = out.read_text()
    assert text.index("adamix:") < text.index("data:") < text.index("train:")  # sorted keys
    assert load_params(out, "") == params  # the resolved file is itself a valid params file
    params["seeds"] = [1]
    assert resolve_to_file(params, out) is True and load_params(out, "")["seeds"] == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["params.resolved.yaml"]  # no temp files left


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _project(tmp_path, DEFAULTS, {"smoke": "seeds: [7]\n"})
    out = tmp_path / "resolved.yaml"
    args = ["--params", str(path), "--profile", "smoke"]
    assert P.main(["resolve", *args, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("wrote:")
    assert P.main(["resolve", *args, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("unchanged:")
    assert yaml.safe_load(out.read_text())["seeds"] == [7]
    grid = yaml.safe_load((tmp_path / "params.grid.yaml").read_text())["grid"]  # beside --out, not in the cwd
    assert {run["seed"] for run in grid["runs"].values()} == {7}
    assert P.main(["show", *args]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["seeds"] == [7]
    assert P.main(["show", "--params", str(path), "--profile", "missing"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: unknown profile 'missing'") and "Traceback" not in captured.err


# -- the models and the JSON schemas -------------------------------------------------------------------------


def test_strict_numbers_and_first_error_in_reading_order(params: dict) -> None:
    params["train"]["consistency_weight"] = 0  # an int where a float is expected
    params["adamix"]["lora_alpha"] = 16.5
    validate(params)
    for bad in (math.inf, math.nan, "0.1", False):
        broken = copy.deepcopy(params)
        broken["train"]["weight_decay"] = bad
        assert _error(broken) == f"'train.weight_decay' must be a number >= 0, got {bad!r}"
    params["train"] = {**params["train"], "epochs": 0, "epoch": 1}  # unknown keys of a section come first
    assert _error(params).startswith("unknown key 'train.epoch'")
    params["data"]["split_seed"] = -1  # then the sections in params.yaml's order
    assert _error(params) == "'data.split_seed' must be an int >= 0, got -1"
    params["tracker"] = {}  # and unknown top-level keys before any section
    assert _error(params).startswith("unknown key 'tracker'")


def test_error_path_is_the_key_at_fault(params: dict) -> None:
    params["fewshot"]["label_words"] = {"sst2": ["great", "great"]}
    with pytest.raises(ParamsError) as err:
        validate(params)
    assert err.value.path == ("fewshot", "label_words")  # an error inside a value names the whole value
    assert str(err.value).endswith("lists of label words, got {'sst2': ['great', 'great']}")


def test_every_key_says_what_it_must_be_and_what_it_is_for() -> None:
    for name, info in Params.model_fields.items():
        assert info.description, name
        if name not in SECTIONS:
            assert fields.expected(info), name
    for section, model in SECTIONS.items():
        assert model.__doc__, section
        for key, info in model.model_fields.items():
            assert fields.expected(info) and info.description, f"{section}.{key}"


def test_check_field_uses_the_rule_of_the_key() -> None:
    assert check_field("train", "epochs", 3) is None
    assert check_field("train", "epochs", True) == "an int from 1 to 10000"
    assert check_field("train", "learning_rate", 1) is None
    assert check_field("adamix", "share", "all") == "one of up, down, none"
    with pytest.raises(KeyError):
        check_field("train", "epoch", 3)


def test_dataset_entry_schema_has_the_keys_flows_data_allows() -> None:
    from flows.data import user

    assert set(json_schema.DatasetEntry.model_fields) == set(user._ENTRY_RULES)


def test_schema_files_are_current(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    for name, text in json_schema.schema_texts().items():
        assert (ROOT / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: python -m flows.config schema"
        )
    monkeypatch.setattr(P, "ROOT", tmp_path)
    assert P.main(["schema", "--check"]) == 1
    assert P.main(["schema"]) == 0 and capsys.readouterr().out.startswith("wrote:")
    assert P.main(["schema"]) == 0 and capsys.readouterr().out.startswith("unchanged:")
    assert P.main(["schema", "--check"]) == 0
    (tmp_path / json_schema.PROFILE_SCHEMA).write_text("{}\n")
    assert P.main(["schema", "--check"]) == 1
    assert (
        capsys.readouterr().err
        == f"stale: {json_schema.PROFILE_SCHEMA}: run `python -m flows.config schema`\n"
    )


def test_params_and_profiles_validate_against_their_json_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    full = jsonschema.Draft202012Validator(json_schema.params_json_schema())
    profile = jsonschema.Draft202012Validator(json_schema.profile_json_schema())
    for validator in (full, profile):
        validator.check_schema(validator.schema)
    params = read_yaml(ROOT / "params.yaml")
    assert [e.message for e in full.iter_errors(params)] == []
    profiles = sorted((ROOT / "profiles").glob("*.yaml"))
    assert profiles
    for path in profiles:
        assert path.read_text().startswith("# yaml-language-server: $schema=profile.schema.json\n"), path
        assert [e.message for e in profile.iter_errors(read_yaml(path, allow_empty=True))] == [], path
    assert (
        (ROOT / "params.yaml").read_text().startswith("# yaml-language-server: $schema=params.schema.json\n")
    )
    # what the models reject, the schemas reject too; a profile may leave keys out and switch a grid off
    params["train"]["epochs"] = 0
    assert not full.is_valid(params)
    assert profile.is_valid({"train": {"epochs": 1}, "ablations": {"grids": {"share": None}}})
    assert not profile.is_valid({"train": {"epoch": 1}})
    assert not full.is_valid(deep_merge(DEFAULTS, {"ablations": {"grids": {"share": None}}}))
