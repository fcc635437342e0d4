"""Tests for flows.report.paper: the published numbers (as PAPER.md has them) and the comparison in the report."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import RT, SEEDS, make_result, report_params, write_result

from flows.report.collect import collect, load_results, main_runs
from flows.report.paper import (
    BERT_BASE,
    GLUE_ORDER,
    PUBLISHED,
    ROBERTA_LARGE,
    compare,
    comparison_csv,
    comparison_section,
    model_id,
    published,
)
from flows.stages.report import METHOD_LABELS, build_report


def _data(results: Path, params: dict):
    return collect(load_results(results, params), main_runs(params), params["report"]["primary_mode"])


def test_model_ids_match_by_basename() -> None:
    assert model_id("FacebookAI/roberta-large") == model_id("roberta-large") == ROBERTA_LARGE
    assert model_id("/models/RoBERTa-Large/") == ROBERTA_LARGE
    assert model_id("google-bert/bert-base-uncased") == model_id("bert-base-uncased") == BERT_BASE
    assert model_id("roberta-large-mnli") is None and model_id("minilm") is None and model_id(None) is None


def test_published_numbers_as_in_paper_md() -> None:
    assert published("FacebookAI/roberta-large", "mrpc", "adamix_adapter").score == 91.9
    assert (
        published("roberta-large", "rte", "adapter").method == "Pfeiffer adapter"
    )  # our adapter: Pfeiffer-style
    assert published("roberta-large", "rte", "adapter").score == 80.1
    assert published("roberta-large", "cola", "lora").metric == "matthews"
    assert published("roberta-large", "stsb", "full").metric == "pearson"
    assert published("roberta-large", "qqp", "full").metric == "accuracy"
    bert_mrpc = published("bert-base-uncased", "mrpc", "adamix_adapter")
    assert (bert_mrpc.metric, bert_mrpc.score) == ("f1", 92.4)  # BERT-base: QQP and MRPC as F1
    assert published("bert-base-uncased", "mrpc", "lora") is None  # only an average published
    assert published("bert-base-uncased", "avg", "lora").score == 82.2
    assert published("bert-base-uncased", "avg", "adapter") is None  # Houlsby's average is not our adapter
    assert published("roberta-large", "mrpc", "adamix_lora") is None
    assert published("minilm", RT, "adamix_adapter") is None


def test_published_averages_agree_with_their_rows() -> None:
    """Each printed average is the mean of its eight task scores (to the paper's rounding)."""
    for model, method in (
        (ROBERTA_LARGE, m) for m in ("Full fine-tuning", "Pfeiffer adapter", "LoRA", "AdaMix")
    ):
        mean = sum(PUBLISHED[(model, t, method)].score for t in GLUE_ORDER) / 8
        assert mean == pytest.approx(PUBLISHED[(model, "avg", method)].score, abs=0.051)
    bert = sum(PUBLISHED[(BERT_BASE, t, "AdaMix")].score for t in GLUE_ORDER) / 8
    assert bert == pytest.approx(PUBLISHED[(BERT_BASE, "avg", "AdaMix")].score, abs=0.051)


@pytest.fixture
def roberta_mrpc(tmp_path: Path) -> tuple[Path, dict]:
    results = tmp_path / "results"
    for method, scores in (
        ("adamix_adapter", (0.90, 0.92)),
        ("lora", (0.89, 0.91)),
        ("adamix_lora", (0.9, 0.9)),
    ):
        for seed, score in zip(SEEDS, scores, strict=True):
            record = make_result(
                "mrpc", method, seed, score, extra={"f1": 0.02}, model="FacebookAI/roberta-large"
            )
            write_result(results, record)
    return results, report_params(tasks=["mrpc"], methods=["adamix_adapter", "adamix_lora", "lora"])


def test_roberta_large_mrpc_against_the_paper(roberta_mrpc: tuple[Path, dict], tmp_path: Path) -> None:
    results, params = roberta_mrpc
    build_report(results, tmp_path / "out", params)
    markdown = (tmp_path / "out" / "results.md").read_text()
    section = markdown.split("## Against the paper", 1)[1].split("\n## ", 1)[0]
    assert "| Model | Task | Method | Paper's row | Metric | Ours | Paper | Δ |" in section
    assert (
        "| roberta-large | mrpc | AdaMix Adapter | AdaMix | accuracy | 91.0 ± 1.4 | 91.9 | -0.9 |" in section
    )
    assert "| roberta-large | mrpc | LoRA | LoRA | accuracy | 90.0 ± 1.4 | 90.2 | -0.2 |" in section
    assert "AdaMix LoRA" not in section  # the paper has no GLUE number for it
    assert "Pfeiffer-style" not in section  # said only when our single adapter is compared
    cap, epochs = params["data"]["max_train_examples"], params["train"]["epochs"]
    assert f"at most {cap} training examples" in section and f"{epochs} epochs" in section
    rows = pd.read_csv(tmp_path / "out" / "paper_comparison.csv")
    assert list(rows.columns) == ["model", "task", "method", "paper_method", "metric", "mean", "std", "n"] + [
        "paper",
        "delta",
    ]
    adamix = rows[rows.method == "adamix_adapter"].iloc[0]
    assert adamix.paper == pytest.approx(0.919) and adamix["mean"] == pytest.approx(0.91)
    assert adamix.delta == pytest.approx(-0.009) and adamix.n == 2


def test_bert_base_uses_f1_and_the_eight_task_average(tmp_path: Path) -> None:
    """All eight GLUE tasks for BERT-base: per-task rows for AdaMix on the paper's metric, and the averages."""
    results = tmp_path / "results"
    metric_of = {"cola": "matthews", "stsb": "pearson"}
    for task in GLUE_ORDER:
        for method in ("adamix_adapter", "lora"):
            extra = {"f1": 0.05} if task in ("mrpc", "qqp") else {}
            score = 0.80 if method == "adamix_adapter" else 0.70
            record = make_result(
                task,
                method,
                13,
                score,
                metric=metric_of.get(task, "accuracy"),
                extra=extra,
                model="bert-base-uncased",
            )
            write_result(results, record)
    params = report_params(tasks=list(GLUE_ORDER), methods=["adamix_adapter", "lora"], seeds=[13])
    rows = compare(_data(results, params), params)
    by_key = {(r.task, r.method): r for r in rows}
    assert by_key[("mrpc", "adamix_adapter")].paper.metric == "f1"
    assert by_key[("mrpc", "adamix_adapter")].ours.mean == pytest.approx(0.85)  # f1 = accuracy + 0.05
    assert ("mrpc", "lora") not in by_key  # no per-task number for LoRA on BERT-base
    average = by_key[("avg", "adamix_adapter")]
    assert average.ours.mean == pytest.approx((6 * 0.80 + 2 * 0.85) / 8) and average.paper.score == 84.5
    assert by_key[("avg", "lora")].ours.mean == pytest.approx((6 * 0.70 + 2 * 0.75) / 8)
    section = comparison_section(rows, _data(results, params), params, METHOD_LABELS)
    assert "| bert-base-uncased | Avg (8 GLUE tasks) | LoRA | LoRA | avg | 71.2 | 82.2 | -11.0 |" in section
    assert len(pd.read_csv(io.StringIO(comparison_csv(rows)))) == 8 + 2


def test_no_published_number_says_not_applicable(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for seed in SEEDS:
        write_result(results, make_result(RT, "adamix_adapter", seed, 0.8))
    params = report_params(tasks=[RT], methods=["adamix_adapter"])
    build_report(results, tmp_path / "out", params)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert (
        "## Against the paper\n\nNot applicable: the paper published no number for this model (minilm) "
        f"on these tasks ({RT})."
    ) in markdown
    assert (tmp_path / "out" / "paper_comparison.csv").read_text().strip() == (
        "model,task,method,paper_method,metric,mean,std,n,paper,delta"
    )


def test_few_shot_runs_are_not_compared(roberta_mrpc: tuple[Path, dict]) -> None:
    results, params = roberta_mrpc
    params["fewshot"]["k"] = 16
    data = _data(results, params)
    section = comparison_section(compare(data, params), data, params, METHOD_LABELS)
    assert "Not applicable: these are 16-shot runs" in section and "| roberta-large |" not in section
