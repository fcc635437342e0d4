"""Shared command-line plumbing of the stage scripts: params loading and one clear error per bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..config import paths
from ..config.params import load_params
from ..errors import InputError

# Errors that mean bad input (config, data, paths, checkpoints): reported in one line, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (InputError, FileNotFoundError)


def run_stage(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    stage: Callable[[dict, Any], Any],
    *,
    default_params: str = paths.RESOLVED_PARAMS,
) -> int:
    """Parse `--params/--profile`, load and validate params, run `stage(params, args)`; exit 2 on bad input."""
    parser.add_argument(
        "--params",
        default=str(paths.project_root() / default_params),
        help=f"params file (default: {default_params} in the project root)",
    )
    parser.add_argument("--profile", default=None, help="profile merged over the params file")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, profile=args.profile or "")
        stage(params, args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
