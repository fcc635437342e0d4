"""The two metric suites: the E2E NLG Challenge's (`e2e_scores`) and the WebNLG / DART one (`webnlg_scores`).

Each returns every metric of its suite: a float, or None when the metric cannot run on this machine, with the
reason under `"unavailable"` (empty when everything ran). A metric that could not run is never reported as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import coco, mteval

E2E_METRICS: tuple[str, ...] = ("BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr")
"""In `measure_scores.py`'s order. BLEU, METEOR and ROUGE_L in [0, 1], as it prints them with `-t`."""

WEBNLG_METRICS: tuple[str, ...] = ("BLEU", "METEOR", "TER")
"""On the scales the WebNLG evaluation script prints: BLEU 0-100, METEOR and TER as fractions."""


def _check(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> None:
    if isinstance(predictions, str) or any(isinstance(refs, str) for refs in references):
        raise ValueError("give predictions as a list of strings and references as a list of lists of strings")
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference sets for {len(predictions)} predictions")
    if not predictions:
        raise ValueError("nothing to score: no predictions")
    empty = [i for i, refs in enumerate(references) if len(refs) == 0]
    if empty:
        raise ValueError(f"instance(s) {empty[:5]} have no reference; every prediction needs at least one")


def _run(
    scores: dict[str, Any], unavailable: dict[str, str], name: str, compute: Callable[[], float]
) -> None:
    """Set `scores[name]` to `compute()`, or to None with the reason when the metric cannot run here."""
    try:
        scores[name] = float(compute())
    except coco.Unavailable as err:
        scores[name], unavailable[name] = None, str(err)


def _result(order: Sequence[str], scores: dict[str, Any], unavailable: dict[str, str]) -> dict[str, Any]:
    return {**{name: scores[name] for name in order}, "unavailable": unavailable}


def e2e_scores(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict[str, Any]:
    """Score system outputs as the E2E NLG Challenge's `measure_scores.py -p` does.

    BLEU and NIST: MT-Eval v13a (its Python port) on the texts as given. METEOR 1.5, ROUGE-L and CIDEr: the
    MS-COCO caption scripts on PTB-tokenized, lowercased texts (one Java run tokenizes all of them).

    Args:
        references: For each instance, its human references (at least one).
        predictions: One system output per instance.

    Returns:
        `{"BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr": float or None, "unavailable": {metric: reason}}`.
        Without Java, METEOR, ROUGE_L and CIDEr are None (all three need the PTB tokenizer).

    Raises:
        ValueError: Different lengths, no instances, or an instance without references.

    Example:
        >>> e2e_scores([["The Eagle is a pub.", "There is a pub, the Eagle."]], ["The Eagle is a pub."])["BLEU"]
        1.0
    """
    _check(references, predictions)
    scores: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    _run(scores, unavailable, "BLEU", lambda: mteval.bleu(references, predictions))
    _run(scores, unavailable, "NIST", lambda: mteval.nist(references, predictions))

    try:
        refs_tok, preds_tok = _ptb_tokenize(references, predictions)
    except coco.Unavailable as err:  # every COCO metric needs the tokenizer: all three inherit its reason
        for name in ("METEOR", "ROUGE_L", "CIDEr"):
            scores[name], unavailable[name] = None, f"the PTB tokenizer cannot run: {err}"
        return _result(E2E_METRICS, scores, unavailable)
    _run(scores, unavailable, "METEOR", lambda: coco.meteor(refs_tok, preds_tok))
    _run(scores, unavailable, "ROUGE_L", lambda: coco.rouge_l(refs_tok, preds_tok))
    _run(scores, unavailable, "CIDEr", lambda: coco.cider(refs_tok, preds_tok))
    return _result(E2E_METRICS, scores, unavailable)


def _ptb_tokenize(
    references: Sequence[Sequence[str]], predictions: Sequence[str]
) -> tuple[list[list[str]], list[str]]:
    """PTB-tokenize references and predictions in one Java run, returned in their original shapes."""
    flat = [ref for refs in references for ref in refs]
    done = coco.ptb_tokenize([*flat, *predictions])
    grouped, start = [], 0
    for refs in references:
        grouped.append(done[start : start + len(refs)])
        start += len(refs)
    return grouped, done[len(flat) :]


def webnlg_scores(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict[str, Any]:
    """Score system outputs with the metrics of the WebNLG 2017 and DART evaluations: BLEU, METEOR, TER.

    The texts are scored as given: tokenize and lowercase them first as the evaluation being reproduced does
    (the LoRA / AdaMix decoding writes them tokenized and lowercased). See the package docstring for how each
    metric relates to the scripts behind the published numbers.

    Args:
        references: For each instance, its references (at least one; any number per instance).
        predictions: One system output per instance.

    Returns:
        `{"BLEU": 0-100, "METEOR": 0-1, "TER": 0-1 (lower is better), "unavailable": {metric: reason}}`;
        METEOR is None without Java.

    Raises:
        ValueError: Different lengths, no instances, or an instance without references.
    """
    _check(references, predictions)
    scores: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    _run(scores, unavailable, "BLEU", lambda: _sacrebleu_bleu(references, predictions))
    _run(scores, unavailable, "METEOR", lambda: coco.meteor(references, predictions))
    _run(scores, unavailable, "TER", lambda: _mean_best_ter(references, predictions))
    return _result(WEBNLG_METRICS, scores, unavailable)


def _sacrebleu_bleu(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """Corpus BLEU as multi-bleu-detok.perl: 13a tokens, case kept, no smoothing (a zero precision gives 0)."""
    from sacrebleu.metrics import BLEU

    most = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    return BLEU(tokenize="13a", smooth_method="none").corpus_score(list(predictions), streams).score


def _mean_best_ter(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """Mean over instances of the best (lowest) sentence TER against any one reference, case kept."""
    from sacrebleu.metrics import TER

    ter = TER(case_sensitive=True)
    best = [
        min(ter.sentence_score(prediction, [ref]).score for ref in refs) / 100.0
        for refs, prediction in zip(references, predictions, strict=True)
    ]
    return sum(best) / len(best)


SUITES: dict[str, tuple[str, ...]] = {"e2e": E2E_METRICS, "webnlg": WEBNLG_METRICS}
"""Metric suite name (a generation task's meta `metric_suite`; DART uses `webnlg`) -> its metrics."""
_PERCENT = {"webnlg": ("BLEU",)}  # metrics a suite prints on 0-100, stored as fractions in pipeline results


def suite_scores(
    suite: str, references: Sequence[Sequence[str]], predictions: Sequence[str]
) -> dict[str, Any]:
    """Every metric of a suite, keyed as the pipeline's results key them (lowercase: `bleu`, `rouge_l`, ...).

    BLEU, METEOR, ROUGE-L and TER are fractions (the tables show them x 100, as the paper); NIST and CIDEr stay
    on their own scales. A metric that cannot run here is None, with its reason under `"unavailable"`.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown metric suite {suite!r}; known: {sorted(SUITES)}")
    raw = (e2e_scores if suite == "e2e" else webnlg_scores)(references, predictions)
    out: dict[str, Any] = {}
    for name in SUITES[suite]:
        value = raw[name]
        if value is not None and name in _PERCENT.get(suite, ()):
            value = value / 100
        out[name.lower()] = value
    out["unavailable"] = {k.lower(): v for k, v in raw["unavailable"].items()}
    return out


def corpus_bleu(suite: str, references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """The suite's BLEU as a fraction, without the Java metrics: the cheap per-epoch validation score."""
    if suite == "e2e":
        return mteval.bleu(references, predictions)
    if suite == "webnlg":
        return _sacrebleu_bleu(references, predictions) / 100
    raise ValueError(f"unknown metric suite {suite!r}; known: {sorted(SUITES)}")
