"""Where every stage reads and writes: one place for the pipeline's folder layout (dvc.yaml mirrors it).

Every folder lives under the project root: ``$ADAMIX_ROOT`` when set, else the repository (:func:`project_root`,
read at each call, so a test or a second project can redirect a stage without touching the repository).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError

ROOT = Path(__file__).resolve().parents[2]  # the repository: the default project root
ROOT_ENV = "ADAMIX_ROOT"
RESOLVED_PARAMS = "params.resolved.yaml"
GRID_PARAMS = "params.grid.yaml"


# A name that becomes one folder or file name: letters, digits and _ . = + , - (variants: "adamix_adapter.lr=5e-4"),
# not starting with a dot, no "..", no separators. Every task, method and variant name reaches a path only here.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+,-]*$")


class UnsafeNameError(InputError):
    """A task, dataset, method or variant name that cannot be used as one folder name."""


def check_name(kind: str, name: object) -> str:
    """`name` if it is safe as a single path component, else UnsafeNameError naming the `kind` and the name.

    Example:
        >>> check_name("task", "rotten_tomatoes")
        'rotten_tomatoes'
    """
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name or len(name) > 200:
        raise UnsafeNameError(
            f"{kind} name {name!r} cannot be a folder name: use letters, digits and _ . = + , - (not starting "
            "with '.', no '..', no '/' or '\\', at most 200 characters)"
        )
    return name


def project_root() -> Path:
    """The folder the stages read and write under: ``$ADAMIX_ROOT`` when set and non-empty, else ROOT."""
    value = os.environ.get(ROOT_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else ROOT


def _run_part(task: str, method: str) -> Path:
    return Path(check_name("task", task), check_name("method", method))


def prepared_dir(task: str, root: Path | None = None) -> Path:
    """Normalised splits of one task (the `prepare` stage)."""
    return (root or project_root()) / "data" / "prepared" / check_name("task", task)


def split_dir(task: str, seed: int, root: Path | None = None) -> Path:
    """The splits one seed trains on: K-shot samples, or the full data passed through (the `fewshot` stage)."""
    return (root or project_root()) / "data" / "splits" / check_name("task", task) / f"seed{int(seed)}"


def run_dir(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """A trained run: adapters + head (or the full model), history and run info (the `train` stage)."""
    return (root or project_root()) / "runs" / _run_part(task, method) / f"seed{int(seed)}"


def merged_dir(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """The deployable artifact after merging, with parameter counts (the `merge` stage)."""
    return (root or project_root()) / "merged" / _run_part(task, method) / f"seed{int(seed)}"


def result_path(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """Evaluation metrics of one run for every inference mode (the `evaluate` stage)."""
    return (root or project_root()) / "results" / _run_part(task, method) / f"seed{int(seed)}.json"


def timing_path(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """Wall-clock timings of one training run: outside every DVC-tracked output, so reruns keep their hashes."""
    return (root or project_root()) / "timings" / _run_part(task, method) / f"seed{int(seed)}.json"


def results_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "results"


def reports_dir(root: Path | None = None, params: dict | None = None) -> Path:
    return (root or project_root()) / (params["report"]["dir"] if params else "reports")
