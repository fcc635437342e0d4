"""The `prepare` stage: read one task from its source, normalise it, write its splits (data/prepared/<task>)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import paths
from ..data import prepare_task, read_meta


def prepare(params: dict, task: str, *, root: Path | None = None) -> Path:
    """Prepare `task` with the params' `datasets` and `data` sections; returns the task folder."""
    out = prepare_task(task, params["datasets"], params["data"], paths.prepared_dir(task, root))
    splits = read_meta(out)["splits"]
    print(f"[prepare] {task}: " + ", ".join(f"{k} {v:,}" for k, v in splits.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    from .common import run_stage

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True)
    return run_stage(parser, argv, lambda params, a: prepare(params, a.task))


if __name__ == "__main__":
    sys.exit(main())
