"""Data-to-text generation tasks (the paper's NLG part): E2E, WebNLG 2017, DART, and BIG-bench's GEM copies.

Every reader gives (source, target) pairs, `{"text_a": <linearised source>, "text_b": None, "label": <target>}`,
with the source linearised as the LoRA / AdaMix NLG code feeds it to GPT-2 (`NLG/src/format_converting_*.py`);
`flows.data.generation` then groups the evaluation splits by source. Where each task reads from:

- `e2e_nlg`: the E2E NLG Challenge in its original layout, params `data.e2e_dir` holding `trainset.csv`,
  `devset.csv` and `testset_w_refs.csv` (columns `mr`, `ref`; one row per (MR, reference)); without it, the Hub
  (`e2e_nlg`, the original the paper used, else `GEM/e2e_nlg`, columns `meaning_representation` and `target` / `references` or
  `human_reference`). The MR `name[The Vaults], eatType[pub], priceRange[more than £30]` becomes
  `name : The Vaults | Type : pub | price : more than £30`: attributes in the MR's order, `eatType` renamed
  `Type`, `priceRange` `price`, `familyFriendly` `family friendly`, the others (`name`, `food`,
  `customer rating`, `area`, `near`) kept, as in the official `data/e2e/*.txt`. Those files are also
  tokenised (`£ 30`, `family - friendly`); here values and references stay as the challenge ships them.
  `GEM/e2e_nlg` is the cleaned E2E (Dušek et al. 2019), the fallback only.
- `webnlg`: WebNLG 2017 as the LoRA / AdaMix data folder has it, params `data.webnlg_dir` holding
  `{train,dev,test}.json` (or `webnlg_challenge_2017/` with them): `{"entries": [{"<n>": {"modifiedtripleset":
  [{"subject", "property", "object"}, ...], "lexicalisations": [{"comment", "lex"}, ...], "category"}}]}`.
  Triples are joined as the official converter does, `Subj : property : Obj | Subj2 : property2 : Obj2`
  (entities as written, underscores kept); only lexicalisations whose comment is `good` are references, and an
  entry without one is skipped (as there) and counted as malformed.
- `dart`: DART 1.1.1, params `data.dart_dir` holding `dart-v1.1.1-full-{train,dev,test}.json` (or `dart/` with
  them): `[{"tripleset": [[s, p, o], ...], "annotations": [{"source", "text"}, ...]}]`; linearised the same way
  with the property lower-cased, as the official converter does.
- `gem_e2e_nlg`, `gem_webnlg_en`: offline, from the BIG-bench 1.0.0 sdist (`flows.data.bigbench`; params
  `data.bigbench_archive`), tasks `gem/e2e_nlg` and `gem/webnlg_en`. Their examples are GEM test examples:
  `{"input": "name: Blue Spice, eatType: coffee shop", "target": str}` (1,000 pairs, 213 MRs, 1 to 35
  references each) and `{"input": "(Subj | property | Obj), (...)", "target": [str, ...]}` (1,001 tripleset
  inputs, each once, 1 to 5 references, 2,907 pairs). Inputs are re-linearised into the official formats above;
  one that does not parse is skipped and counted. With no validation or test split, both are carved out of
  the pool grouped by source.

E2E is scored with the E2E challenge's suite, WebNLG and DART with the WebNLG one (`flows.nlg_metrics`); the
metric names are those suites' keys lower-cased. A source or reference that is empty, an entry without
references, or a file without its columns or keys is a DataError naming the file and row.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bigbench import VERSION as BIGBENCH_VERSION
from .bigbench import read_task_examples
from .nlg_text import (
    gem_e2e_source,
    gem_webnlg_source,
    linearise_e2e,
    linearise_triples,
    make_pair,
    parse_e2e_mr,
)
from .source import GENERATION, DataError, Example, TaskSource
from .tables import load_hub

METRIC_SUITES: dict[str, tuple[str, ...]] = {
    "e2e": ("bleu", "nist", "meteor", "rouge_l", "cider"),
    "webnlg": ("bleu", "meteor", "ter"),
}
"""Metric names of each NLG suite (flows.nlg_metrics' `E2E_METRICS` / `WEBNLG_METRICS` lower-cased), primary first."""

_Splits = dict[str, list[Example]]


@dataclass(frozen=True)
class _NlgTask:
    suite: str  # a key of METRIC_SUITES
    about: str
    read: Callable[[dict], tuple[_Splits, str, int]]  # data section -> (pairs by split, origin, skipped)


def read_generation(name: str, data_cfg: dict) -> TaskSource:
    """Read one generation task as (source, target) pairs per split.

    Args:
        name: A key of `GENERATION_TASKS`.
        data_cfg: params.yaml's `data` section (`e2e_dir`, `webnlg_dir`, `dart_dir`, `bigbench_archive`).

    Returns:
        The task, `kind` generation: `train`, and `validation` / `test` where the source has them (the GEM
        tasks have only `train`, which flows.data carves them out of).

    Raises:
        DataError: A missing folder or file, a file that is not in the expected layout, an empty source or
            reference (naming the file and row), or (E2E without e2e_dir) the Hub out of reach.
    """
    task = GENERATION_TASKS[name]
    splits, origin, skipped = task.read(data_cfg)
    return TaskSource(
        name=name,
        splits=splits,
        label_names=[],
        metrics=list(METRIC_SUITES[task.suite]),
        text_pair=False,
        description=f"{task.about} from {origin}",
        malformed=skipped,
        kind=GENERATION,
        metric_suite=task.suite,
    )


def _folder(configured: str | os.PathLike | None, key: str, files: tuple[str, ...], nested: str) -> Path:
    """The folder holding `files`: the configured one, or its subfolder `nested` (the official data layout)."""
    if configured is None:
        raise DataError(
            f"this task is only read from a local folder: set params key data.{key} to a folder with "
            f"{', '.join(files)}"
        )
    base = Path(configured).expanduser()
    for folder in (base, base / nested):
        if all((folder / file).is_file() for file in files):
            return folder
    missing = [file for file in files if not (base / file).is_file()]
    raise DataError(f"params key data.{key}: {base} (or {base / nested}) lacks {', '.join(missing)}")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise DataError(f"{path}: not a readable JSON file (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a readable JSON file ({error})") from error


# E2E ------------------------------------------------------------------------------------------------------------

_E2E_FILES = (("train", "trainset.csv"), ("validation", "devset.csv"), ("test", "testset_w_refs.csv"))
_E2E_HINT = (
    "Set params key data.e2e_dir to a folder with the original E2E csv files (trainset.csv, devset.csv, "
    "testset_w_refs.csv)."
)
_E2E_HUB = (  # (repository, MR column, reference columns: a list column first, then a text column)
    ("e2e_nlg", "meaning_representation", (None, "human_reference")),  # the original, as in the paper
    ("GEM/e2e_nlg", "meaning_representation", ("references", "target")),  # the cleaned E2E
)


def _read_e2e(data_cfg: dict) -> tuple[_Splits, str, int]:
    if data_cfg.get("e2e_dir") is None:
        return _read_e2e_hub()
    files = tuple(file for _, file in _E2E_FILES)
    folder = _folder(data_cfg["e2e_dir"], "e2e_dir", files, "e2e-dataset")
    return {split: _read_e2e_csv(folder / file) for split, file in _E2E_FILES}, f"local folder {folder}", 0


def _read_e2e_csv(path: Path) -> list[Example]:
    """One E2E csv file's pairs; a file that is not UTF-8, has a field past the csv module's limit (131,072
    characters: no MR or reference is near it) or has no row after its header is a DataError naming it."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(_e2e_rows(path, csv.DictReader(handle)))
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: line {_first_non_utf8_line(path)} is not UTF-8 text (the E2E files are)"
        ) from None
    except csv.Error as error:
        raise DataError(f"{path}: not a readable csv file ({error})") from None
    if not rows:
        raise DataError(f"{path}: no rows after the header")
    return [_e2e_pair(row["mr"], row["ref"], f"{path}, row {n}") for n, row in enumerate(rows, 1)]


def _first_non_utf8_line(path: Path) -> int:
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return data.count(b"\n", 0, error.start) + 1
    return 0


def _e2e_rows(path: Path, reader: csv.DictReader) -> csv.DictReader:
    missing = [column for column in ("mr", "ref") if column not in (reader.fieldnames or [])]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} (the E2E csv files have 'mr' and 'ref'); "
            f"found {reader.fieldnames or 'no header'}"
        )
    return reader


def _e2e_pair(mr: Any, ref: Any, where: str) -> Example:
    attributes = parse_e2e_mr(mr) if isinstance(mr, str) else None
    if attributes is None:
        raise DataError(f"{where}: MR {mr!r} is not a list of attribute[value] pairs")
    return make_pair(linearise_e2e(attributes), ref, where)


def _read_e2e_hub() -> tuple[_Splits, str, int]:
    failures = []
    for position, (repo, mr_column, (list_column, text_column)) in enumerate(_E2E_HUB):
        following = _E2E_HUB[position + 1][0] if position + 1 < len(_E2E_HUB) else None
        hint = f"Trying '{following}' next." if following else _E2E_HINT
        try:
            dataset = load_hub(repo, None, "E2E", hint)
        except DataError as error:
            failures.append(str(error))
            continue
        splits = {}
        for split in ("train", "validation", "test"):
            if split not in dataset:
                raise DataError(f"{repo} has no split '{split}'; it has {list(dataset)}")
            rows = dataset[split].to_pandas().to_dict("records")
            splits[split] = [
                _e2e_pair(row[mr_column], ref, f"{repo} {split}, row {n}")
                for n, row in enumerate(rows, 1)
                for ref in _hub_references(row, list_column, text_column)
            ]
        return splits, f"Hugging Face Hub dataset {repo}", 0
    raise DataError("; then ".join(failures))


def _hub_references(row: dict, list_column: str | None, text_column: str) -> list:
    """A row's references: its list column where that is non-empty (GEM evaluation splits), else its text."""
    listed = row.get(list_column) if list_column else None
    if listed is not None and not isinstance(listed, str) and len(listed) > 0:
        return list(listed)
    return [row.get(text_column)]


# WebNLG 2017 and DART ---------------------------------------------------------------------------------------------

_SPLIT_STEMS = (("train", "train"), ("validation", "dev"), ("test", "test"))
_WEBNLG_FILES = tuple((split, f"{stem}.json") for split, stem in _SPLIT_STEMS)
_DART_FILES = tuple((split, f"dart-v1.1.1-full-{name}.json") for split, name in _SPLIT_STEMS)


def _read_webnlg(data_cfg: dict) -> tuple[_Splits, str, int]:
    files = tuple(file for _, file in _WEBNLG_FILES)
    folder = _folder(data_cfg.get("webnlg_dir"), "webnlg_dir", files, "webnlg_challenge_2017")
    splits, skipped = {}, 0
    for split, file in _WEBNLG_FILES:
        splits[split], without_good = _webnlg_pairs(folder / file)
        skipped += without_good
    return splits, f"local folder {folder}", skipped


def _webnlg_pairs(path: Path) -> tuple[list[Example], int]:
    document = _load_json(path)
    entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected an object with an 'entries' list (the WebNLG 2017 JSON layout)")
    pairs, without_good = [], 0
    for n, wrapped in enumerate(entries, 1):
        where = f"{path}, entry {n}"
        if not isinstance(wrapped, dict) or len(wrapped) != 1:
            raise DataError(f'{where}: expected {{"<id>": {{...}}}}, one entry under its id')
        entry = next(iter(wrapped.values()))
        triples = entry.get("modifiedtripleset") if isinstance(entry, dict) else None
        lexicalisations = entry.get("lexicalisations") if isinstance(entry, dict) else None
        if not isinstance(triples, list) or not triples or not all(isinstance(t, dict) for t in triples):
            raise DataError(f"{where}: 'modifiedtripleset' must be a non-empty list of triples")
        if not isinstance(lexicalisations, list) or not lexicalisations:
            raise DataError(f"{where}: no lexicalisations (every entry needs at least one reference)")
        parts = [tuple(t.get(key) for key in ("subject", "property", "object")) for t in triples]
        if not all(isinstance(part, str) for triple in parts for part in triple):
            raise DataError(f"{where}: every triple must have a text subject, property and object")
        source = linearise_triples(parts)  # type: ignore[arg-type]
        good = [lex for lex in lexicalisations if isinstance(lex, dict) and lex.get("comment") == "good"]
        if not good:
            without_good += 1
        pairs.extend(
            make_pair(source, lex.get("lex"), f"{where}, lexicalisation {i}") for i, lex in enumerate(good, 1)
        )
    return pairs, without_good


def _read_dart(data_cfg: dict) -> tuple[_Splits, str, int]:
    files = tuple(file for _, file in _DART_FILES)
    folder = _folder(data_cfg.get("dart_dir"), "dart_dir", files, "dart")
    return {split: _dart_pairs(folder / file) for split, file in _DART_FILES}, f"local folder {folder}", 0


def _dart_pairs(path: Path) -> list[Example]:
    document = _load_json(path)
    if not isinstance(document, list):
        raise DataError(f"{path}: expected a list of entries (the DART JSON layout)")
    pairs = []
    for n, entry in enumerate(document, 1):
        where = f"{path}, entry {n}"
        triples = entry.get("tripleset") if isinstance(entry, dict) else None
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        if not isinstance(triples, list) or not triples:
            raise DataError(f"{where}: 'tripleset' must be a non-empty list of [subject, property, object]")
        if not all(
            isinstance(t, list) and len(t) == 3 and all(isinstance(x, str) for x in t) for t in triples
        ):
            raise DataError(f"{where}: every triple must be three texts [subject, property, object]")
        if not isinstance(annotations, list) or not annotations:
            raise DataError(f"{where}: no annotations (every entry needs at least one reference)")
        source = linearise_triples((s, p.lower(), o) for s, p, o in triples)
        for i, annotation in enumerate(annotations, 1):
            text = annotation.get("text") if isinstance(annotation, dict) else None
            pairs.append(make_pair(source, text, f"{where}, annotation {i}"))
    return pairs


# BIG-bench GEM ----------------------------------------------------------------------------------------------------


def _gem_reader(
    folder: str, convert: Callable[[str], str | None]
) -> Callable[[dict], tuple[_Splits, str, int]]:
    def read(data_cfg: dict) -> tuple[_Splits, str, int]:
        records, origin = read_task_examples(folder, data_cfg.get("bigbench_archive"))
        pairs, skipped = [], 0
        for n, record in enumerate(records, 1):
            raw = record.get("input") if isinstance(record, dict) else None
            source = convert(raw) if isinstance(raw, str) else None
            if source is None:
                skipped += 1
                continue
            targets = record.get("target")
            targets = [targets] if isinstance(targets, str) else targets
            if not isinstance(targets, list) or not targets:
                raise DataError(
                    f"{origin}, example {n}: no target (every example needs at least one reference)"
                )
            pairs.extend(make_pair(source, target, f"{origin}, example {n}") for target in targets)
        if not pairs:
            raise DataError(f"{origin}: none of its {len(records)} examples parse as '{folder}' inputs")
        return {"train": pairs}, origin, skipped

    return read


GENERATION_TASKS: dict[str, _NlgTask] = {
    "e2e_nlg": _NlgTask("e2e", "E2E NLG Challenge (restaurant MRs to text)", _read_e2e),
    "webnlg": _NlgTask("webnlg", "WebNLG 2017 (DBpedia triples to text)", _read_webnlg),
    "dart": _NlgTask("webnlg", "DART 1.1.1 (open-domain triples to text)", _read_dart),
    "gem_e2e_nlg": _NlgTask(
        "e2e", f"BIG-bench {BIGBENCH_VERSION} task 'gem/e2e_nlg' (GEM E2E test examples)",
        _gem_reader("gem/e2e_nlg", gem_e2e_source),
    ),
    "gem_webnlg_en": _NlgTask(
        "webnlg", f"BIG-bench {BIGBENCH_VERSION} task 'gem/webnlg_en' (GEM WebNLG test examples)",
        _gem_reader("gem/webnlg_en", gem_webnlg_source),
    ),
}  # fmt: skip
"""Built-in generation task name -> its metric suite, what it is, and its reader."""
