"""The NLG challenges' metrics (E2E, WebNLG 2017, DART), computed as their official scripts compute them.

`e2e_scores(references, predictions)` gives the E2E NLG Challenge's five metrics as `measure_scores.py -p`
(tuetschek/e2e-metrics; the AdaMix and LoRA NLG evaluations call it with `-p`) prints them:

- BLEU and NIST: MT-Eval v13a, an exact port of the challenge's Python MT-Eval (`pymteval`) in `mteval`.
  NIST is the Python MT-Eval's; the Perl `mteval-v13a.pl` (`measure_scores.py` without `-p`) pads each
  instance's references to the largest count with empty ones and so gives a higher NIST where instances have
  different numbers of references (challenge example: 7.7889 here and with `-p`, 7.8212 in Perl; the Perl
  number is `mteval.nist(..., pad_references=True)`). BLEU is the same in both.
- METEOR 1.5, ROUGE-L and CIDEr (CIDEr-D): the MS-COCO caption scripts (`pycocoevalcap`), on texts through the
  PTB tokenizer (lowercased, punctuation dropped), as `measure_scores.py` runs them.

`webnlg_scores(references, predictions)` gives BLEU, METEOR and TER for WebNLG 2017 and DART. The LoRA /
AdaMix NLG code decodes with `--tokenize --lower` and scores with the WebNLG 2020 evaluation script
(`eval/GenerationEval/eval.py -nr 6 -m bleu,meteor,ter`); here each metric relates to it as follows:

- BLEU (0-100): `multi-bleu-detok.perl` there, sacrebleu here with the same 13a tokenisation, case kept, no
  smoothing and the closest reference length (the shorter one on a tie), so the numbers agree. The script
  pads instances with fewer than 6 references with empty lines, which Perl counts as references of length 0;
  sacrebleu skips missing references. The two differ only if an empty reference is the closest in length (a
  prediction under half as long as its shortest reference).
- METEOR (0-1): the same METEOR 1.5 jar with `-l en -norm`, corpus statistics aggregated by the jar, through
  pycocoevalcap's wrapper. The script first re-tokenizes with `nltk.word_tokenize`; here the texts are used as
  given (the decoding has already tokenized them, and `-norm` tokenizes punctuation again), so a number can
  differ in the last digit where NLTK would split a token that the decoder left whole.
- TER (0-1, lower is better): the script averages over instances the lowest sentence TER (edits / reference
  length) against any one reference, computed by `pyter`. Here the same aggregation with sacrebleu's TER
  (a tercom port: word edits plus shifts, case kept) per reference. Two differences remain: pyter's shift
  search is its own and can find other shifts than tercom's on long sentences, and the script counts each
  padded empty reference as TER 1, which caps an instance with fewer than 6 references at 1 (here a
  prediction much longer than every reference can exceed 1). This is not sacrebleu's corpus TER (total
  edits over total mean reference length), which would rank systems on a different scale.

Metrics that need Java (the PTB tokenizer, METEOR) are None where it is missing, with the reason under
`"unavailable"`; a metric that could not run is never reported as 0. The command
`python -m flows.nlg_metrics REFERENCES PREDICTIONS [--suite e2e|webnlg]` reads the challenge's file format
(`read_references`, `read_predictions`) and prints the scores as JSON.
"""

from __future__ import annotations

from .files import NlgInputError, read_pair, read_predictions, read_references
from .scores import E2E_METRICS, SUITES, WEBNLG_METRICS, corpus_bleu, e2e_scores, suite_scores, webnlg_scores

__all__ = [
    "E2E_METRICS",
    "WEBNLG_METRICS",
    "SUITES",
    "NlgInputError",
    "corpus_bleu",
    "e2e_scores",
    "read_pair",
    "read_predictions",
    "read_references",
    "suite_scores",
    "webnlg_scores",
]
