"""Tests for the generation tasks (flows.data.nlg, nlg_text, generation) on small files in each original layout."""

import csv
import io
import json
import random
import tarfile

import pytest

from flows import nlg_metrics
from flows.config.schema import DEFAULTS
from flows.data import DataError, load_split, nlg, prepare_task, read_meta
from flows.data.nlg_text import (
    gem_e2e_source,
    gem_webnlg_source,
    linearise_e2e,
    linearise_triples,
    parse_e2e_mr,
)

# The default data section (every key), uncapped, with small carve sizes for the fixtures.
DATA_CFG = {
    **DEFAULTS["data"],
    "max_train_examples": None,
    "max_eval_examples": None,
    "validation_size": 2,
    "test_size": 3,
}
PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks"
VAULTS_MR = "name[The Vaults], eatType[pub], priceRange[more than £30], customer rating[5 out of 5], near[Café Adriatic]"
VAULTS = "name : The Vaults | Type : pub | price : more than £30 | customer rating : 5 out of 5 | near : Café Adriatic"


def _prepare(task, tmp_path, **changes):
    return prepare_task(task, {}, {**DATA_CFG, **changes}, tmp_path / task)


def _sources(task_dir, split):
    return {row["text_a"] for row in load_split(task_dir, split)}


def _grouped(task_dir, split):
    return {row["text_a"]: sorted(row["references"]) for row in load_split(task_dir, split)}


# Linearisation ---------------------------------------------------------------------------------------------------


def test_e2e_mr_is_linearised_as_the_official_data_files():
    assert linearise_e2e(parse_e2e_mr(VAULTS_MR)) == VAULTS
    every = (
        "name[Blue Spice], eatType[restaurant], food[Chinese], priceRange[£20-25], customer rating[high], "
        "area[city centre], familyFriendly[yes], near[Rainbow Vegetarian Café]"
    )
    assert linearise_e2e(parse_e2e_mr(every)) == (
        "name : Blue Spice | Type : restaurant | food : Chinese | price : £20-25 | customer rating : high | "
        "area : city centre | family friendly : yes | near : Rainbow Vegetarian Café"
    )
    for broken in ("name[The Vaults", "name[The Vaults] eatType[pub]", "name[]", "", "just text"):
        assert parse_e2e_mr(broken) is None, broken


def test_triples_are_joined_as_the_official_converters():
    triples = [("Aarhus", "leaderName", "Jacob_Bundsgaard"), ("Aarhus_Airport", "runwayLength", "2702.0")]
    assert (
        linearise_triples(triples)
        == "Aarhus : leaderName : Jacob_Bundsgaard | Aarhus_Airport : runwayLength : 2702.0"
    )


def test_bigbench_gem_inputs_become_the_official_formats():
    assert gem_e2e_source("name: Blue Spice, eatType: coffee shop, area: city centre") == (
        "name : Blue Spice | Type : coffee shop | area : city centre"
    )
    assert gem_e2e_source("name: The Vaults, familyFriendly: no, near: Café Rouge, Cambridge") == (
        "name : The Vaults | family friendly : no | near : Café Rouge, Cambridge"  # a comma inside a value
    )
    assert (
        gem_webnlg_source(
            "(Al-Taqaddum_Air_Base | elevationAboveTheSeaLevel_(in_metres) | 84.0), (Harrietstown_(NY) | country | USA)"
        )
        == "Al-Taqaddum_Air_Base : elevationAboveTheSeaLevel_(in_metres) : 84.0 | Harrietstown_(NY) : country : USA"
    )
    for broken in ("name X", "colour: red", "colour: red, name: X", "name: "):
        assert gem_e2e_source(broken) is None, broken
    for broken in ("A | b | c", "(A | b)", "(A | b | c | d)", "(A | b | )"):
        assert gem_webnlg_source(broken) is None, broken


def test_metric_names_are_the_nlg_metrics_suites_lower_cased():
    assert nlg.METRIC_SUITES["e2e"] == tuple(name.lower() for name in nlg_metrics.E2E_METRICS)
    assert nlg.METRIC_SUITES["webnlg"] == tuple(name.lower() for name in nlg_metrics.WEBNLG_METRICS)
    assert {task.suite for task in nlg.GENERATION_TASKS.values()} == {"e2e", "webnlg"}
    assert nlg.GENERATION_TASKS["dart"].suite == "webnlg"


