"""Tests for the built-in GLUE and LM-BFF readers (flows.data.glue) on tiny fixtures in the original layouts."""

import json

import pytest

from flows.data import DataError, load_split, prepare_task, read_meta

DATA_CFG = {
    "max_train_examples": None,
    "max_eval_examples": None,
    "validation_size": 2,
    "test_size": 3,
    "split_seed": 0,
    "glue_dir": None,
    "fewshot_dir": None,
    "bigbench_archive": None,
}
MNLI_TRAIN_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
]  # fmt: skip
MNLI_DEV_HEADER = [*MNLI_TRAIN_HEADER[:-1], "label2", "label3", "label4", "label5", "gold_label"]


def _tsv(path, rows, header=None, bom=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, row)) for row in rows]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")


def _examples(tag, labels, pair=True):
    """(text_a, text_b, raw label) rows; text_a carries a bare quote character, as GLUE texts do."""
    return [
        (f'{tag} "quoted" sentence {i}', f"{tag} other {i}" if pair else None, label)
        for i, label in enumerate(labels)
    ]


def _mnli_row(index, a, b, label, dev):
    """12 columns in train; dev has label1..label5 before gold_label (16 columns)."""
    parses = ["( x )", "( y )", "(ROOT x)", "(ROOT y)"]
    return [index, 1, f"{index}e", "fiction", *parses, a, b, label, *([label] * 4 if dev else []), label]


def _write_task(root, task, split, examples):
    file = {"train": "train.tsv", "test": "dev.tsv"}.get(split, split)
    if task == "cola":
        _tsv(root / "CoLA" / file, [("gj04", y, "" if y == "1" else "*", a) for a, _, y in examples])
    elif task == "sst2":
        _tsv(root / "SST-2" / file, [(a, y) for a, _, y in examples], ["sentence", "label"])
    elif task == "mrpc":
        header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
        rows = [(y, 100 + i, 200 + i, a, b) for i, (a, b, y) in enumerate(examples)]
        _tsv(root / "MRPC" / file, rows, header, bom=True)
    elif task == "qqp":
        header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
        rows = [(i, 2 * i, 2 * i + 1, a, b, y) for i, (a, b, y) in enumerate(examples)]
        _tsv(root / "QQP" / file, rows + ([("999", "broken row")] if split == "train" else []), header)
    elif task == "stsb":
        header = ["index", "genre", "filename", "year", "old_index", "source1", "source2"]
        rows = [
            (i, "main-captions", "MSRvid", "2012test", i, "none", "none", a, b, y)
            for i, (a, b, y) in enumerate(examples)
        ]
        _tsv(root / "STS-B" / file, rows, [*header, "sentence1", "sentence2", "score"])
    elif task == "mnli":
        dev = split != "train"
        rows = [_mnli_row(i, a, b, y, dev) for i, (a, b, y) in enumerate(examples)]
        _tsv(root / "MNLI" / file, rows, MNLI_DEV_HEADER if dev else MNLI_TRAIN_HEADER)
    else:
        header = (
            ["index", "question", "sentence", "label"]
            if task == "qnli"
            else ["index", "sentence1", "sentence2", "label"]
        )
        _tsv(root / task.upper() / file, [(i, a, b, y) for i, (a, b, y) in enumerate(examples)], header)


NLI2 = ["entailment", "not_entailment"]
MNLI3 = ["entailment", "neutral", "contradiction"]
STSB_TRAIN = ["0.0", "1.5", "2.25", "3", "3.800", "4.2", "5.000", "0.5"]
TASKS = {
    # task: (label names, raw train labels, raw dev labels, metrics, pair)
    "cola": (["unacceptable", "acceptable"], ["0", "1"] * 4, ["1", "0", "1"], ["matthews"], False),
    "sst2": (["negative", "positive"], ["0", "1"] * 4, ["1", "0", "0"], ["accuracy"], False),
    "mrpc": (["not_equivalent", "equivalent"], ["0", "1"] * 4, ["1", "1", "0"], ["accuracy", "f1"], True),
    "qqp": (["not_duplicate", "duplicate"], ["0", "1"] * 4, ["0", "1", "0"], ["accuracy", "f1"], True),
    "stsb": ([], STSB_TRAIN, ["4.750", "0.0", "2.5"], ["pearson", "spearman"], True),
    "mnli": (MNLI3, MNLI3 * 3, ["contradiction", "entailment", "neutral"], ["accuracy"], True),
    "qnli": (NLI2, NLI2 * 4, ["not_entailment", "entailment", "entailment"], ["accuracy"], True),
    "rte": (NLI2, NLI2 * 4, ["entailment", "not_entailment", "not_entailment"], ["accuracy"], True),
}  # fmt: skip


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    for task, (_, train_labels, dev_labels, _, pair) in TASKS.items():
        _write_task(root, task, "train", _examples(f"{task} train", train_labels, pair))
        if task == "mnli":
            _write_task(root, task, "dev_matched.tsv", _examples("mnli matched", dev_labels))
            _write_task(root, task, "dev_mismatched.tsv", _examples("mnli mismatched", dev_labels[::-1]))
        else:
            _write_task(root, task, "test", _examples(f"{task} dev", dev_labels, pair))
    return root


