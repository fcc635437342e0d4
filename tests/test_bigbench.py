"""Tests for the BIG-bench pair tasks (flows.data.bigbench) on a small archive in the sdist's exact layout."""

import hashlib
import io
import json
import tarfile
import urllib.error
from collections import Counter

import pytest

from flows.data import DataError, bigbench, load_split, prepare_task, read_meta

DATA_CFG = {
    "max_train_examples": None,
    "max_eval_examples": None,
    "validation_size": 3,
    "test_size": 3,
    "split_seed": 0,
    "glue_dir": None,
    "fewshot_dir": None,
    "bigbench_archive": None,
}
PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks"


def _scores(labels, winner):
    return {label: int(label == winner) for label in labels}


def _vitaminc(i, label):
    return {
        "input": f"Article {i}: The album sold {i} million copies in {1990 + i} .\nClaim: It sold {i} million.",
        "target_scores": _scores(("True", "False", "Neither"), label),
    }


def _epistemic(i, label):
    return {
        "input": f"Premise: Ann {i} thinks that Bo runs. Hypothesis: Bo {i} runs.",
        "target_scores": _scores(("entailment", "non-entailment"), label),
    }


def _presupposition(i, label):
    return {
        "input": f"Sentence 1: Cy {i} stopped smoking. \nSentence 2: Cy {i} used to smoke.\n\nThe answer is: ",
        "target_scores": _scores(("entailment", "neutral", "contradiction"), label),
    }


TASKS = {  # name -> (folder, labels, example maker)
    "vitaminc": ("vitaminc_fact_verification", ("True", "False", "Neither"), _vitaminc),
    "epistemic_reasoning": ("epistemic_reasoning", ("entailment", "non-entailment"), _epistemic),
    "presuppositions_nli": (
        "presuppositions_as_nli",
        ("entailment", "neutral", "contradiction"),
        _presupposition,
    ),
}
PER_LABEL = 6
BROKEN = [
    {"input": "no claim marker here", "target_scores": {"True": 1, "False": 0, "Neither": 0}},
    {"input": "A: x\nClaim: y", "target_scores": {"True": 1, "False": 1, "Neither": 0}},  # a tie
    {"input": "A: x\nClaim: y", "target_scores": {"Maybe": 1}},  # not a label of the task
    {"input": "A: x\nClaim: y", "target_scores": {"True": "1", "False": 0}},  # not a number
    "not an object",
]


def _documents():
    documents = {}
    for name, (folder, labels, make) in TASKS.items():
        examples = [make(i * 10 + j, label) for j, label in enumerate(labels) for i in range(PER_LABEL)]
        if name == "vitaminc":
            examples += BROKEN
        documents[folder] = {"name": folder, "examples": examples}
    return documents


def _write_archive(path, documents, extra=()):
    with tarfile.open(path, "w:gz") as archive:
        for folder, document in documents.items():
            payload = json.dumps(document).encode()
            info = tarfile.TarInfo(f"{PREFIX}/{folder}/task.json")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        for name, payload in extra:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return _write_archive(tmp_path_factory.mktemp("bb") / bigbench.ARCHIVE_NAME, _documents())


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_task_reads_as_labelled_pairs(name, archive):
    source = bigbench.read_bigbench(name, str(archive))
    folder, labels, make = TASKS[name]
    assert source.text_pair and source.label_names == list(labels) and source.metrics == ["accuracy"]
    examples = source.splits["train"]
    assert Counter(e["label"] for e in examples) == {i: PER_LABEL for i in range(len(labels))}
    assert source.malformed == (len(BROKEN) if name == "vitaminc" else 0)
    assert folder in source.description and str(archive) in source.description
    first = examples[0]
    assert first["label"] == 0 and first["text_a"] and first["text_b"]
    assert "Claim:" not in first["text_a"] + first["text_b"]
    assert not any(marker in first["text_a"] for marker in ("Premise:", "Sentence 1:"))
    assert not any(marker in first["text_b"] for marker in ("Hypothesis:", "Sentence 2:", "The answer is"))


def test_the_pair_is_split_where_the_task_puts_its_marker(archive):
    pairs = {name: bigbench.read_bigbench(name, str(archive)).splits["train"][0] for name in TASKS}
    assert pairs["vitaminc"] == {
        "text_a": "Article 0: The album sold 0 million copies in 1990 .",
        "text_b": "It sold 0 million.",
        "label": 0,
    }
    assert (pairs["epistemic_reasoning"]["text_a"], pairs["epistemic_reasoning"]["text_b"]) == (
        "Ann 0 thinks that Bo runs.",
        "Bo 0 runs.",
    )
    assert (pairs["presuppositions_nli"]["text_a"], pairs["presuppositions_nli"]["text_b"]) == (
        "Cy 0 stopped smoking.",
        "Cy 0 used to smoke.",
    )


