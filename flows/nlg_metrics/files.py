"""Readers of the E2E challenge's file format: references in blank-line-separated blocks, one output per line."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


class NlgInputError(InputError):
    """A references or predictions file that cannot be scored; the message names the file and the problem."""


def _lines(path: str | Path) -> list[str]:
    """The file's lines, stripped of surrounding whitespace (as `measure_scores.py` reads them)."""
    path = Path(path)
    if not path.is_file():
        raise NlgInputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of the first sentence
    except UnicodeDecodeError as err:
        raise NlgInputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:  # blank lines at the end separate nothing
        lines.pop()
    if not lines:
        raise NlgInputError(f"{path}: the file is empty")
    return lines


def read_references(path: str | Path) -> list[list[str]]:
    """Read a references file: one reference per line, instances separated by one blank line.

    A file with no blank line is a single-reference file (each line its own instance), as in the challenge's
    `measure_scores.py`. Blank lines at the end of the file are ignored, and a final newline is optional.

    Args:
        path: The references file (UTF-8).

    Returns:
        For each instance, its references, in file order.

    Raises:
        NlgInputError: The file is missing or empty, or a block is empty (a blank line at the start, or two
            blank lines in a row), naming the file and the line.
    """
    blocks: list[list[str]] = [[]]
    for number, line in enumerate(_lines(path), start=1):
        if line:
            blocks[-1].append(line)
            continue
        if not blocks[-1]:
            where = "at the start of the file" if number == 1 else "after another blank line"
            raise NlgInputError(
                f"{path}: empty reference block at line {number} (a blank line {where}); "
                "separate instances with exactly one blank line"
            )
        blocks.append([])
    if len(blocks) == 1:
        return [[reference] for reference in blocks[0]]
    return blocks


def read_predictions(path: str | Path) -> list[str]:
    """Read a predictions file: one system output per line (a blank line inside is an empty output).

    Args:
        path: The predictions file (UTF-8). Blank lines at its end are ignored; a final newline is optional.

    Returns:
        One output per instance, in file order.

    Raises:
        NlgInputError: The file is missing or empty.
    """
    return _lines(path)


def read_pair(references_path: str | Path, predictions_path: str | Path) -> tuple[list[list[str]], list[str]]:
    """Read a references file and a predictions file and check that they describe the same instances.

    Args:
        references_path: The references file (see `read_references`).
        predictions_path: The predictions file (see `read_predictions`).

    Returns:
        `(references, predictions)`, one entry per instance each.

    Raises:
        NlgInputError: Either file is bad, or the numbers of instances differ (naming both files).
    """
    references = read_references(references_path)
    predictions = read_predictions(predictions_path)
    if len(references) != len(predictions):
        single = all(len(refs) == 1 for refs in references)
        how = " (one reference each: every non-blank line of it is an instance)" if single else ""
        counted = f"{len(predictions)} prediction" + ("s" if len(predictions) != 1 else "")
        raise NlgInputError(
            f"{predictions_path}: {counted}, but {references_path} has {len(references)} reference blocks{how}; "
            "give one prediction line per reference block"
        )
    return references, predictions
