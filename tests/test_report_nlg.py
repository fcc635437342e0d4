"""The NLG part of the report: every metric of the suite on the paper's scales, paper rows, samples, output files."""

from __future__ import annotations

from report_fixtures import SEEDS, make_result, report_params, write_result

from flows.nlg_metrics import read_predictions, read_references
from flows.stages.report import build_report

SOURCES = ["name : The Vaults | Type : pub", "name : Alimentum | food : French"]
REFERENCES = [["The Vaults is a pub.", "A pub called The Vaults."], ["Alimentum serves French food."]]
E2E = {"nist": 0.0, "meteor": -0.2, "rouge_l": 0.0, "cider": 0.0}  # offsets from BLEU; set per run below


def _generation_result(task: str, method: str, seed: int, bleu: float, model: str, meteor=0.45) -> dict:
    record = make_result(task, method, seed, bleu, metric="bleu", extra=E2E, model=model)
    for metrics in record["modes"].values():
        metrics.update(nist=8.5, meteor=meteor, rouge_l=0.71, cider=2.5)
    mode = "merge" if method.startswith("adamix") else "single"
    record["modes"] = {mode: record["modes"][mode]}
    record["outputs"] = {mode: {"test": [f"{method} {seed} says one.", f"{method} {seed} says two."]}}
    record["test_examples"] = [
        {"source": s, "references": r} for s, r in zip(SOURCES, REFERENCES, strict=True)
    ]
    record["unavailable"] = {}
    record["history"][-1]["step"] = 8
    return record


def _build(tmp_path, task: str, model: str, **overrides):
    results = tmp_path / "results"
    for method, bleu in (("adamix_lora", 0.71), ("lora", 0.70)):
        for i, seed in enumerate(SEEDS):
            write_result(results, _generation_result(task, method, seed, bleu + i / 100, model, **overrides))
    params = report_params(tasks=[task], methods=["adamix_lora", "lora"])
    out = tmp_path / "reports"
    build_report(results, out, params)
    return out


def test_the_nlg_table_shows_every_metric_on_the_paper_scales_with_the_paper_rows(tmp_path):
    out = _build(tmp_path, "e2e_nlg", "gpt2-medium")
    text = (out / "results.md").read_text()
    assert "## Generation (NLG)" in text
    assert "| Method | BLEU | NIST | METEOR | ROUGE-L | CIDEr |" in text
    # BLEU x 100 over seeds 0.71, 0.72 -> 71.5 +- 0.7; NIST and CIDEr unscaled
    assert "| AdaMix LoRA (n=2) | 71.5 ± 0.7 | 8.50 ± 0.00 | 45.0 ± 0.0 | 71.0 ± 0.0 | 2.50 ± 0.00 |" in text
    assert "| AdaMix LoRA, paper | 71.0 | 8.89 | 46.8 | 72.2 | 2.54 |" in text
    assert "| LoRA, paper | 70.4 | 8.85 | 46.8 | 71.8 | 2.53 |" in text
    assert (
        "**Input 1:** `name : The Vaults | Type : pub`" in text
        and "- reference: A pub called The Vaults." in text
    )
    assert f"- **LoRA:** lora {SEEDS[0]} says one." in text
    assert "Training budget: 8 optimizer steps per run" in text and "have not converged" in text


def test_other_models_get_no_paper_rows_and_missing_metrics_are_na(tmp_path):
    out = _build(tmp_path, "gem_e2e_nlg", "smollm2", meteor=None)
    text = (out / "results.md").read_text()
    assert ", paper |" not in text and "The paper has no row for this model." in text
    assert "| LoRA (n=2) | 70.5 ± 0.7 | 8.50 ± 0.00 | n/a |" in text  # METEOR could not run: n/a, never 0


def test_the_outputs_are_written_as_the_challenge_files_beside_the_references(tmp_path):
    out = _build(tmp_path, "e2e_nlg", "gpt2-medium")
    folder = out / "nlg" / "e2e_nlg"
    assert read_references(folder / "references.txt") == REFERENCES
    assert (folder / "sources.txt").read_text().splitlines() == SOURCES
    for method in ("adamix_lora", "lora"):
        for seed in SEEDS:
            lines = read_predictions(folder / f"{method}.seed{seed}.txt")
            assert lines == [f"{method} {seed} says one.", f"{method} {seed} says two."]


def test_without_generation_tasks_the_nlg_folder_says_so(tmp_path):
    results = tmp_path / "results"
    for seed in SEEDS:
        write_result(results, make_result("rte", "lora", seed, 0.6))
    out = tmp_path / "reports"
    build_report(results, out, report_params(tasks=["rte"], methods=["lora"]))
    assert "No generation task" in (out / "nlg" / "README.md").read_text()
    assert "## Generation (NLG)" not in (out / "results.md").read_text()
