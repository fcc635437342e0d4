"""Where every stage reads and writes: one place for the pipeline's folder layout (dvc.yaml mirrors it).

Every folder lives under the project root: ``$ADAMIX_ROOT`` when set, else the repository (:func:`project_root`,
read at each call, so a test or a second project can redirect a stage without touching the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: the default project root
ROOT_ENV = "ADAMIX_ROOT"
RESOLVED_PARAMS = "params.resolved.yaml"
GRID_PARAMS = "params.grid.yaml"


def project_root() -> Path:
    """The folder the stages read and write under: ``$ADAMIX_ROOT`` when set and non-empty, else ROOT."""
    value = os.environ.get(ROOT_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else ROOT


def prepared_dir(task: str, root: Path | None = None) -> Path:
    """Normalised splits of one task (the `prepare` stage)."""
    return (root or project_root()) / "data" / "prepared" / task


def split_dir(task: str, seed: int, root: Path | None = None) -> Path:
    """The splits one seed trains on: K-shot samples, or the full data passed through (the `fewshot` stage)."""
    return (root or project_root()) / "data" / "splits" / task / f"seed{seed}"


def run_dir(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """A trained run: adapters + head (or the full model), history and run info (the `train` stage)."""
    return (root or project_root()) / "runs" / task / method / f"seed{seed}"


def merged_dir(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """The deployable artifact after merging, with parameter counts (the `merge` stage)."""
    return (root or project_root()) / "merged" / task / method / f"seed{seed}"


def result_path(task: str, method: str, seed: int, root: Path | None = None) -> Path:
    """Evaluation metrics of one run for every inference mode (the `evaluate` stage)."""
    return (root or project_root()) / "results" / task / method / f"seed{seed}.json"


def results_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "results"


def reports_dir(root: Path | None = None, params: dict | None = None) -> Path:
    return (root or project_root()) / (params["report"]["dir"] if params else "reports")
