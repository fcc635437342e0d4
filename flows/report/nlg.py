"""The NLG part of the report: the paper's table shape (every metric of the task's suite), samples, output files.

For each generation task: a table with every metric of its suite (E2E: BLEU, NIST, METEOR, ROUGE-L, CIDEr;
WebNLG / DART: BLEU, METEOR, TER), mean ± std over seeds, on the paper's scales (BLEU, METEOR, ROUGE-L and TER
x 100; NIST and CIDEr as they come); the paper's row beside ours where the model and the task are the paper's
(GPT-2 medium on E2E, WebNLG 2017, DART); a few test inputs with their references and every method's output.
The folder `nlg/` holds the decoded outputs as the challenges' files: `<task>/<method>.seed<seed>.txt` (one
output per line), `<task>/references.txt` (blocks separated by blank lines) and `<task>/sources.txt`, in the
same order, so `python -m flows.nlg_metrics <task>/references.txt <task>/<method>.seed<seed>.txt` rescores them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .collect import Collected

FOLDER = "nlg"
SCALE_100 = frozenset({"bleu", "meteor", "rouge_l", "ter"})
LABELS = {
    "bleu": "BLEU",
    "nist": "NIST",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
    "ter": "TER",
}
SAMPLES = 3

# The paper's NLG table (GPT-2 medium), on its scales; tasks by our names. WebNLG and DART: BLEU only.
PAPER_NLG: dict[str, dict[str, dict[str, float]]] = {
    "e2e_nlg": {
        "full": {"bleu": 68.2, "nist": 8.62, "meteor": 46.2, "rouge_l": 71.0, "cider": 2.47},
        "lora": {"bleu": 70.4, "nist": 8.85, "meteor": 46.8, "rouge_l": 71.8, "cider": 2.53},
        "adamix_adapter": {"bleu": 69.8, "nist": 8.75, "meteor": 46.8, "rouge_l": 71.9, "cider": 2.52},
        "adamix_lora": {"bleu": 71.0, "nist": 8.89, "meteor": 46.8, "rouge_l": 72.2, "cider": 2.54},
    },
    "webnlg": {"lora": {"bleu": 55.3}, "adamix_lora": {"bleu": 55.64}},
    "dart": {"lora": {"bleu": 47.1}, "adamix_lora": {"bleu": 47.86}},
}


def generation_records(data: Collected) -> dict[str, list[dict[str, Any]]]:
    """task -> its result records that carry decoded outputs (generation tasks only)."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for record in data.records:
        if "outputs" in record:
            tasks.setdefault(record["task"], []).append(record)
    return tasks


def _shown(metric: str, value: float) -> float:
    return value * 100 if metric in SCALE_100 else value


def _decimals(metric: str, decimals: int) -> int:
    return decimals + 1 if metric in ("nist", "cider") else decimals


