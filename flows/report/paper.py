"""The AdaMix paper's published GLUE dev scores, and the report's comparison of these runs against them.

Numbers are copied from the paper's tables as summarised in PAPER.md (Wang et al., EMNLP 2022, arXiv 2205.12410),
nothing else: RoBERTa-large per task for five methods, BERT-base per task for AdaMix and 8-task averages for
the others. A run is compared only when its model (the basename of the result's `model`, case-insensitive), task
and method all match a published number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from ..config.grid import run_params
from .collect import Collected
from .plots import Cell

ROBERTA_LARGE, BERT_BASE = "roberta-large", "bert-base-uncased"
GLUE_ORDER = ("mnli", "qnli", "sst2", "qqp", "mrpc", "cola", "rte", "stsb")  # the paper's column order

# Our method -> the paper's row. Our `adapter` is one bottleneck module on each FFN output (the AdaMix NLU
# placement), i.e. Pfeiffer-style, so it is compared with the paper's Pfeiffer adapter, not with Houlsby's two
# modules per layer. The paper's GLUE "AdaMix" row is AdaMix with adapters; AdaMix LoRA has no GLUE number.
PAPER_METHOD = {
    "adamix_adapter": "AdaMix",
    "adapter": "Pfeiffer adapter",
    "lora": "LoRA",
    "full": "Full fine-tuning",
}

# Metrics of the paper's columns. RoBERTa-large: accuracy everywhere except CoLA (Matthews) and STS-B (Pearson),
# MNLI on the matched dev set (our `test` split); the BERT-base table gives QQP and MRPC as F1.
_METRICS = {
    ROBERTA_LARGE: dict(zip(GLUE_ORDER, ["accuracy"] * 5 + ["matthews", "accuracy", "pearson"], strict=True)),
    BERT_BASE: dict(
        zip(GLUE_ORDER, ["accuracy"] * 3 + ["f1", "f1", "matthews", "accuracy", "pearson"], strict=True)
    ),
}
_ROBERTA_ROWS = {  # MNLI / QNLI / SST-2 / QQP / MRPC / CoLA / RTE / STS-B, then the average
    "Full fine-tuning": (90.2, 94.7, 96.4, 92.2, 90.9, 68.0, 86.6, 92.4, 88.9),
    "Pfeiffer adapter": (90.5, 94.8, 96.6, 91.7, 89.7, 67.8, 80.1, 91.9, 87.9),
    "Houlsby adapter": (90.3, 94.7, 96.3, 91.5, 87.7, 66.3, 72.9, 91.5, 86.4),
    "LoRA": (90.6, 94.8, 96.2, 91.6, 90.2, 68.2, 85.2, 92.3, 88.6),
    "AdaMix": (90.9, 95.4, 97.1, 92.3, 91.9, 70.2, 89.2, 92.4, 89.9),
}
_BERT_ADAMIX = (84.7, 91.5, 92.4, 87.6, 92.4, 62.9, 74.7, 89.9)
_BERT_AVERAGES = {"Full fine-tuning": 82.7, "Houlsby adapter": 83.0, "LoRA": 82.2, "AdaMix": 84.5}


@dataclass(frozen=True)
class Published:
    """One published score, in points (x 100) as printed in the paper."""

    model: str  # ROBERTA_LARGE or BERT_BASE
    task: str  # our task name, or "avg" for the 8-task GLUE average
    method: str  # the paper's row name
    metric: str  # our metric name; "avg" for averages
    score: float


def _table() -> dict[tuple[str, str, str], Published]:
    table = {}
    for method, scores in _ROBERTA_ROWS.items():
        for task, score in zip((*GLUE_ORDER, "avg"), scores, strict=True):
            metric = _METRICS[ROBERTA_LARGE].get(task, "avg")
            table[(ROBERTA_LARGE, task, method)] = Published(ROBERTA_LARGE, task, method, metric, score)
    for task, score in zip(GLUE_ORDER, _BERT_ADAMIX, strict=True):
        table[(BERT_BASE, task, "AdaMix")] = Published(
            BERT_BASE, task, "AdaMix", _METRICS[BERT_BASE][task], score
        )
    for method, score in _BERT_AVERAGES.items():
        table[(BERT_BASE, "avg", method)] = Published(BERT_BASE, "avg", method, "avg", score)
    return table


PUBLISHED: dict[tuple[str, str, str], Published] = _table()
"""(model id, task or "avg", paper method) -> the published score."""


def model_id(name_or_path: str | None) -> str | None:
    """The paper's model id of a model name or path (``FacebookAI/roberta-large`` -> ``roberta-large``), or None."""
    if not name_or_path:
        return None
    name = PurePosixPath(name_or_path.replace("\\", "/").rstrip("/")).name.lower()
    return name if name in (ROBERTA_LARGE, BERT_BASE) else None


def published(model: str | None, task: str, method: str) -> Published | None:
    """The paper's number for our (model name or path, task, method), or None when it published none.

    Args:
        model: the result's `model` (a hub id or a local folder; matched by basename).
        task: our task name (mnli, qnli, sst2, qqp, mrpc, cola, rte, stsb) or "avg".
        method: our method (adamix_adapter, adapter, lora, full).
    """
    key = (model_id(model), task, PAPER_METHOD.get(method, ""))
    return PUBLISHED.get(key)  # type: ignore[arg-type]