# E2E in its original csv layout ---------------------------------------------------------------------------------


def _write_csv(path, rows, header=("mr", "ref")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _e2e_dir(root, test_rows=None):
    train = [
        (f"name[Place {i}], eatType[pub], area[riverside]", f"Place {i} is a riverside pub.")
        for i in range(6)
    ]
    train += [
        train[0],
        (VAULTS_MR, "In the test set too."),
    ]  # a duplicate pair; a source that is also in test
    _write_csv(root / "trainset.csv", train)
    _write_csv(root / "devset.csv", [("name[Dev], food[Chinese]", "Dev serves Chinese food.")])
    test = test_rows or [
        (VAULTS_MR, "The Vaults is a pub near Café Adriatic."),
        ("name[Other], eatType[restaurant]", "Other is a restaurant."),
        (VAULTS_MR, "Near Café Adriatic, The Vaults pub is rated 5 out of 5."),
        (VAULTS_MR, "The Vaults is a pub near Café Adriatic."),  # the same reference twice
    ]
    _write_csv(root / "testset_w_refs.csv", test)
    return root


def test_e2e_csv_folder_prepares_pairs_and_grouped_references(tmp_path):
    out = _prepare("e2e_nlg", tmp_path, e2e_dir=str(_e2e_dir(tmp_path / "e2e")))
    train = load_split(out, "train")
    assert len(train) == 6 and train[0] == {
        "text_a": "name : Place 0 | Type : pub | area : riverside",
        "text_b": None,
        "label": "Place 0 is a riverside pub.",
    }
    test = load_split(out, "test")
    assert test == [
        {
            "text_a": VAULTS,
            "text_b": None,
            "label": "The Vaults is a pub near Café Adriatic.",
            "references": [
                "The Vaults is a pub near Café Adriatic.",
                "Near Café Adriatic, The Vaults pub is rated 5 out of 5.",
            ],
        },
        {
            "text_a": "name : Other | Type : restaurant",
            "text_b": None,
            "label": "Other is a restaurant.",
            "references": ["Other is a restaurant."],
        },
    ]
    meta = read_meta(out)
    assert meta["kind"] == "generation" and meta["metric_suite"] == "e2e"
    assert (
        meta["metrics"] == ["bleu", "nist", "meteor", "rouge_l", "cider"] and meta["primary_metric"] == "bleu"
    )
    assert (meta["num_labels"], meta["label_names"], meta["is_regression"]) == (0, [], False)
    assert meta["splits"] == {"train": 6, "validation": 1, "test": 2}
    assert meta["references"] == {"validation": 1, "test": 3} and meta["train_sources"] == 6
    assert meta["dropped"] == {"duplicate": 2, "overlap": 1, "malformed": 0}
    assert "local folder" in meta["source"] and "E2E" in meta["source"]


def test_e2e_folder_may_be_the_parent_of_e2e_dataset(tmp_path):
    _e2e_dir(tmp_path / "data" / "e2e-dataset")
    out = _prepare("e2e_nlg", tmp_path, e2e_dir=str(tmp_path / "data"))
    assert read_meta(out)["splits"]["test"] == 2


def test_e2e_csv_without_its_columns_names_the_file_and_column(tmp_path):
    root = _e2e_dir(tmp_path / "e2e")
    _write_csv(root / "devset.csv", [("name[Dev]", "Dev.")], header=("mr", "reference"))
    with pytest.raises(DataError, match=r"devset\.csv: missing column\(s\) \['ref'\]"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(root))
    assert not (tmp_path / "e2e_nlg").exists()


def test_e2e_empty_reference_or_bad_mr_names_the_file_and_row(tmp_path):
    root = _e2e_dir(tmp_path / "e2e", test_rows=[(VAULTS_MR, "A ref."), (VAULTS_MR, "  ")])
    with pytest.raises(DataError, match=r"testset_w_refs\.csv, row 2: empty reference"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(root))
    _e2e_dir(root, test_rows=[("name[The Vaults", "A ref.")])
    with pytest.raises(DataError, match=r"testset_w_refs\.csv, row 1: MR 'name\[The Vaults' is not"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(root))


def test_unreadable_e2e_csv_files_name_the_file(tmp_path):
    """Issue 22 item 8: a latin-1 file and an MR past the csv field limit gave tracebacks; a header-only test
    file passed prepare, split, train and merge and failed only at evaluate."""
    root = _e2e_dir(tmp_path / "e2e")
    (root / "devset.csv").write_bytes("mr,ref\nname[Caf\xe9],Caf\xe9.\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"devset\.csv: line 2 is not UTF-8 text"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(root))
    _e2e_dir(root, test_rows=[(f"name[{'x' * 140_000}]", "A ref.")])
    with pytest.raises(DataError, match=r"testset_w_refs\.csv: not a readable csv file \(field larger"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(root))
    _write_csv(root / "testset_w_refs.csv", [])
    with pytest.raises(DataError, match=r"testset_w_refs\.csv: no rows after the header"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(root))


def test_missing_local_folders_name_their_params_key(tmp_path):
    with pytest.raises(DataError, match=r"data\.e2e_dir: .* lacks trainset\.csv, devset\.csv"):
        _prepare("e2e_nlg", tmp_path, e2e_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"set params key data\.webnlg_dir"):
        _prepare("webnlg", tmp_path)
    with pytest.raises(DataError, match=r"set params key data\.dart_dir"):
        _prepare("dart", tmp_path)


class _Split:
    def __init__(self, records):
        self.records = records

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame.from_records(self.records)


def test_e2e_from_the_hub_reads_the_original_e2e_nlg_first(monkeypatch, tmp_path):
    calls = []

    def fake_load_hub(repo, config, where, hint):
        calls.append(repo)
        if repo == "GEM/e2e_nlg":
            raise AssertionError("the cleaned GEM copy is only the fallback")
        rows = [{"meaning_representation": VAULTS_MR, "human_reference": f"Reference {i}."} for i in range(2)]
        rows += [{"meaning_representation": f"name[P{i}]", "human_reference": f"P{i}."} for i in range(3)]
        return {"train": _Split(rows[2:]), "validation": _Split(rows[:1]), "test": _Split(rows[:2])}

    monkeypatch.setattr(nlg, "load_hub", fake_load_hub)
    out = _prepare("e2e_nlg", tmp_path)
    assert calls == ["e2e_nlg"]
    assert load_split(out, "test")[0]["references"] == ["Reference 0.", "Reference 1."]
    assert "Hugging Face Hub dataset e2e_nlg" in read_meta(out)["source"]


def test_e2e_from_gem_uses_its_reference_lists(monkeypatch, tmp_path):
    def fake_load_hub(repo, config, where, hint):
        if repo == "e2e_nlg":
            raise DataError(f"could not load e2e_nlg. {hint}")
        train = [
            {"meaning_representation": f"name[P{i}]", "target": f"P{i}.", "references": []} for i in range(3)
        ]
        test = [{"meaning_representation": VAULTS_MR, "target": "One.", "references": ["One.", "Two."]}]
        return {"train": _Split(train), "validation": _Split(test), "test": _Split(test)}

    monkeypatch.setattr(nlg, "load_hub", fake_load_hub)
    out = _prepare("e2e_nlg", tmp_path)
    assert load_split(out, "train")[1]["label"] == "P1."
    assert load_split(out, "test") == [
        {"text_a": VAULTS, "text_b": None, "label": "One.", "references": ["One.", "Two."]}
    ]


def test_e2e_hub_unreachable_names_both_datasets_and_e2e_dir(monkeypatch, tmp_path):
    def offline(repo, config, where, hint):
        raise DataError(f"could not load '{repo}'. {hint}")

    monkeypatch.setattr(nlg, "load_hub", offline)
    with pytest.raises(DataError, match=r"'e2e_nlg'.*next.*'GEM/e2e_nlg'.*data\.e2e_dir"):
        _prepare("e2e_nlg", tmp_path)


# WebNLG 2017 and DART JSON --------------------------------------------------------------------------------------


def _webnlg_entry(triples, lexes, category="Airport"):
    return {
        "category": category,
        "lexicalisations": [
            {"comment": comment, "lang": "", "lex": lex, "xml_id": "Id1"} for comment, lex in lexes
        ],
        "modifiedtripleset": [{"subject": s, "property": p, "object": o} for s, p, o in triples],
        "size": str(len(triples)),
    }


def _write_webnlg(folder, splits):
    folder.mkdir(parents=True, exist_ok=True)
    for file, entries in splits.items():
        document = {"entries": [{str(i): entry} for i, entry in enumerate(entries, 1)]}
        (folder / file).write_text(json.dumps(document), encoding="utf-8")


def _webnlg_splits():
    train = [
        _webnlg_entry([(f"City_{i}", "country", "Denmark")], [("good", f"City {i} is in Denmark.")])
        for i in range(4)
    ]
    train.append(
        _webnlg_entry([("Bad", "p", "o")], [("toFix", "Not a reference.")])
    )  # no good lexicalisation
    test = [
        _webnlg_entry(
            [("Aarhus", "leaderName", "Jacob_Bundsgaard"), ("Aarhus", "country", "Denmark")],
            [("good", "Jacob Bundsgaard leads Aarhus."), ("bad", "Skipped."), ("good", "Aarhus, Denmark.")],
        )
    ]
    dev = [_webnlg_entry([("Agra_Airport", "location", "Agra")], [("good", "Agra Airport is in Agra.")])]
    return {"train.json": train, "dev.json": dev, "test.json": test}


def test_webnlg_json_keeps_good_lexicalisations_grouped_by_tripleset(tmp_path):
    _write_webnlg(tmp_path / "data" / "webnlg_challenge_2017", _webnlg_splits())
    out = _prepare("webnlg", tmp_path, webnlg_dir=str(tmp_path / "data"))
    assert load_split(out, "test") == [
        {
            "text_a": "Aarhus : leaderName : Jacob_Bundsgaard | Aarhus : country : Denmark",
            "text_b": None,
            "label": "Jacob Bundsgaard leads Aarhus.",
            "references": ["Jacob Bundsgaard leads Aarhus.", "Aarhus, Denmark."],
        }
    ]
    assert load_split(out, "train")[0]["text_a"] == "City_0 : country : Denmark"
    meta = read_meta(out)
    assert (meta["metric_suite"], meta["metrics"]) == ("webnlg", ["bleu", "meteor", "ter"])
    assert meta["splits"] == {"train": 4, "validation": 1, "test": 1} and meta["dropped"]["malformed"] == 1


def test_webnlg_entry_without_references_names_file_and_entry(tmp_path):
    splits = _webnlg_splits()
    splits["test.json"].append(_webnlg_entry([("A", "b", "C")], []))
    _write_webnlg(tmp_path / "webnlg", splits)
    with pytest.raises(DataError, match=r"test\.json, entry 2: no lexicalisations"):
        _prepare("webnlg", tmp_path, webnlg_dir=str(tmp_path / "webnlg"))
    splits["test.json"][-1] = _webnlg_entry([("A", 7, "C")], [("good", "A is C.")])  # accepted, before
    _write_webnlg(tmp_path / "webnlg", splits)
    with pytest.raises(DataError, match=r"test\.json, entry 2: every triple must have a text subject"):
        _prepare("webnlg", tmp_path, webnlg_dir=str(tmp_path / "webnlg"))
    (tmp_path / "webnlg" / "test.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.json: not a readable JSON file \(nested too deeply\)"):
        _prepare("webnlg", tmp_path, webnlg_dir=str(tmp_path / "webnlg"))
    (tmp_path / "webnlg" / "dev.json").write_text('{"not": "entries"}', encoding="utf-8")
    with pytest.raises(DataError, match=r"dev\.json: expected an object with an 'entries' list"):
        _prepare("webnlg", tmp_path, webnlg_dir=str(tmp_path / "webnlg"))


def _dart_entry(triples, texts):
    return {
        "tripleset": [list(triple) for triple in triples],
        "subtree_was_extended": False,
        "annotations": [{"source": "WikiSQL_decl_sents", "text": text} for text in texts],
    }


def _write_dart(folder, test_texts=("Mars Hill College joined in 1973.", "It joined in 1973.")):
    folder.mkdir(parents=True, exist_ok=True)
    train = [_dart_entry([(f"Team {i}", "LOCATION", "Texas")], [f"Team {i} is in Texas."]) for i in range(3)]
    files = {
        "train": train,
        "dev": [_dart_entry([("Dev", "[TITLE]", "Dev page")], ["Dev."])],
        "test": [
            _dart_entry(
                [
                    ("Mars Hill College", "JOINED", "1973"),
                    ("Mars Hill College", "LOCATION", "Mars Hill, North Carolina"),
                ],
                test_texts,
            )
        ],
    }
    for name, entries in files.items():
        (folder / f"dart-v1.1.1-full-{name}.json").write_text(json.dumps(entries), encoding="utf-8")


def test_dart_json_lower_cases_properties_and_groups_annotations(tmp_path):
    _write_dart(tmp_path / "dart")
    out = _prepare("dart", tmp_path, dart_dir=str(tmp_path))
    assert load_split(out, "test") == [
        {
            "text_a": "Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina",
            "text_b": None,
            "label": "Mars Hill College joined in 1973.",
            "references": ["Mars Hill College joined in 1973.", "It joined in 1973."],
        }
    ]
    assert load_split(out, "validation")[0]["text_a"] == "Dev : [title] : Dev page"
    meta = read_meta(out)
    assert meta["metric_suite"] == "webnlg" and meta["splits"] == {"train": 3, "validation": 1, "test": 1}


def test_dart_empty_annotation_text_names_file_and_entry(tmp_path):
    _write_dart(tmp_path, test_texts=("Fine.", ""))
    with pytest.raises(
        DataError, match=r"dart-v1\.1\.1-full-test\.json, entry 1, annotation 2: empty reference"
    ):
        _prepare("dart", tmp_path, dart_dir=str(tmp_path))


# BIG-bench GEM tasks, carving grouped by source -----------------------------------------------------------------

GEM_E2E = [  # (input, target): 12 MRs with 1 to 3 references, one duplicate pair, one malformed input
    (
        f"name: Place {i}, eatType: pub, area: {'riverside' if i % 2 else 'city centre'}",
        f"Place {i}, reference {j}.",
    )
    for i in range(12)
    for j in range(1 + i % 3)
]
GEM_E2E += [GEM_E2E[0], ("colour: red", "Not an E2E input.")]
GEM_WEBNLG = [
    (
        f"(Thing_{i} | country | Land_{i}), (Thing_{i} | capital | City_(x{i}))",
        [f"Thing {i}, ref {j}." for j in range(1 + i % 3)],
    )
    for i in range(10)
]


def _write_archive(path, e2e, webnlg):
    documents = {
        "gem/e2e_nlg": [
            {"input": i, "target": t, "comment": f"e2e_nlg-test-{n}"} for n, (i, t) in enumerate(e2e)
        ],
        "gem/webnlg_en": [
            {"input": i, "target": t, "comment": f"web_nlg_en-test-{n}"} for n, (i, t) in enumerate(webnlg)
        ],
    }
    with tarfile.open(path, "w:gz") as archive:
        for folder, examples in documents.items():
            payload = json.dumps({"name": folder.split("/")[1], "examples": examples}).encode()
            info = tarfile.TarInfo(f"{PREFIX}/{folder}/task.json")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return str(_write_archive(tmp_path_factory.mktemp("bb") / "bigbench-1.0.0.tar.gz", GEM_E2E, GEM_WEBNLG))


def test_gem_e2e_is_carved_by_source_with_every_reference_in_one_split(archive, tmp_path):
    out = _prepare("gem_e2e_nlg", tmp_path, bigbench_archive=archive)
    meta = read_meta(out)
    assert meta["kind"] == "generation" and meta["metric_suite"] == "e2e"
    assert meta["dropped"] == {"duplicate": 1, "overlap": 0, "malformed": 1}
    assert meta["splits"]["test"] == 3 and meta["splits"]["validation"] == 2
    train, validation, test = (_sources(out, split) for split in ("train", "validation", "test"))
    assert not (train & validation or train & test or validation & test)
    assert len(train | validation | test) == 12 and meta["train_sources"] == 7
    references = {
        row["text_a"]: row["references"] for split in ("validation", "test") for row in load_split(out, split)
    }
    for source, refs in references.items():
        number = int(source.split("Place ")[1].split(" |")[0])
        assert refs == [f"Place {number}, reference {j}." for j in range(1 + number % 3)]
    assert meta["splits"]["train"] == sum(1 + i % 3 for i in range(12)) - sum(map(len, references.values()))
    assert load_split(out, "train")[0]["text_a"].startswith("name : Place ")


def test_gem_webnlg_reads_target_lists_and_relinearises(archive, tmp_path):
    out = _prepare("gem_webnlg_en", tmp_path, bigbench_archive=archive)
    rows = load_split(out, "test") + load_split(out, "validation")
    assert len(rows) == 5 and all(len(row["references"]) >= 1 for row in rows)
    number = int(rows[0]["text_a"].split("Thing_")[1].split(" ")[0])
    assert (
        rows[0]["text_a"]
        == f"Thing_{number} : country : Land_{number} | Thing_{number} : capital : City_(x{number})"
    )
    assert rows[0]["references"] == [f"Thing {number}, ref {j}." for j in range(1 + number % 3)]
    assert read_meta(out)["metrics"] == ["bleu", "meteor", "ter"]


def test_carving_does_not_depend_on_the_order_of_the_examples(archive, tmp_path):
    shuffled = GEM_E2E[:]
    random.Random(1).shuffle(shuffled)
    other = str(_write_archive(tmp_path / "bigbench-1.0.0.tar.gz", shuffled, GEM_WEBNLG))
    first = _prepare("gem_e2e_nlg", tmp_path / "a", bigbench_archive=archive)
    second = _prepare("gem_e2e_nlg", tmp_path / "b", bigbench_archive=other)
    for split in ("validation", "test"):  # the same sources, each with the same references (in source order)
        assert _grouped(first, split) == _grouped(second, split)
    assert _sources(first, "train") == _sources(second, "train")
    reseeded = _prepare("gem_e2e_nlg", tmp_path / "c", bigbench_archive=archive, split_seed=2)
    assert _sources(reseeded, "test") != _sources(first, "test")


def test_caps_count_sources_for_evaluation_and_pairs_for_training(archive, tmp_path):
    out = _prepare(
        "gem_e2e_nlg", tmp_path, bigbench_archive=archive, max_train_examples=5, max_eval_examples=1
    )
    meta = read_meta(out)
    assert meta["splits"] == {"train": 5, "validation": 1, "test": 1}
    uncapped = _prepare("gem_e2e_nlg", tmp_path / "uncapped", bigbench_archive=archive)
    assert _sources(out, "test") <= _sources(uncapped, "test")
    pairs = {(row["text_a"], row["label"]) for row in load_split(uncapped, "train")}
    assert {(row["text_a"], row["label"]) for row in load_split(out, "train")} <= pairs


def test_too_few_sources_to_carve_is_an_error(archive, tmp_path):
    with pytest.raises(DataError, match=r"'gem_e2e_nlg' has 12 distinct training sources, too few to carve"):
        _prepare("gem_e2e_nlg", tmp_path, bigbench_archive=archive, validation_size=6, test_size=6)


# meta.json kind ---------------------------------------------------------------------------------------------------


def test_classification_meta_has_a_kind_and_old_folders_default_to_it(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(20)), encoding="utf-8")
    entry = {"path": str(data), "text_columns": ["text"], "label_column": "label", "metric": "accuracy"}
    out = prepare_task("reviews", {"reviews": entry}, DATA_CFG, tmp_path / "reviews")
    meta = read_meta(out)
    assert meta["kind"] == "classification" and "metric_suite" not in meta
    del meta["kind"]
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert read_meta(out)["kind"] == "classification"