def _expected_label(task, raw):
    names = TASKS[task][0]
    if not names:
        return float(raw)
    return int(raw) if raw in ("0", "1") else names.index(raw)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_glue_reader_on_the_original_layout(task, glue_dir, tmp_path):
    names, train_labels, dev_labels, metrics, pair = TASKS[task]
    out = prepare_task(task, {}, {**DATA_CFG, "glue_dir": str(glue_dir)}, tmp_path / task)
    meta = read_meta(out)
    assert meta["task"] == task
    assert meta["label_names"] == names
    assert meta["num_labels"] == (len(names) or 1)
    assert meta["is_regression"] == (not names)
    assert meta["metrics"] == metrics and meta["primary_metric"] == metrics[0]
    assert meta["text_pair"] == pair
    # GLUE dev becomes test; validation is carved out of GLUE train.
    assert meta["splits"]["test"] == len(dev_labels)
    assert meta["splits"]["validation"] == DATA_CFG["validation_size"]
    assert meta["splits"]["train"] == len(train_labels) - DATA_CFG["validation_size"]
    test = load_split(out, "test")
    expected_dev = _examples("mnli matched" if task == "mnli" else f"{task} dev", dev_labels, pair)
    assert [(e["text_a"], e["text_b"], e["label"]) for e in test] == [
        (a, b, _expected_label(task, y)) for a, b, y in expected_dev
    ]
    train_texts = {e["text_a"] for split in ("train", "validation") for e in load_split(out, split)}
    assert train_texts == {a for a, _, _ in _examples(f"{task} train", train_labels, pair)}


def test_cola_has_no_header_so_its_first_row_is_data(glue_dir, tmp_path):
    out = prepare_task("cola", {}, {**DATA_CFG, "glue_dir": str(glue_dir)}, tmp_path / "cola")
    texts = {e["text_a"] for split in ("train", "validation") for e in load_split(out, split)}
    assert 'cola train "quoted" sentence 0' in texts
    assert read_meta(out)["splits"]["train"] + read_meta(out)["splits"]["validation"] == 8


def test_mnli_mismatched_is_an_extra_test_split_with_the_same_label_order(glue_dir, tmp_path):
    out = prepare_task("mnli", {}, {**DATA_CFG, "glue_dir": str(glue_dir)}, tmp_path / "mnli")
    meta = read_meta(out)
    assert meta["extra_test_splits"] == ["test_mismatched"]
    assert list(meta["splits"]) == ["train", "validation", "test", "test_mismatched"]
    mismatched = load_split(out, "test_mismatched")
    assert [e["label"] for e in mismatched] == [1, 0, 2]  # neutral, entailment, contradiction
    assert mismatched[0]["text_a"] == 'mnli mismatched "quoted" sentence 0'


def test_qqp_skips_and_counts_malformed_rows(glue_dir, tmp_path):
    meta = read_meta(prepare_task("qqp", {}, {**DATA_CFG, "glue_dir": str(glue_dir)}, tmp_path / "qqp"))
    assert meta["dropped"]["malformed"] == 1
    assert meta["splits"]["train"] + meta["splits"]["validation"] == 8


def test_a_malformed_row_elsewhere_is_an_error_naming_file_and_line(tmp_path):
    _write_task(tmp_path, "rte", "train", _examples("rte", NLI2 * 3) + [("x", "y", "maybe")])
    _write_task(tmp_path, "rte", "test", _examples("rte dev", NLI2))
    with pytest.raises(DataError, match=r"RTE/train\.tsv, line 8: label 'maybe' is not"):
        prepare_task("rte", {}, {**DATA_CFG, "glue_dir": str(tmp_path)}, tmp_path / "out")