def test_an_unpacked_folder_reads_the_same_as_the_archive(archive, tmp_path):
    with tarfile.open(archive) as packed:
        packed.extractall(tmp_path, filter="data")
    for folder in (tmp_path, tmp_path / PREFIX):
        assert bigbench.read_bigbench("vitaminc", str(folder)).splits == (
            bigbench.read_bigbench("vitaminc", str(archive)).splits
        )


def test_prepare_writes_a_pair_task_with_carved_splits(archive, tmp_path):
    out = prepare_task("vitaminc", {}, {**DATA_CFG, "bigbench_archive": str(archive)}, tmp_path / "vitaminc")
    meta = read_meta(out)
    assert meta["label_names"] == ["True", "False", "Neither"] and meta["dropped"]["malformed"] == len(BROKEN)
    sizes = {split: len(load_split(out, split)) for split in ("train", "validation", "test")}
    assert sizes == {"train": 3 * PER_LABEL - 6, "validation": 3, "test": 3}
    assert all(e["text_b"] for e in load_split(out, "test"))


def test_a_missing_configured_archive_names_the_key(tmp_path):
    with pytest.raises(DataError, match=r"data\.bigbench_archive: no such file or folder"):
        bigbench.read_bigbench("vitaminc", str(tmp_path / "nope.tar.gz"))


def test_an_archive_without_the_task_or_not_an_archive_is_named(tmp_path):
    other = _write_archive(tmp_path / "other.tar.gz", {}, extra=[("README", b"hello")])
    with pytest.raises(DataError, match=r"has no benchmark_tasks/vitaminc_fact_verification/task\.json"):
        bigbench.read_bigbench("vitaminc", str(other))
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not a tar file at all")
    with pytest.raises(DataError, match="not a readable tar archive"):
        bigbench.read_bigbench("vitaminc", str(junk))
    bad_json = _write_archive(
        tmp_path / "bad.tar.gz", {}, extra=[(f"{PREFIX}/epistemic_reasoning/task.json", b"{")]
    )
    with pytest.raises(DataError, match="not a BIG-bench task file"):
        bigbench.read_bigbench("epistemic_reasoning", str(bad_json))
    empty = _write_archive(tmp_path / "empty.tar.gz", {"epistemic_reasoning": {"examples": BROKEN}})
    with pytest.raises(DataError, match=f"none of its {len(BROKEN)} examples parse"):
        bigbench.read_bigbench("epistemic_reasoning", str(empty))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(bigbench.CACHE_ENV, str(folder))
    return folder


def test_without_a_path_the_archive_is_downloaded_once_verified_and_cached(archive, cache, monkeypatch):
    fetched = []

    def fake_fetch(url, path):
        fetched.append(url)
        path.write_bytes(archive.read_bytes())

    monkeypatch.setattr(bigbench, "_fetch", fake_fetch)
    monkeypatch.setattr(bigbench, "ARCHIVE_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    first = bigbench.read_bigbench("epistemic_reasoning", None)
    second = bigbench.read_bigbench("epistemic_reasoning", None)
    assert fetched == [bigbench.ARCHIVE_URL] and first.splits == second.splits
    assert sorted(p.name for p in cache.iterdir()) == [bigbench.ARCHIVE_NAME]


def test_a_download_with_the_wrong_checksum_keeps_nothing(cache, monkeypatch):
    monkeypatch.setattr(bigbench, "_fetch", lambda url, path: path.write_bytes(b"tampered"))
    with pytest.raises(DataError, match="SHA-256 .* expected 1bb398a5"):
        bigbench.read_bigbench("vitaminc", None)
    assert list(cache.iterdir()) == []


def test_an_unreachable_host_says_how_to_supply_the_archive(cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(bigbench.urllib.request, "urlopen", refuse)
    with pytest.raises(DataError, match=r"could not download bigbench 1\.0\.0 .*data\.bigbench_archive"):
        bigbench.read_bigbench("vitaminc", None)
    assert list(cache.iterdir()) == []


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(bigbench.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert bigbench.cache_dir() == tmp_path / "adamix"
    monkeypatch.setenv(bigbench.CACHE_ENV, str(tmp_path / "mine"))
    assert bigbench.cache_dir() == tmp_path / "mine"
