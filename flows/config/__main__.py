"""Params from the shell: ``python -m flows.config resolve`` writes the resolved params and run grid, ``show`` prints
them, ``schema`` writes the JSON Schemas of params.yaml and of the profiles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .files import dump_yaml
from .json_schema import stale_schemas, write_schemas
from .params import ParamsError, load_params, resolve_to_file
from .paths import GRID_PARAMS, ROOT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows.config", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("resolve", "write the resolved params file"), ("show", "print resolved params")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        sub.add_argument("--profile", default=None, help="profile name or .yaml path (default: $PROFILE)")
        if name == "resolve":
            sub.add_argument("--out", default="params.resolved.yaml", help="output file")
            sub.add_argument(
                "--grid-out",
                default=None,
                help="run grid file for dvc.yaml vars (default: params.grid.yaml beside --out)",
            )
    schema = commands.add_parser(
        "schema", help="write params.schema.json and profiles/profile.schema.json in the repository root"
    )
    schema.add_argument("--check", action="store_true", help="write nothing; exit 1 if either file is stale")
    return parser


def _schema(check: bool) -> int:
    if check:
        stale = stale_schemas(ROOT)
        if stale:
            print(f"stale: {', '.join(stale)}: run `python -m flows.config schema`", file=sys.stderr)
            return 1
        return 0
    written = write_schemas(ROOT)
    print(
        f"wrote: {', '.join(written)}"
        if written
        else "unchanged: params.schema.json, profiles/profile.schema.json"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``resolve`` writes the resolved params file, ``show`` prints it, ``schema`` the JSON Schemas.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        0 on success, 2 on invalid parameters (the message goes to stderr, without a traceback), 1 for
        ``schema --check`` when a schema file is stale.
    """
    args = _parser().parse_args(argv)
    if args.command == "schema":
        return _schema(args.check)
    try:
        params = load_params(args.params, args.profile)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "show":
        sys.stdout.write(dump_yaml(params))
    else:
        # The grid belongs beside the resolved params it was made from, never in whatever folder this runs in.
        grid_out = args.grid_out or Path(args.out).parent / GRID_PARAMS
        written = resolve_to_file(params, args.out, grid_out)
        print(f"{'wrote' if written else 'unchanged'}: {args.out}, {grid_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
