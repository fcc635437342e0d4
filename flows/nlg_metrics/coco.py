"""METEOR 1.5, ROUGE-L and CIDEr as the MS-COCO caption scripts compute them, through `pycocoevalcap`.

The PTB tokenizer (Stanford CoreNLP 3.4.1: lowercased, punctuation tokens dropped) and METEOR 1.5 (`-l en
-norm`) are jars run on Java; ROUGE-L (beta 1.2) and CIDEr (CIDEr-D: n <= 4, sigma 6, clipped, idf from the
references of the scored set) are Python. Where Java or a jar is missing, `Unavailable` says why, so that the
caller reports the metric as unavailable instead of as a number.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

_TIMEOUT_S = 600  # a tokenizer run on a whole test set takes seconds; a hung JVM must not hang the caller
# Characters a line-preserving tokenizer could take for a line break: one text must stay one line.
_LINE_BREAKS = str.maketrans({char: " " for char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


class Unavailable(RuntimeError):
    """A metric cannot be computed on this machine; the message says why (no Java, a jar missing, ...)."""


def _package_dir() -> Path:
    """Where pycocoevalcap's jars live (it is a namespace package: no `__file__`)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("pycocoevalcap is not installed (pip install pycocoevalcap)")
    return Path(next(iter(spec.submodule_search_locations)))


def _require_java() -> None:
    if shutil.which("java") is None:
        raise Unavailable(
            "java not found on PATH (install a JRE, e.g. apt-get install -y default-jre-headless)"
        )


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise Unavailable(f"{path.name} not found at {path} (reinstall pycocoevalcap)")


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """Tokenize texts as the MS-COCO scripts do before every caption metric: PTB tokens, lowercased, no
    punctuation tokens, joined by single spaces.

    This runs pycocoevalcap's CoreNLP jar with the command and punctuation list of its `PTBTokenizer`, but
    itself: the wrapper writes its temporary file into the installed package and lets Java's progress line
    through to stderr, and it would pair outputs with inputs silently if the jar dropped a line.

    Args:
        texts: Any texts; a blank one stays "" (the jar is not given it).

    Returns:
        One tokenized string per text, in order.

    Raises:
        Unavailable: No Java on PATH, the tokenizer jar missing, or the tokenizer failed.
    """
    _require_java()
    jar = _package_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    _require_file(jar)
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    flat = [text.translate(_LINE_BREAKS) for text in texts]
    wanted = [i for i, text in enumerate(flat) if text.strip()]
    if not wanted:
        return ["" for _ in flat]
    with tempfile.TemporaryDirectory(prefix="ptb-") as folder:
        source = Path(folder) / "sentences.txt"
        source.write_text("\n".join(flat[i] for i in wanted), encoding="utf-8")
        command = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines"]
        try:
            done = subprocess.run(
                [*command, "-lowerCase", str(source)], capture_output=True, check=False, timeout=_TIMEOUT_S
            )
        except (OSError, subprocess.SubprocessError) as err:
            raise Unavailable(f"the PTB tokenizer (Java) failed: {err}") from err
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Unavailable(
            f"the PTB tokenizer (Java) exited with {done.returncode}: {said[-1] if said else ''}"
        )
    lines = done.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "" and len(lines) == len(wanted) + 1:
        lines.pop()  # the jar ends its output with a newline
    if len(lines) != len(wanted):
        raise Unavailable(f"the PTB tokenizer (Java) returned {len(lines)} lines for {len(wanted)} texts")
    out = ["" for _ in flat]
    for i, line in zip(wanted, lines, strict=True):
        out[i] = " ".join(token for token in line.rstrip().split(" ") if token not in PUNCTUATIONS)
    return out


def _as_coco(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> tuple[dict, dict]:
    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [prediction] for i, prediction in enumerate(predictions)}
    return gts, res


def meteor(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """Corpus METEOR 1.5 (`-l en -norm`, statistics of all instances aggregated by the jar's EVAL).

    Args:
        references: For each instance, its references (already tokenized as the suite wants).
        predictions: One system output per instance, tokenized the same way.

    Returns:
        METEOR in [0, 1].

    Raises:
        Unavailable: No Java on PATH, the jar or its paraphrase table missing, or the jar failed.
    """
    _require_java()
    package = _package_dir() / "meteor"
    _require_file(package / "meteor-1.5.jar")
    _require_file(package / "data" / "paraphrase-en.gz")
    from pycocoevalcap.meteor.meteor import Meteor

    gts, res = _as_coco(references, predictions)
    scorer = None
    try:
        scorer = Meteor()
        score, _ = scorer.compute_score(gts, res)
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        # a jar that dies mid-way leaves an empty line where a number was due (ValueError)
        raise Unavailable(f"METEOR 1.5 (Java) failed: {err}") from err
    finally:
        if scorer is not None:
            _close_meteor(scorer)
    return float(score)


def _close_meteor(scorer: object) -> None:
    """End the jar now rather than at garbage collection (pycocoevalcap closes it only in `__del__`)."""
    process = scorer.meteor_p
    if process.poll() is None:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rouge_l(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """Mean over instances of ROUGE-L F (beta 1.2, best precision and recall over the references).

    Args:
        references: For each instance, its references (tokens separated by single spaces).
        predictions: One system output per instance, tokenized the same way.

    Returns:
        ROUGE-L in [0, 1].
    """
    from pycocoevalcap.rouge.rouge import Rouge

    score, _ = Rouge().compute_score(*_as_coco(references, predictions))
    return float(score)


def cider(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """Corpus CIDEr (the COCO scripts' CIDEr-D), document frequencies from these references.

    Args:
        references: For each instance, its references (tokens separated by single spaces).
        predictions: One system output per instance, tokenized the same way.

    Returns:
        CIDEr, >= 0 (up to 10 by construction).
    """
    from pycocoevalcap.cider.cider import Cider

    score, _ = Cider().compute_score(*_as_coco(references, predictions))
    return float(score)
