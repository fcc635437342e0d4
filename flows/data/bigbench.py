"""Sentence-pair tasks from BIG-bench, read straight out of the `bigbench` 1.0.0 source archive on PyPI.

No model hub is needed: PyPI's `bigbench-1.0.0.tar.gz` ships every BIG-bench task as a JSON file, and three of
them are sentence-pair classification tasks a masked encoder can be fine-tuned on:

- `vitaminc`: VitaminC fact verification (Wikipedia evidence, claim; True / False / Neither), 54,668 pairs.
- `epistemic_reasoning`: premise / hypothesis with nested beliefs (entailment / non-entailment), 2,000 pairs.
- `presuppositions_nli`: NLI over presuppositions (entailment / neutral / contradiction), 735 pairs.

Each task JSON lists examples as `{"input": "<both texts in one string>", "target_scores": {label: 0 or 1}}`;
a per-task pattern splits `input` into `text_a` and `text_b`, and the label is the one target scored highest.
The archive's GEM data-to-text tasks (`gem/e2e_nlg`, `gem/webnlg_en`) are generation tasks, read by
`flows.data.nlg` through `read_task_examples`. The package is never installed (its dependencies are heavy)
and nothing in it is executed: the archive is read as data. Where it comes from: params `data.bigbench_archive` (the .tar.gz, or an unpacked copy), else the
cached download in `~/.cache/adamix` (`$ADAMIX_CACHE`), else it is fetched once from PyPI's file host (342 MB,
progress shown) and checked against its published SHA-256 before it is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .source import DataError, Example, TaskSource

VERSION = "1.0.0"
ARCHIVE_NAME = f"bigbench-{VERSION}.tar.gz"
ARCHIVE_URL = (
    "https://files.pythonhosted.org/packages/95/f8/c019b3579df548a04cac12342cfcb878e50ddf6cfcd7fddba8cfc721c157/"
    + ARCHIVE_NAME
)
ARCHIVE_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"  # PyPI's sdist
CACHE_ENV = "ADAMIX_CACHE"


@dataclass(frozen=True)
class _PairTask:
    folder: str  # benchmark_tasks/<folder>/task.json
    label_names: tuple[str, ...]  # the task's target names, in label-id order
    pattern: re.Pattern[str]  # splits `input` into the groups `a` and `b`
    about: str


BIGBENCH_TASKS: dict[str, _PairTask] = {
    "vitaminc": _PairTask(
        folder="vitaminc_fact_verification",
        label_names=("True", "False", "Neither"),
        pattern=re.compile(r"(?P<a>.+)\nClaim: (?P<b>.+)", re.S),
        about="VitaminC fact verification: a Wikipedia passage and a claim it supports, refutes or leaves open",
    ),
    "epistemic_reasoning": _PairTask(
        folder="epistemic_reasoning",
        label_names=("entailment", "non-entailment"),
        pattern=re.compile(r"Premise: (?P<a>.+?) Hypothesis: (?P<b>.+)", re.S),
        about="epistemic reasoning: does a premise about beliefs entail the hypothesis",
    ),
    "presuppositions_nli": _PairTask(
        folder="presuppositions_as_nli",
        label_names=("entailment", "neutral", "contradiction"),
        pattern=re.compile(
            r"Sentence 1: (?P<a>.+?)\s*\nSentence 2: (?P<b>.+?)\s*(?:The answer is:\s*)?", re.S
        ),
        about="presuppositions as NLI: entailment, neutral or contradiction between two sentences",
    ),
}
"""Built-in task name -> where it lives in the archive, its labels, and how its input splits into a pair."""


def read_bigbench(name: str, archive: str | os.PathLike | None) -> TaskSource:
    """Read one BIG-bench pair task as a `TaskSource` (all examples as `train`; flows.data carves the rest).

    Args:
        name: A key of `BIGBENCH_TASKS`.
        archive: params `data.bigbench_archive`: the sdist .tar.gz or a folder holding its unpacked tasks;
            None = the cached download, fetched first if absent.

    Returns:
        The task; rows whose input does not split into two texts, or whose target is not one known label, are
        skipped and counted in `malformed`.

    Raises:
        DataError: The archive is missing, unreadable, not BIG-bench, fails its checksum, or the task has no
            usable example.
    """
    task = BIGBENCH_TASKS[name]
    records, origin = read_task_examples(task.folder, archive)
    label_ids = {label: index for index, label in enumerate(task.label_names)}
    examples, malformed = [], 0
    for record in records:
        example = _parse(record, task, label_ids)
        if example is None:
            malformed += 1
        else:
            examples.append(example)
    if not examples:
        raise DataError(f"{origin}: none of its {len(records)} examples parse as '{name}' pairs")
    return TaskSource(
        name=name,
        splits={"train": examples},
        label_names=list(task.label_names),
        metrics=["accuracy"],
        text_pair=True,
        description=f"BIG-bench {VERSION} task '{task.folder}' ({task.about}) from {origin}",
        malformed=malformed,
    )


def read_task_examples(folder: str, archive: str | os.PathLike | None) -> tuple[list, str]:
    """The `examples` list of one BIG-bench task JSON, and where it was read from.

    Args:
        folder: The task's folder under `benchmark_tasks/` (e.g. `vitaminc_fact_verification`, `gem/e2e_nlg`).
        archive: params `data.bigbench_archive` (see `read_bigbench`).

    Raises:
        DataError: The archive is missing or unreadable, lacks the task, or the file is no BIG-bench task.
    """
    raw, origin = _task_json(locate_archive(archive), folder)
    try:
        records = json.loads(raw)["examples"]
        if not isinstance(records, list):
            raise TypeError("'examples' is not a list")
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{origin}: not a BIG-bench task file ({error})") from error
    return records, origin


def _parse(record: object, task: _PairTask, label_ids: dict[str, int]) -> Example | None:
    """One example, or None when its input does not split or its target is not exactly one known label."""
    if not isinstance(record, dict) or not isinstance(record.get("input"), str):
        return None
    scores = record.get("target_scores")
    if not isinstance(scores, dict) or not scores:
        return None
    if not all(isinstance(score, int | float) and not isinstance(score, bool) for score in scores.values()):
        return None
    best = max(scores.values())
    winners = [label for label, score in scores.items() if score == best]
    if len(winners) != 1 or winners[0] not in label_ids:
        return None
    match = task.pattern.fullmatch(record["input"].strip())
    if match is None:
        return None
    text_a, text_b = match["a"].strip(), match["b"].strip()
    if not text_a or not text_b:
        return None
    return {"text_a": text_a, "text_b": text_b, "label": label_ids[winners[0]]}


def cache_dir() -> Path:
    """Where the downloaded archive is kept: `$ADAMIX_CACHE`, else `$XDG_CACHE_HOME/adamix` or ~/.cache/adamix."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base).expanduser() / "adamix"


