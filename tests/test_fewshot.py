"""Tests for flows.stages.fewshot: K per class, disjointness, determinism across seeds, k=0 pass-through, errors."""

from collections import Counter

import pytest

from flows.data import DataError, load_split, read_meta, write_task_dir
from flows.stages.fewshot import LMBFF_SEEDS, make_fewshot_split, split_for_seed

LABEL_NAMES = ["entailment", "neutral", "contradiction"]


def _prepared(path, per_class=(12, 10, 8), regression=False):
    train = [
        {"text_a": f"premise {label}-{i}", "text_b": f"hypothesis {label}-{i}", "label": label}
        for label, count in enumerate(per_class)
        for i in range(count)
    ]
    if regression:
        train = [{**example, "label": float(index)} for index, example in enumerate(train)]
    splits = {
        "train": train,
        "validation": [{"text_a": "v", "text_b": "w", "label": 0}],
        "test": [{"text_a": f"test {i}", "text_b": "t", "label": i % 3} for i in range(6)],
        "test_mismatched": [{"text_a": "mismatched", "text_b": "m", "label": 2}],
    }
    meta = {
        "task": "toy",
        "num_labels": 1 if regression else 3,
        "label_names": [] if regression else LABEL_NAMES,
        "is_regression": regression,
        "metrics": ["pearson"] if regression else ["accuracy"],
        "primary_metric": "pearson" if regression else "accuracy",
        "text_pair": True,
        "splits": {split: len(examples) for split, examples in splits.items()},
        "extra_test_splits": ["test_mismatched"],
        "source": "test fixture",
    }
    return write_task_dir(path, splits, meta)


def _keys(task_dir, split):
    return [(e["text_a"], e["text_b"]) for e in load_split(task_dir, split)]


def _bytes(task_dir):
    return {path.name: path.read_bytes() for path in sorted(task_dir.iterdir())}


@pytest.fixture
def prepared(tmp_path):
    return _prepared(tmp_path / "prepared")


def test_k_per_class_in_disjoint_train_and_validation(prepared, tmp_path):
    out = make_fewshot_split(prepared, tmp_path / "k4", k=4, seed=13)
    train, validation = load_split(out, "train"), load_split(out, "validation")
    assert Counter(e["label"] for e in train) == {0: 4, 1: 4, 2: 4}
    assert Counter(e["label"] for e in validation) == {0: 4, 1: 4, 2: 4}
    assert not set(_keys(out, "train")) & set(_keys(out, "validation"))
    assert set(_keys(out, "train")) | set(_keys(out, "validation")) <= set(_keys(prepared, "train"))
    meta = read_meta(out)
    assert meta["k"] == 4 and meta["seed"] == 13 and meta["label_names"] == LABEL_NAMES
    assert meta["splits"] == {"train": 12, "validation": 12, "test": 6, "test_mismatched": 1}


def test_test_splits_are_copied_unchanged(prepared, tmp_path):
    out = make_fewshot_split(prepared, tmp_path / "k2", k=2, seed=21)
    for split in ("test", "test_mismatched"):
        assert (out / f"{split}.jsonl").read_bytes() == (prepared / f"{split}.jsonl").read_bytes()


def test_same_seed_same_bytes_and_different_seeds_differ(prepared, tmp_path):
    first = make_fewshot_split(prepared, tmp_path / "a", k=3, seed=42)
    again = make_fewshot_split(prepared, tmp_path / "b", k=3, seed=42)
    assert _bytes(first) == _bytes(again)
    draws = {
        seed: frozenset(_keys(make_fewshot_split(prepared, tmp_path / f"s{seed}", 3, seed), "train"))
        for seed in LMBFF_SEEDS
    }
    assert len(set(draws.values())) == len(LMBFF_SEEDS)


def test_k_zero_passes_every_split_through(prepared, tmp_path):
    out = make_fewshot_split(prepared, tmp_path / "full", k=0, seed=87)
    for split in ("train", "validation", "test", "test_mismatched"):
        assert (out / f"{split}.jsonl").read_bytes() == (prepared / f"{split}.jsonl").read_bytes()
    meta = read_meta(out)
    assert meta["k"] == 0 and meta["seed"] == 87 and meta["splits"] == read_meta(prepared)["splits"]


def test_k_zero_works_for_regression(tmp_path):
    prepared = _prepared(tmp_path / "reg", regression=True)
    assert read_meta(make_fewshot_split(prepared, tmp_path / "out", k=0, seed=1))["is_regression"]


def test_regression_with_k_is_an_error(tmp_path):
    prepared = _prepared(tmp_path / "reg", regression=True)
    with pytest.raises(DataError, match="regression task"):
        make_fewshot_split(prepared, tmp_path / "out", k=2, seed=1)


def test_a_class_short_of_2k_is_named_with_its_count(prepared, tmp_path):
    with pytest.raises(
        DataError, match=r"k=5 needs 10 train examples per class .* class 'contradiction' has 8 in"
    ) as error:
        make_fewshot_split(prepared, tmp_path / "out", k=5, seed=1)
    assert "neutral" not in str(error.value)  # 10 examples are enough for k=5
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("k", [-1, 1.5, True])
def test_bad_k_is_an_error(prepared, tmp_path, k):
    with pytest.raises(DataError, match="k must be an integer >= 0"):
        make_fewshot_split(prepared, tmp_path / "out", k=k, seed=1)


def test_a_failed_draw_keeps_the_previous_output(prepared, tmp_path):
    before = _bytes(make_fewshot_split(prepared, tmp_path / "out", k=2, seed=1))
    with pytest.raises(DataError):
        make_fewshot_split(prepared, tmp_path / "out", k=50, seed=1)
    assert _bytes(tmp_path / "out") == before


def test_split_for_seed_reads_k_from_params_and_uses_the_project_layout(tmp_path, capsys):
    _prepared(tmp_path / "data" / "prepared" / "toy")
    out = split_for_seed({"fewshot": {"k": 2}}, "toy", 13, root=tmp_path)
    assert out == tmp_path / "data" / "splits" / "toy" / "seed13"
    assert read_meta(out)["splits"]["train"] == 6
    assert "[fewshot] toy seed 13: train 6" in capsys.readouterr().out