# -- the report section ----------------------------------------------------------------------------------


@dataclass
class Row:
    """Our score against the paper's on one (model, task, method)."""

    model: str
    task: str
    method: str
    paper: Published
    ours: Cell  # raw values (0..1), the paper's metric, in the method's reported mode

    @property
    def delta(self) -> float:
        """Ours minus the paper, raw (0..1); NaN when our score is undefined."""
        return self.ours.mean - self.paper.score / 100


def compare(data: Collected, params: Mapping[str, Any]) -> list[Row]:
    """Rows for every (task, method) of the main table whose runs all use one model with a published score;
    then, per method with a published 8-task average, an "avg" row when all 8 GLUE tasks ran on that model
    (our mean over the 8 tasks of the paper's metric of each)."""
    rows, averages = [], []
    n = len(params["seeds"])
    for method in params["methods"]:
        model_of = {}
        for task in params["tasks"]:
            models = {
                model_id(r.get("model")) for r in data.records if (r["task"], r["method"]) == (task, method)
            }
            model_of[task] = models.pop() if len(models) == 1 else None
            paper = published(model_of[task], task, method)
            if paper is not None:
                ours = Cell(*data.stats(task, method, data.mode_of[method], paper.metric), expected_n=n)
                rows.append(Row(paper.model, task, method, paper, ours))
        models = {model_of.get(task) for task in GLUE_ORDER}
        average = published(models.pop(), "avg", method) if len(models) == 1 else None
        if average is not None:
            metric = _METRICS[average.model]
            means = [data.stats(t, method, data.mode_of[method], metric[t])[0] for t in GLUE_ORDER]
            mean = sum(means) / len(means)  # NaN if any task's score is undefined
            averages.append(Row(average.model, "avg", method, average, Cell(mean)))
    return rows + averages


def _settings(params: Mapping[str, Any], methods: Sequence[str]) -> str:
    data = params["data"]
    epochs = sorted({run_params(params, m)["train"]["epochs"] for m in methods})
    cap = data["max_train_examples"]
    eval_cap = data["max_eval_examples"]
    return (
        f"these runs: {'all' if cap is None else f'at most {cap}'} training examples, "
        f"{'all' if eval_cap is None else f'at most {eval_cap}'} dev examples, "
        f"{' / '.join(map(str, epochs))} epochs"
    )


def comparison_section(
    rows: list[Row], data: Collected, params: Mapping[str, Any], labels: Mapping[str, str]
) -> str:
    """The "Against the paper" section of results.md."""
    head = "## Against the paper\n\n"
    k = (params.get("fewshot") or {}).get("k", 0)
    if k:
        return head + (
            f"Not applicable: these are {k}-shot runs (`fewshot.k`), and the published numbers kept here "
            "(flows/report/paper.py) are full-data GLUE dev scores.\n"
        )
    if not rows:
        models = sorted({str(r.get("model") or "not recorded") for r in data.records})
        return head + (
            f"Not applicable: the paper published no number for this model ({', '.join(models)}) on these tasks "
            f"({', '.join(params['tasks'])}). Its GLUE dev scores are for RoBERTa-large and BERT-base on MNLI, "
            "QNLI, SST-2, QQP, MRPC, CoLA, RTE and STS-B (flows/report/paper.py).\n"
        )
    decimals = params["report"]["decimals"]
    lines = [
        "Our test score (for GLUE: the dev set, as in the paper) against the paper's, x 100; Δ = ours − paper. "
        "The paper trains on full training sets for 20 to 40 epochs with batch 64; "
        + _settings(params, sorted({row.method for row in rows}))
        + "."
        + (
            " Our single adapter is Pfeiffer-style (one module per layer): it is compared with the paper's "
            "Pfeiffer adapter."
            if any(row.method == "adapter" for row in rows)
            else ""
        ),
        "",
        "| Model | Task | Method | Paper's row | Metric | Ours | Paper | Δ |",
        "|:---|:---|:---|:---|:---|---:|---:|---:|",
    ]
    for row in rows:
        delta = f"{row.delta * 100:+.{decimals}f}" if math.isfinite(row.delta) else "n/a"
        task = "Avg (8 GLUE tasks)" if row.task == "avg" else row.task
        lines.append(
            f"| {row.model} | {task} | {labels.get(row.method, row.method)} | {row.paper.method} | "
            f"{row.paper.metric} | {row.ours.text(decimals)} | {row.paper.score:.1f} | {delta} |"
        )
    return head + "\n".join(lines) + "\n"


def comparison_csv(rows: list[Row]) -> str:
    """paper_comparison.csv: raw values (0..1) for ours, the paper and the difference; header only when empty."""
    columns = ["model", "task", "method", "paper_method", "metric", "mean", "std", "n", "paper", "delta"]
    records = [
        [r.model, r.task, r.method, r.paper.method, r.paper.metric, r.ours.mean, r.ours.std, r.ours.n]
        + [round(r.paper.score / 100, 6), r.delta]
        for r in rows
    ]
    return pd.DataFrame(records, columns=columns).to_csv(index=False, na_rep="")