def locate_archive(archive: str | os.PathLike | None) -> Path:
    """The archive (or unpacked folder) to read: the configured one, else the cache, downloading it if needed.

    Raises:
        DataError: A configured path that does not exist; a download that fails or fails its checksum.
    """
    if archive is not None:
        path = Path(archive).expanduser()
        if not path.exists():
            raise DataError(
                f"params key data.bigbench_archive: no such file or folder: {path} "
                f"(the bigbench {VERSION} sdist, {ARCHIVE_NAME}, or a folder it was unpacked into)"
            )
        return path
    cached = cache_dir() / ARCHIVE_NAME
    if not cached.is_file():
        download_archive(cached)
    return cached


def download_archive(target: Path) -> Path:
    """Fetch the sdist from PyPI's file host into `target`, verify its SHA-256, then move it in place.

    Nothing is left at `target` unless the whole, verified archive is there (a partial download stays in a
    hidden staging file that is removed on any error).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=".bigbench-", suffix=".part", delete=False
    ) as part:
        staging = Path(part.name)
    try:
        _fetch(ARCHIVE_URL, staging)
        digest = file_sha256(staging)
        if digest != ARCHIVE_SHA256:
            raise DataError(
                f"downloaded {ARCHIVE_URL} has SHA-256 {digest}, expected {ARCHIVE_SHA256} (PyPI's bigbench "
                f"{VERSION}); nothing was kept"
            )
        staging.chmod(0o644)  # a temporary file is created private; the cached archive is ordinary data
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def _fetch(url: str, path: Path) -> None:
    """Stream `url` into `path` with a progress bar; a DataError naming the way out if it cannot be reached."""
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response, path.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {ARCHIVE_NAME}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors
        raise DataError(
            f"could not download bigbench {VERSION} ({error}) from {url}; fetch {ARCHIVE_NAME} some other way "
            f"(e.g. `pip download --no-deps --no-binary :all: bigbench=={VERSION}`) and set params key "
            f"data.bigbench_archive to its path"
        ) from error


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _task_json(source: Path, folder: str) -> tuple[bytes, str]:
    """The bytes of `<folder>/task.json` from an archive or an unpacked folder, and where they came from."""
    if source.is_dir():
        for candidate in (
            source / folder,
            source / "benchmark_tasks" / folder,
            source / "bigbench" / "benchmark_tasks" / folder,
            source / f"bigbench-{VERSION}" / "bigbench" / "benchmark_tasks" / folder,
        ):
            path = candidate / "task.json"
            if path.is_file():
                return path.read_bytes(), str(path)
        raise DataError(f"{source}: no {folder}/task.json in this folder or its bigbench/benchmark_tasks/")
    suffix = f"benchmark_tasks/{folder}/task.json"
    try:
        # Stream through the archive (no extraction to disk: member names are never used as paths).
        with tarfile.open(source, mode="r|*") as stream:
            for member in stream:
                if member.isfile() and member.name.endswith(suffix):
                    handle = stream.extractfile(member)
                    if handle is not None:
                        return handle.read(), f"{source}:{member.name}"
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{source}: not a readable tar archive ({error})") from error
    raise DataError(f"{source}: has no {suffix} (is it the bigbench {VERSION} sdist?)")