def _cell(values: list[float], metric: str, decimals: int) -> str:
    finite = [_shown(metric, v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    places = _decimals(metric, decimals)
    text = f"{np.mean(finite):.{places}f}"
    if len(finite) > 1:
        text += f" ± {np.std(finite, ddof=1):.{places}f}"
    return text


def _paper_model(records: list[dict[str, Any]]) -> bool:
    """Whether every run used GPT-2 medium, the paper's NLG model (a hub id or a folder of that name)."""
    return all(str(r.get("model", "")).rstrip("/").split("/")[-1] == "gpt2-medium" for r in records)


def nlg_section(data: Collected, methods: list[str], label: Mapping[str, str], decimals: int) -> str:
    """The NLG tables, notes on metrics that could not run, and sample outputs (empty without generation tasks)."""
    tasks = generation_records(data)
    if not tasks:
        return ""
    parts = ["## Generation (NLG)\n"]
    for task, records in tasks.items():
        metrics = list(records[0]["metrics"])
        paper = PAPER_NLG.get(task, {}) if _paper_model(records) else {}
        header = ["Method", *(LABELS.get(m, m) for m in metrics)]
        rows = []
        for method in methods:
            runs = [r for r in records if r["method"] == method]
            if not runs:
                continue
            mode = data.mode_of.get(method, next(iter(runs[0]["modes"])))
            cells = [_cell([r["modes"].get(mode, {}).get(m) for r in runs], m, decimals) for m in metrics]
            rows.append([f"{label.get(method, method)} (n={len(runs)})", *cells])
            if method in paper:
                shown = [f"{paper[method][m]}" if m in paper[method] else "" for m in metrics]
                rows.append([f"{label.get(method, method)}, paper", *shown])
        parts.append(
            f"### {task}\n\nTest set, mean ± std over seeds; BLEU, METEOR, ROUGE-L and TER x 100 (TER: lower is "
            "better), NIST and CIDEr as they are. Decoding as params `generation` (the official: beam 10, length "
            "penalty 0.8, no repeated 4-gram)."
            + (
                " Paper rows: GPT-2 medium, the paper's Table."
                if paper
                else " The paper has no row for this model."
            )
            + "\n\n"
            + _markdown(header, rows)
        )
        steps = sorted({_steps(r) for r in records if _steps(r)})
        if steps:
            parts.append(
                f"Training budget: {' / '.join(map(str, steps))} optimizer steps per run (the paper trains GPT-2 "
                "medium for 20 epochs: about 105k steps on E2E). A budget this far below the paper's compares "
                "methods that have not converged.\n"
                if steps[-1] < 10_000
                else f"Training budget: {' / '.join(map(str, steps))} optimizer steps per run.\n"
            )
        missing = sorted({f"{m}: {why}" for r in records for m, why in (r.get("unavailable") or {}).items()})
        if missing:
            parts.append("Metrics that could not run here (shown n/a, never 0): " + "; ".join(missing) + "\n")
        parts.append(_samples(task, records, methods, label))
    return "\n".join(parts)


def _steps(record: dict[str, Any]) -> int:
    """Optimizer steps the run took (its history's last `step`; 0 when not recorded)."""
    history = record.get("history") or []
    return int(history[-1].get("step") or 0) if history else 0


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _first_seed_outputs(records: list[dict[str, Any]], method: str) -> list[str] | None:
    runs = sorted((r for r in records if r["method"] == method), key=lambda r: r["seed"])
    if not runs:
        return None
    outputs = runs[0]["outputs"]
    mode = "merge" if "merge" in outputs else next(iter(outputs))
    return outputs[mode]["test"]


def _samples(task: str, records: list[dict[str, Any]], methods: list[str], label: Mapping[str, str]) -> str:
    test = records[0].get("test_examples") or []
    if not test:
        return ""
    lines = [f"Sample test inputs of {task} (first seed of each method):\n"]
    for i, example in enumerate(test[:SAMPLES]):
        lines.append(f"**Input {i + 1}:** `{example['source']}`\n")
        for ref in example["references"]:
            lines.append(f"- reference: {ref}")
        for method in methods:
            outputs = _first_seed_outputs(records, method)
            if outputs is not None and i < len(outputs):
                lines.append(f"- **{label.get(method, method)}:** {outputs[i] or '(empty)'}")
        lines.append("")
    return "\n".join(lines) + "\n"


def nlg_outputs(data: Collected) -> dict[str, str]:
    """The `nlg/` folder's files: every run's decoded test outputs beside the references and sources."""
    tasks = generation_records(data)
    files = {
        f"{FOLDER}/README.md": "# Decoded outputs\n\n"
        + (
            "One folder per generation task: `sources.txt` (one linearised input per line), `references.txt` "
            "(the references of each input, blocks separated by blank lines, in the same order) and one "
            "`<method>.seed<seed>.txt` per run (one output per line, the test decoding of the deployed model). "
            "Rescore with `python -m flows.nlg_metrics references.txt <method>.seed<seed>.txt [--suite webnlg]`.\n"
            if tasks
            else "No generation task in this run.\n"
        )
    }
    for task, records in tasks.items():
        test = records[0].get("test_examples") or []
        files[f"{FOLDER}/{task}/sources.txt"] = "".join(f"{e['source']}\n" for e in test)
        files[f"{FOLDER}/{task}/references.txt"] = "\n".join(
            "".join(f"{r}\n" for r in e["references"]) for e in test
        )
        for record in sorted(records, key=lambda r: (r["method"], r["seed"])):
            outputs = record["outputs"]
            mode = "merge" if "merge" in outputs else next(iter(outputs))
            texts = outputs[mode]["test"]
            files[f"{FOLDER}/{task}/{record['method']}.seed{record['seed']}.txt"] = "".join(
                f"{t}\n" for t in texts
            )
    return files
