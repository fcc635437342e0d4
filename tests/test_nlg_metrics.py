"""flows.nlg_metrics reproduces the NLG challenges' official scores, reads their file format, reports bad input
in one line, and reports a metric that cannot run as unavailable, never as 0.

The E2E example (tests/fixtures/e2e_metrics, the challenge's own example inputs) must give the official scores
to the 4 decimals `measure_scores.py` prints. All five agree: BLEU 0.7203, NIST 7.7889, METEOR 0.4801,
ROUGE_L 0.7910, CIDEr 2.3039. NIST is the Python MT-Eval's (`measure_scores.py -p`, what the AdaMix NLG
evaluation runs); the Perl MT-Eval prints 7.8212 because it sees each instance padded with empty references to
the largest count (the example has 6 to 39 per instance), which shortens the mean reference length of the
length penalty. `mteval.nist(..., pad_references=True)` computes that variant and gives 7.8212 too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU, TER

from flows.errors import InputError
from flows.nlg_metrics import (
    E2E_METRICS,
    WEBNLG_METRICS,
    NlgInputError,
    coco,
    e2e_scores,
    mteval,
    read_pair,
    read_predictions,
    read_references,
    webnlg_scores,
)
from flows.nlg_metrics import __main__ as command

FIXTURES = Path(__file__).parent / "fixtures" / "e2e_metrics"
REFERENCES, PREDICTIONS = FIXTURES / "references.txt", FIXTURES / "predictions.txt"
ROOT = Path(__file__).resolve().parents[1]

# measure_scores.py on the example (see the fixtures' README), to the 4 decimals it prints.
OFFICIAL = {"BLEU": 0.7203, "NIST": 7.7889, "METEOR": 0.4801, "ROUGE_L": 0.7910, "CIDEr": 2.3039}
OFFICIAL_PERL_NIST = 7.8212

needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="java not on PATH (PTB tokenizer, METEOR)"
)

# A tiny WebNLG-style set: lowercased and tokenized, as the LoRA / AdaMix decoding writes it; 1 to 3 references.
WEBNLG_REFERENCES = [
    ["the cat sat on a mat .", "a cat was sitting on the mat ."],
    ["alan bean was born in wheeler , texas .", "alan bean 's birthplace is wheeler , texas ."],
    ["the airport serves the city of aarhus .", "aarhus is served by the airport .", "it serves aarhus ."],
]
WEBNLG_PREDICTIONS = [
    "the cat sat on the mat .",
    "alan bean was born in wheeler , texas .",
    "the airport is serving aarhus city .",
]


@pytest.fixture(scope="module")
def example() -> tuple[list[list[str]], list[str]]:
    return read_pair(REFERENCES, PREDICTIONS)


@pytest.fixture(scope="module")
def example_scores(example: tuple[list[list[str]], list[str]]) -> dict:
    """The E2E suite on the example, computed once (two Java runs: the tokenizer, METEOR)."""
    return e2e_scores(*example)


@pytest.fixture(scope="module")
def webnlg_example_scores() -> dict:
    return webnlg_scores(WEBNLG_REFERENCES, WEBNLG_PREDICTIONS)


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH on which there is no java."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("java") is None


# -- the official numbers ----------------------------------------------------------------------------------


def test_bleu_and_nist_match_the_python_mteval(example: tuple[list[list[str]], list[str]]) -> None:
    assert round(mteval.bleu(*example), 4) == OFFICIAL["BLEU"]
    assert round(mteval.nist(*example), 4) == OFFICIAL["NIST"]


def test_nist_with_padded_references_matches_the_perl_mteval(
    example: tuple[list[list[str]], list[str]],
) -> None:
    references, _ = example
    assert len({len(refs) for refs in references}) > 1  # the reason the two MT-Evals differ on it
    assert round(mteval.nist(*example, pad_references=True), 4) == OFFICIAL_PERL_NIST


@needs_java
@pytest.mark.parametrize("metric", E2E_METRICS)
def test_e2e_suite_reproduces_the_official_scores(example_scores: dict, metric: str) -> None:
    assert example_scores["unavailable"] == {}
    assert round(example_scores[metric], 4) == OFFICIAL[metric]


def test_tokenize_13a_splits_punctuation_but_not_numbers() -> None:
    # the apostrophe stays: it is outside v13a's punctuation ranges
    assert mteval.tokenize_13a("It's 3.5 km, near 1-2 A&amp;B.") == [
        "It's", "3.5", "km", ",", "near", "1", "-", "2", "A", "&", "B", ".",
    ]  # fmt: skip
    assert mteval.tokenize_13a("   ") == [""]


def test_bleu_is_case_insensitive_and_perfect_on_a_copy() -> None:
    references = [["The Eagle is a pub in the city centre.", "There is a pub."]]
    assert mteval.bleu(references, ["the eagle is a pub in the city centre ."]) == pytest.approx(1.0)
    assert mteval.nist(references, ["the eagle is a pub in the city centre ."]) > 0


@pytest.mark.parametrize("scorer", [mteval.bleu, mteval.nist, e2e_scores, webnlg_scores])
def test_the_api_rejects_mismatched_or_empty_input(scorer) -> None:
    with pytest.raises(ValueError, match="2 reference sets for 1 predictions"):
        scorer([["a b"], ["c d"]], ["a b"])
    with pytest.raises(ValueError, match="no predictions"):
        scorer([], [])
    with pytest.raises(ValueError, match="reference"):
        scorer([[]], ["a b"])


@needs_java
def test_ptb_tokenizer_keeps_one_line_per_text() -> None:
    """Blank texts are not sent to the jar and a Unicode line separator does not split a text in two (the
    pycocoevalcap wrapper would pair every later output with the wrong input)."""
    texts = ["Hello, World!", "", "Zoë's café\u2028(open)", "..."]
    assert coco.ptb_tokenize(texts) == ["hello world", "", "zoë 's café -lrb- open -rrb-", ""]


# -- WebNLG / DART ----------------------------------------------------------------------------------------


def test_webnlg_bleu_and_ter_are_sacrebleu_computed_as_the_webnlg_script(webnlg_example_scores: dict) -> None:
    streams = [[refs[k] if k < len(refs) else None for refs in WEBNLG_REFERENCES] for k in range(3)]
    expected_bleu = sacrebleu.corpus_bleu(WEBNLG_PREDICTIONS, streams, smooth_method="none", tokenize="13a")
    assert list(webnlg_example_scores)[:3] == list(WEBNLG_METRICS)
    assert webnlg_example_scores["BLEU"] == pytest.approx(expected_bleu.score)
    assert BLEU(smooth_method="none").corpus_score(WEBNLG_PREDICTIONS, streams).score == expected_bleu.score
    ter = TER(case_sensitive=True)
    best = [
        min(ter.sentence_score(p, [r]).score for r in refs) / 100
        for refs, p in zip(WEBNLG_REFERENCES, WEBNLG_PREDICTIONS, strict=True)
    ]
    # by hand: 1 substitution in 7 words; an exact copy; against the first reference 4 edits in 8 words (shift
    # "aarhus" behind "city", then is -> serves, serving -> the, insert "of"), better than the others
    assert best == [pytest.approx(1 / 7), 0.0, pytest.approx(4 / 8)]
    assert webnlg_example_scores["TER"] == pytest.approx(sum(best) / 3)


def test_webnlg_bleu_is_zero_without_any_4gram_match(no_java: None) -> None:
    """No smoothing, as multi-bleu: a corpus with no matching 4-gram scores 0, not a smoothed small number."""
    assert webnlg_scores([["a b c d e"]], ["a b x d e"])["BLEU"] == 0.0


@needs_java
def test_webnlg_meteor_runs_the_jar(webnlg_example_scores: dict) -> None:
    assert webnlg_example_scores["unavailable"] == {}
    assert 0.0 < webnlg_example_scores["METEOR"] < 1.0


# -- unavailable, never 0 ---------------------------------------------------------------------------------


def test_without_java_the_java_metrics_are_unavailable_not_zero(
    no_java: None, example: tuple[list[list[str]], list[str]]
) -> None:
    scores = e2e_scores(*example)
    assert round(scores["BLEU"], 4) == OFFICIAL["BLEU"] and round(scores["NIST"], 4) == OFFICIAL["NIST"]
    assert {name: scores[name] for name in ("METEOR", "ROUGE_L", "CIDEr")} == dict.fromkeys(
        ("METEOR", "ROUGE_L", "CIDEr")
    )
    assert sorted(scores["unavailable"]) == ["CIDEr", "METEOR", "ROUGE_L"]
    assert all("java not found on PATH" in reason for reason in scores["unavailable"].values())

    webnlg = webnlg_scores(WEBNLG_REFERENCES, WEBNLG_PREDICTIONS)
    assert webnlg["METEOR"] is None and "java not found on PATH" in webnlg["unavailable"]["METEOR"]
    assert webnlg["BLEU"] > 0 and webnlg["TER"] > 0 and sorted(webnlg["unavailable"]) == ["METEOR"]


def test_a_missing_jar_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(coco, "_require_java", lambda: None)
    monkeypatch.setattr(coco, "_package_dir", lambda: tmp_path)
    webnlg = webnlg_scores(WEBNLG_REFERENCES, WEBNLG_PREDICTIONS)
    assert webnlg["METEOR"] is None and "meteor-1.5.jar not found" in webnlg["unavailable"]["METEOR"]
    e2e = e2e_scores(WEBNLG_REFERENCES, WEBNLG_PREDICTIONS)
    assert e2e["CIDEr"] is None and "stanford-corenlp-3.4.1.jar not found" in e2e["unavailable"]["CIDEr"]


def test_the_command_prints_json_with_unavailable_metrics(tmp_path: Path) -> None:
    """`python -m flows.nlg_metrics` end to end, on a PATH without java (fast: no JVM starts)."""
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "flows.nlg_metrics", str(REFERENCES), str(PREDICTIONS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert round(scores["BLEU"], 4) == OFFICIAL["BLEU"] and scores["METEOR"] is None
    assert "java not found on PATH" in scores["unavailable"]["METEOR"]


# -- the file format ---------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_the_example_files_read_as_ten_instances(example: tuple[list[list[str]], list[str]]) -> None:
    references, predictions = example
    assert len(references) == len(predictions) == 10
    assert [len(refs) for refs in references] == [6, 6, 6, 6, 9, 11, 37, 39, 10, 7]
    assert references[0][0] == "There is a place in the city centre, Alimentum, that is not family-friendly."


@pytest.mark.parametrize(
    "text",
    [
        "a1\na2\n\nb1\n",  # final newline
        "a1\na2\n\nb1",  # none
        "a1\na2\n\nb1\n\n\n",  # blank lines at the end
        "\ufeffa1 \r\n a2\r\n \t \r\nb1\r\n",  # BOM, CRLF, spaces around lines, a whitespace-only separator
    ],
)
def test_references_are_blocks_separated_by_a_blank_line(tmp_path: Path, text: str) -> None:
    assert read_references(_write(tmp_path / "refs.txt", text)) == [["a1", "a2"], ["b1"]]


def test_a_references_file_without_blank_lines_has_one_reference_per_instance(tmp_path: Path) -> None:
    assert read_references(_write(tmp_path / "refs.txt", "a\nb\nc\n")) == [["a"], ["b"], ["c"]]


def test_predictions_are_one_per_line(tmp_path: Path) -> None:
    assert read_predictions(_write(tmp_path / "p.txt", "x\n\ny\n\n")) == ["x", "", "y"]  # inner blank: empty
    assert read_predictions(_write(tmp_path / "p.txt", "x\ny")) == ["x", "y"]


@pytest.mark.parametrize(
    ("refs", "preds", "culprit", "said"),
    [
        (None, "x\n", "refs", "no such file"),
        ("a\n", None, "preds", "no such file"),
        ("", "x\n", "refs", "the file is empty"),
        ("a\n", "\n \n", "preds", "the file is empty"),
        ("a\n\n\nb\n", "x\ny\n", "refs", "empty reference block at line 3"),
        ("\na\n\nb\n", "x\ny\n", "refs", "empty reference block at line 1"),
        ("a1\na2\n\nb\n", "x\ny\nz\n", "preds", "3 predictions, but"),
        ("a\nb\n", "x\n", "preds", "1 prediction, but"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    refs: str | None,
    preds: str | None,
    culprit: str,
    said: str,
) -> None:
    paths = {"refs": tmp_path / "refs.txt", "preds": tmp_path / "preds.txt"}
    for name, text in (("refs", refs), ("preds", preds)):
        if text is not None:
            _write(paths[name], text)
    with pytest.raises(NlgInputError) as raised:
        read_pair(paths["refs"], paths["preds"])
    assert isinstance(raised.value, InputError)

    assert command.main([str(paths["refs"]), str(paths["preds"])]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert str(paths[culprit]) in err and said in err and "Traceback" not in err


def test_a_count_mismatch_names_both_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    refs, preds = _write(tmp_path / "r.txt", "a\n\nb\n"), _write(tmp_path / "p.txt", "x\n")
    assert command.main([str(refs), str(preds), "--suite", "webnlg"]) == 2
    err = capsys.readouterr().err
    assert str(refs) in err and str(preds) in err and "2 reference blocks" in err