def test_an_unexpected_header_is_an_error(tmp_path):
    _tsv(tmp_path / "SST-2" / "train.tsv", [("good", "1")], ["text", "label"])
    with pytest.raises(DataError, match=r"SST-2/train\.tsv: unexpected header, column 0 is 'text'"):
        prepare_task("sst2", {}, {**DATA_CFG, "glue_dir": str(tmp_path)}, tmp_path / "out")


def test_missing_glue_folder_and_file_name_the_path(tmp_path):
    with pytest.raises(DataError, match=r"GLUE folder not found: .*SST-2"):
        prepare_task("sst2", {}, {**DATA_CFG, "glue_dir": str(tmp_path)}, tmp_path / "out")
    _write_task(tmp_path, "sst2", "train", _examples("sst2", ["0", "1"] * 3, pair=False))
    with pytest.raises(DataError, match=r"GLUE file not found: .*SST-2/dev\.tsv"):
        prepare_task("sst2", {}, {**DATA_CFG, "glue_dir": str(tmp_path)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hub_path_offline_fails_with_a_pointer_to_glue_dir(tmp_path):
    with pytest.raises(DataError, match=r"nyu-mll/glue.*HF_DATASETS_OFFLINE=1.*data\.glue_dir"):
        prepare_task("rte", {}, DATA_CFG, tmp_path / "rte")
    assert not (tmp_path / "rte").exists()


def test_hub_path_maps_nyu_mll_glue_splits(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")

    def split(tag, labels):
        return datasets.Dataset.from_dict(
            {
                "premise": [f"{tag} premise {i}" for i in range(len(labels))],
                "hypothesis": [f"{tag} hypothesis {i}" for i in range(len(labels))],
                "label": labels,
                "idx": list(range(len(labels))),
            }
        )

    fake = datasets.DatasetDict(
        train=split("train", [0, 1, 2] * 3),
        validation_matched=split("matched", [2, 1]),
        validation_mismatched=split("mismatched", [0, 0, 1]),
        test_matched=split("hidden", [-1]),
    )
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: calls.append(args) or fake)
    out = prepare_task("mnli", {}, DATA_CFG, tmp_path / "mnli")
    assert calls == [("nyu-mll/glue", "mnli")]
    meta = read_meta(out)
    assert meta["splits"] == {"train": 7, "validation": 2, "test": 2, "test_mismatched": 3}
    assert load_split(out, "test")[0] == {
        "text_a": "matched premise 0",
        "text_b": "matched hypothesis 0",
        "label": 2,
    }
    assert "nyu-mll/glue" in meta["source"]


@pytest.mark.parametrize(
    ("task", "names"), [("mpqa", ["negative", "positive"]), ("subj", ["subjective", "objective"])]
)
def test_lmbff_tasks_read_the_original_csv_layout(task, names, tmp_path):
    folder = tmp_path / task
    folder.mkdir()
    train = [f'{i % 2},"a {task} sentence, with comma and ""quotes"" {i}"' for i in range(10)]
    (folder / "train.csv").write_text("\n".join(train) + "\n", encoding="utf-8")
    (folder / "test.csv").write_text("1,held out one\n0,held out two\n", encoding="utf-8")
    out = prepare_task(task, {}, {**DATA_CFG, "fewshot_dir": str(tmp_path)}, tmp_path / "out")
    meta = read_meta(out)
    assert meta["label_names"] == names and meta["metrics"] == ["accuracy"] and not meta["text_pair"]
    assert meta["splits"] == {"train": 8, "validation": 2, "test": 2}
    assert load_split(out, "test") == [
        {"text_a": "held out one", "text_b": None, "label": 1},
        {"text_a": "held out two", "text_b": None, "label": 0},
    ]
    first = json.loads((out / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["text_a"].startswith(f'a {task} sentence, with comma and "quotes"')


def test_lmbff_task_without_fewshot_dir_names_the_key(tmp_path):
    with pytest.raises(DataError, match=r"data\.fewshot_dir"):
        prepare_task("mpqa", {}, DATA_CFG, tmp_path / "out")
