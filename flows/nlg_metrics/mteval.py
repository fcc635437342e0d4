"""BLEU and NIST as MT-Eval v13a computes them, ported from its Python version (`pymteval` of e2e-metrics).

The E2E NLG Challenge's `measure_scores.py -p` (the way the AdaMix and LoRA NLG evaluations call it) scores
BLEU and NIST with `pymteval`, a Python port of NIST's `mteval-v13a.pl`. This module reproduces that port:

- normalisation: the v13a "basic" tokenisation (SGML entities decoded, ASCII punctuation split off, periods
  and commas split unless between digits, a dash split after a digit), then lowercasing (no `-c` flag);
- BLEU: corpus-level, up to 4-grams, counts clipped by the maximum count in any one reference, the brevity
  penalty against the reference closest in length (the shorter one on a tie), no smoothing beyond the port's
  tiny floor that keeps a zero precision from raising;
- NIST: up to 5-grams, information weights from the n-gram counts of all references (0-grams: the total
  reference length), the length penalty against the summed per-instance mean reference length.

Two quirks of the port are kept because they decide the numbers it prints: a sentence shorter than n tokens
adds a negative count (length - n + 1) to the n-gram totals of BLEU and NIST, and NIST averages reference
length over the references an instance has. The Perl script instead reads files where `measure_scores.py`
has padded every instance to the largest number of references with empty ones, so its mean reference length
is shorter and its NIST higher whenever instances have different numbers of references (the challenge's
example: 7.7889 here and with `-p`, 7.8212 with Perl). `nist(..., pad_references=True)` computes that Perl
variant; BLEU is the same either way, since an empty reference is never the one closest in length.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

BLEU_MAX_N = 4
NIST_MAX_N = 5
_NIST_BETA = -math.log(0.5) / math.log(1.5) ** 2  # length penalty 0.5 at a 2/3 length ratio (mteval-v13a)
_TINY, _SMALL = 1e-15, 1e-9  # the port's floors for a zero hit count and a zero n-gram count

_SGML = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))
# v13a splits off every ASCII symbol in these ranges: space..&, (..+, /, :..@, [..`, {..~
_PUNCTUATION = re.compile(r"([ -&(-+/:-@\[-`{-~])")
_PERIOD_COMMA_AFTER_NON_DIGIT = re.compile(r"([^0-9])([.,])")
_PERIOD_COMMA_BEFORE_NON_DIGIT = re.compile(r"([.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")


def tokenize_13a(text: str) -> list[str]:
    """Split one sentence into MT-Eval v13a tokens (case kept; the scores lowercase afterwards).

    Args:
        text: A system output or reference sentence.

    Returns:
        The tokens; `[""]` for an empty or blank sentence, as the port gives (one empty token).
    """
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in _SGML:
        text = text.replace(entity, char)
    text = _PUNCTUATION.sub(r" \1 ", f" {text} ")
    text = _PERIOD_COMMA_AFTER_NON_DIGIT.sub(r"\1 \2 ", text)
    text = _PERIOD_COMMA_BEFORE_NON_DIGIT.sub(r" \1 \2", text)
    text = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", text)
    return re.sub(r"\s+", " ", text).strip().split(" ")


def _tokens(text: str) -> list[str]:
    return [token.lower() for token in tokenize_13a(text)]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _max_reference_counts(references: Sequence[Sequence[str]], n: int) -> Counter:
    """Each n-gram's largest count in any single reference (the clipping bound)."""
    merged: Counter = Counter()
    for reference in references:
        merged |= _ngrams(reference, n)
    return merged


def _clipped_hits(prediction: Sequence[str], references: Sequence[Sequence[str]], n: int) -> Counter:
    bound = _max_reference_counts(references, n)
    return Counter(
        {gram: min(count, bound[gram]) for gram, count in _ngrams(prediction, n).items() if bound[gram]}
    )


