"""Where every stage reads and writes: one place for the pipeline's folder layout (dvc.yaml mirrors it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOLVED_PARAMS = "params.resolved.yaml"
GRID_PARAMS = "params.grid.yaml"


def prepared_dir(task: str, root: Path = ROOT) -> Path:
    """Normalised splits of one task (the `prepare` stage)."""
    return root / "data" / "prepared" / task


def split_dir(task: str, seed: int, root: Path = ROOT) -> Path:
    """The splits one seed trains on: K-shot samples, or the full data passed through (the `fewshot` stage)."""
    return root / "data" / "splits" / task / f"seed{seed}"


def run_dir(task: str, method: str, seed: int, root: Path = ROOT) -> Path:
    """A trained run: adapters + head (or the full model), history and run info (the `train` stage)."""
    return root / "runs" / task / method / f"seed{seed}"


def merged_dir(task: str, method: str, seed: int, root: Path = ROOT) -> Path:
    """The deployable artifact after merging, with parameter counts (the `merge` stage)."""
    return root / "merged" / task / method / f"seed{seed}"


def result_path(task: str, method: str, seed: int, root: Path = ROOT) -> Path:
    """Evaluation metrics of one run for every inference mode (the `evaluate` stage)."""
    return root / "results" / task / method / f"seed{seed}.json"


def results_dir(root: Path = ROOT) -> Path:
    return root / "results"


def reports_dir(root: Path = ROOT, params: dict | None = None) -> Path:
    return root / (params["report"]["dir"] if params else "reports")
