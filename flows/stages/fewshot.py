"""The `fewshot` stage: LM-BFF-style K-shot splits of a prepared task, or the full data passed through.

For K > 0, train holds K examples of every class drawn from the prepared train split, and validation K
more per class drawn from the rest of it (disjoint from train), as in LM-BFF (Gao et al., 2021), whose
seeds 13, 21, 42, 87 and 100 are the usual ones. Test splits are copied unchanged. The draw ranks examples
by a keyed hash of (seed, text), so a seed always gives the same split. K = 0 passes every split through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import paths
from ..data import DataError, load_split, read_meta, stratified_take, write_task_dir

LMBFF_SEEDS: tuple[int, ...] = (13, 21, 42, 87, 100)
"""The K-shot sampling seeds LM-BFF reports means and deviations over."""


def make_fewshot_split(prepared_dir: str | Path, out_dir: str | Path, k: int, seed: int) -> Path:
    """Write the K-shot split (or, for k == 0, the full data) of one prepared task.

    Args:
        prepared_dir: A directory written by `flows.data.prepare_task`.
        out_dir: Directory to write (same layout; meta.json gains `k` and `seed`), replaced atomically.
        k: Examples per class for train, and again for validation; 0 means the full data.
        seed: Sampling seed.

    Returns:
        `out_dir` as a Path.

    Raises:
        DataError: k < 0, k > 0 on a regression or generation task, or a class with fewer than 2k train examples.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise DataError(f"few-shot k must be an integer >= 0 (0 = full data), got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"few-shot seed must be an integer, got {seed!r}")
    prepared = Path(prepared_dir)
    meta = read_meta(prepared)
    if k and meta.get("kind") == "generation":
        raise DataError(
            f"few-shot k = {k} draws k examples per class, and generation task '{meta['task']}' has no classes: "
            "set fewshot.k to 0 (cap the training pairs with data.max_train_examples instead)"
        )
    test_splits = ["test", *meta.get("extra_test_splits", [])]
    copied = [*test_splits] if k else ["train", "validation", *test_splits]
    for split in copied:
        if not (prepared / f"{split}.jsonl").is_file():
            raise DataError(f"split file not found: {prepared / f'{split}.jsonl'}")
    splits = {} if k == 0 else _draw(prepared, meta, k, seed)
    counts = {split: len(examples) for split, examples in splits.items()}
    counts.update({split: meta["splits"][split] for split in copied})
    order = ["train", "validation", *test_splits]
    out_meta = {**meta, "splits": {split: counts[split] for split in order}, "k": k, "seed": seed}
    copies = {split: prepared / f"{split}.jsonl" for split in copied}
    return write_task_dir(out_dir, splits, out_meta, copies=copies)


def split_for_seed(params: dict, task: str, seed: int, *, root: Path | None = None) -> Path:
    """Run the stage for one (task, seed): read `fewshot.k` from params, write the seed's split folder.

    Args:
        params: Validated parameters (the `fewshot` section is read).
        task: Task name; its prepared folder must exist.
        seed: Sampling seed.
        root: Project root the data folders live under (default: `paths.project_root()`).

    Returns:
        The written split folder.
    """
    k = params["fewshot"]["k"]
    out = make_fewshot_split(paths.prepared_dir(task, root), paths.split_dir(task, seed, root), k, seed)
    sizes = ", ".join(f"{split} {count:,}" for split, count in read_meta(out)["splits"].items())
    print(f"[fewshot] {task} seed {seed}: {sizes}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line of the stage: `python -m flows.stages.fewshot --task TASK --seed SEED`."""
    from .common import run_stage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return run_stage(parser, argv, lambda params, args: split_for_seed(params, args.task, args.seed))


def _draw(prepared: Path, meta: dict, k: int, seed: int) -> dict[str, list[dict]]:
    if meta["is_regression"]:
        raise DataError(f"task '{meta['task']}' is a regression task: K-shot needs classes (use k = 0)")
    train = load_split(prepared, "train")
    by_class: dict[int, list[dict]] = {label: [] for label in range(len(meta["label_names"]))}
    for example in train:
        by_class.setdefault(example["label"], []).append(example)
    short = {label: len(examples) for label, examples in by_class.items() if len(examples) < 2 * k}
    if short:
        names = meta["label_names"]
        said = ", ".join(
            f"'{names[label] if label < len(names) else label}' has {n}" for label, n in short.items()
        )
        raise DataError(
            f"task '{meta['task']}': K-shot with k={k} needs {2 * k} train examples per class (k for train, "
            f"k for validation), but class {said} in {prepared / 'train.jsonl'}"
        )
    chosen_train, chosen_validation = set(), set()
    for examples in by_class.values():
        picked, rest = stratified_take(examples, k, seed, "fewshot-train", stratify=False)
        held_out, _ = stratified_take(rest, k, seed, "fewshot-validation", stratify=False)
        chosen_train.update(map(id, picked))
        chosen_validation.update(map(id, held_out))
    # Both splits keep the prepared file's order.
    return {
        "train": [example for example in train if id(example) in chosen_train],
        "validation": [example for example in train if id(example) in chosen_validation],
    }


if __name__ == "__main__":
    sys.exit(main())
