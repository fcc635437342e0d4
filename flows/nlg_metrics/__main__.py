"""Command: score a predictions file against a references file in the E2E challenge's format, print JSON.

    python -m flows.nlg_metrics REFERENCES PREDICTIONS [--suite e2e|webnlg]

Bad input (a missing or empty file, an empty reference block, different numbers of reference blocks and
predictions) is one `error: ...` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InputError
from .files import read_pair
from .scores import e2e_scores, webnlg_scores

_SUITES = {"e2e": e2e_scores, "webnlg": webnlg_scores}


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (0, or 2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.nlg_metrics",
        description="NLG challenge metrics (E2E: BLEU NIST METEOR ROUGE_L CIDEr; WebNLG/DART: BLEU METEOR TER).",
    )
    parser.add_argument("references", help="references: one per line, instances separated by a blank line")
    parser.add_argument("predictions", help="system outputs: one line per instance")
    parser.add_argument(
        "--suite", choices=sorted(_SUITES), default="e2e", help="e2e (default), or webnlg (also for DART)"
    )
    args = parser.parse_args(argv)
    try:
        references, predictions = read_pair(args.references, args.predictions)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scores = _SUITES[args.suite](references, predictions)
    print(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
