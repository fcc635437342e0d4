"""Preparing a generation task: deduplicate pairs, carve evaluation splits by source, cap, group references.

A generation source gives (source, target) pairs. The prepared folder keeps them as pairs for training, one row
per pair, and groups each evaluation split by source, one row per distinct source with all its references in
the order the source lists them (`label` is the first):

    train.jsonl       {"text_a": <source>, "text_b": null, "label": <target>}
    validation.jsonl  {"text_a": <source>, "text_b": null, "label": <first reference>, "references": [...]}
    test.jsonl        the same as validation

Steps: drop exact duplicate (source, target) pairs in every split, and training pairs whose source is in a fixed
evaluation split; carve the missing evaluation splits out of the training pool by source (every reference of a
source goes to one split), `test_size` / `validation_size` counting sources; cap training at
`max_train_examples` pairs and each evaluation split at `max_eval_examples` sources. Every choice ranks by the
keyed hash of `flows.data.source.keyed_rank`, so the result does not depend on the source's order or machine.
"""

from __future__ import annotations

from .source import CORE_SPLITS, GENERATION, DataError, Example, TaskSource, carve_counts, keyed_rank


def build_generation(
    source: TaskSource, data_cfg: dict, *, test_size: int | float, validation_size: int | float
) -> tuple[dict[str, list[Example]], dict]:
    """Deduplicate, split by source, cap and group a generation source.

    Args:
        source: A task read with `kind` generation (pairs in every split).
        data_cfg: params.yaml's `data` section (`split_seed`, `max_train_examples`, `max_eval_examples`).
        test_size: Sources to carve for `test` when the source has no test split (a fraction: of the sources).
        validation_size: The same for `validation`.

    Returns:
        The splits in file order (train as pairs, evaluation splits grouped) and the metadata.

    Raises:
        DataError: An empty source or reference, or too few training sources to carve the evaluation splits.
    """
    if data_cfg.get("test_from_unused"):
        raise DataError(f"task '{source.name}': data.test_from_unused is for classification tasks only")
    seed = data_cfg["split_seed"]
    dropped = {"duplicate": 0, "overlap": 0, "malformed": source.malformed}
    deduplicated = {}
    for split, pairs in source.splits.items():
        _check_texts(source.name, split, pairs)
        deduplicated[split] = _unique(pairs)
        dropped["duplicate"] += len(pairs) - len(deduplicated[split])
    pool = deduplicated.pop("train")
    fixed = {split: _group(pairs) for split, pairs in deduplicated.items()}
    held_out = {text for groups in fixed.values() for text in groups}
    train = [pair for pair in pool if pair["text_a"] not in held_out]
    dropped["overlap"] = len(pool) - len(train)

    sources = _group(train)
    sizes = {"test": test_size, "validation": validation_size}
    counts = carve_counts(source.name, sizes, fixed, len(sources), "distinct training sources")
    for split, count in counts.items():
        picked = _take(list(sources), count, seed, split)
        fixed[split] = {text: sources.pop(text) for text in picked}
    train = [pair for pair in train if pair["text_a"] in sources]

    cap = data_cfg["max_train_examples"]
    if cap is not None and len(train) > cap:
        chosen = set(_take([(p["text_a"], p["label"]) for p in train], cap, seed, "cap-train"))
        train = [pair for pair in train if (pair["text_a"], pair["label"]) in chosen]
    splits: dict[str, list[Example]] = {"train": train}
    order = ["validation", "test", *(split for split in fixed if split not in CORE_SPLITS)]
    for split in order:
        groups, cap = fixed[split], data_cfg["max_eval_examples"]
        kept = set(_take(list(groups), cap, seed, f"cap-{split}")) if cap is not None else set(groups)
        splits[split] = [_row(text, refs) for text, refs in groups.items() if text in kept]

    meta = {
        "task": source.name,
        "kind": GENERATION,
        "num_labels": 0,
        "label_names": [],
        "is_regression": False,
        "metrics": list(source.metrics),
        "primary_metric": source.metrics[0],
        "metric_suite": source.metric_suite,
        "text_pair": False,
        "splits": {split: len(rows) for split, rows in splits.items()},
        "references": {split: sum(len(row["references"]) for row in splits[split]) for split in order},
        "train_sources": len({pair["text_a"] for pair in train}),
        "extra_test_splits": [split for split in splits if split not in CORE_SPLITS],
        "source": source.description,
        "dropped": dropped,
    }
    return splits, meta


def _check_texts(task: str, split: str, pairs: list[Example]) -> None:
    """Readers name the file and row of an empty text; this guards any other source of pairs."""
    for index, pair in enumerate(pairs, 1):
        for field, what in (("text_a", "source"), ("label", "reference")):
            if not isinstance(pair[field], str) or not pair[field].strip():
                raise DataError(f"task '{task}', {split} pair {index}: empty {what}")


def _unique(pairs: list[Example]) -> list[Example]:
    """The first copy of each (source, target) pair, in order."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for pair in pairs:
        key = (pair["text_a"], pair["label"])
        if key not in seen:
            seen.add(key)
            kept.append(pair)
    return kept


def _group(pairs: list[Example]) -> dict[str, list[str]]:
    """Source -> its targets, sources in order of first appearance, targets in the order given."""
    groups: dict[str, list[str]] = {}
    for pair in pairs:
        groups.setdefault(pair["text_a"], []).append(pair["label"])
    return groups


def _take(keys: list, count: int | None, seed: int, salt: str) -> list:
    """`count` of `keys` (texts, or tuples of texts) with the lowest keyed hash; all of them if fewer."""
    if count is None or count >= len(keys):
        return list(keys)

    def rank(key: str | tuple[str, ...]) -> bytes:
        # A lone source ranks as prepare ranks a single text: (text, "").
        return keyed_rank(seed, salt, *((key, "") if isinstance(key, str) else key))

    return sorted(keys, key=rank)[:count]


def _row(text: str, references: list[str]) -> Example:
    return {"text_a": text, "text_b": None, "label": references[0], "references": list(references)}