def _check(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference sets for {len(predictions)} predictions")
    if not predictions:
        raise ValueError("nothing to score: no predictions")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every prediction needs at least one reference")


def bleu(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """Corpus BLEU of MT-Eval v13a (as `pymteval.BLEUScore()`, case-insensitive, 4-grams).

    Args:
        references: For each instance, its reference sentences (at least one).
        predictions: One system output per instance.

    Returns:
        BLEU in [0, 1].

    Raises:
        ValueError: Different lengths, no instances, or an instance without references.
    """
    _check(references, predictions)
    hits, totals, reference_length = [0] * BLEU_MAX_N, [0] * BLEU_MAX_N, 0
    for refs, prediction in zip(references, predictions, strict=True):
        predicted, refs_tokens = _tokens(prediction), [_tokens(ref) for ref in refs]
        for n in range(1, BLEU_MAX_N + 1):
            hits[n - 1] += sum(_clipped_hits(predicted, refs_tokens, n).values())
            totals[n - 1] += len(predicted) - n + 1  # may go negative for short outputs, as in the port
        closest = min(refs_tokens, key=lambda ref: (abs(len(ref) - len(predicted)), len(ref)))
        reference_length += len(closest)
    log_precision = (
        sum(math.log(max(h, _TINY) / max(t, _SMALL)) for h, t in zip(hits, totals, strict=True)) / BLEU_MAX_N
    )
    output_length = totals[0]
    penalty = 1.0
    if output_length <= reference_length:
        penalty = math.exp(1.0 - reference_length / (output_length or 1e-5))
    return penalty * math.exp(log_precision)


def nist(
    references: Sequence[Sequence[str]], predictions: Sequence[str], *, pad_references: bool = False
) -> float:
    """Corpus NIST of MT-Eval v13a (as `pymteval.NISTScore()`, case-insensitive, 5-grams).

    Args:
        references: For each instance, its reference sentences (at least one).
        predictions: One system output per instance.
        pad_references: Count every instance as having as many references as the one with the most, the
            missing ones empty: what `mteval-v13a.pl` computes on the files `measure_scores.py` writes for
            it. Off (the default) is the Python port, what `measure_scores.py -p` prints.

    Returns:
        NIST, >= 0.

    Raises:
        ValueError: Different lengths, no instances, or an instance without references.
    """
    _check(references, predictions)
    most_references = max(len(refs) for refs in references)
    counts: list[Counter] = [Counter() for _ in range(NIST_MAX_N + 1)]  # counts[0][()]: reference tokens
    hits: list[list[Counter]] = [[] for _ in range(NIST_MAX_N)]
    totals = [0] * NIST_MAX_N
    mean_reference_length = 0.0
    for refs, prediction in zip(references, predictions, strict=True):
        predicted, refs_tokens = _tokens(prediction), [_tokens(ref) for ref in refs]
        for n in range(1, NIST_MAX_N + 1):
            totals[n - 1] += len(predicted) - n + 1
            hits[n - 1].append(_clipped_hits(predicted, refs_tokens, n))
            for ref in refs_tokens:
                counts[n].update(_ngrams(ref, n))
        length = sum(len(ref) for ref in refs_tokens)
        counts[0][()] += length
        mean_reference_length += length / (most_references if pad_references else len(refs_tokens))

    def information(gram: tuple[str, ...]) -> float:
        seen = counts[len(gram)][gram]
        return math.log2(counts[len(gram) - 1][gram[:-1]] / seen) if seen else 0.0

    score = 0.0
    for n in range(NIST_MAX_N):
        gained = sum(information(gram) * count for sentence in hits[n] for gram, count in sentence.items())
        score += gained / totals[n] if totals[n] else 0.0  # no n-grams at all: the port would divide by zero
    return _nist_length_penalty(totals[0], mean_reference_length) * score


def _nist_length_penalty(output_length: float, reference_length: float) -> float:
    ratio = output_length / reference_length
    if ratio >= 1:
        return 1.0
    if ratio <= 0:
        return 0.0
    return math.exp(-_NIST_BETA * math.log(ratio) ** 2)
