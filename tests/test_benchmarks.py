"""benchmarks/: the quick run's JSON schema, the ratios and target checks, the FLOP formula, the memory probe.

No timing is asserted: these tests run on shared CPUs. The batched two-view fast path the benchmark times is
checked against two plain forwards in tests/test_consistency.py.
"""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import memory_probe, run
from benchmarks.models import METHODS, Sizes, active_matmul_parameters, build_base, build_method, step_flops
from benchmarks.report import CHECKS, evaluate_checks, format_tables

QUICK_METHODS = "adapter,adamix_adapter,adamix_adapter+cons_batched,lora,adamix_lora"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    argv = ["--quick", "--device", "cpu", "--no-memory", "--no-progress", "--methods", QUICK_METHODS]
    assert run.main([*argv, "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_quick_run_writes_the_documented_schema(quick):
    assert quick["schema_version"] == run.SCHEMA_VERSION
    assert quick["command"].startswith("python -m benchmarks.run --quick")
    assert {
        "settings",
        "environment",
        "flops_formula",
        "memory_method",
        "train",
        "inference",
        "checks",
    } <= set(quick)
    assert quick["settings"]["model"] == "tiny" and quick["settings"]["device"] == "cpu"
    assert list(quick["train"]) == QUICK_METHODS.split(",")
    for row in quick["train"].values():
        assert row["step_ms"]["count"] == quick["settings"]["timed_steps"]
        assert 0 < row["step_ms"]["min"] <= row["step_ms"]["median"]
        assert row["tokens_per_s"] > 0 and row["flops_per_step"] > 0 and row["trainable_params"] > 0
        assert row["mfu"] is None and row["peak_mem_mb"] is None  # CPU, probes off
    # inference: the base always, and the deployed form of every family that trained
    assert set(quick["inference"]) == {
        "base",
        "adapter",
        "adamix_adapter:merged",
        "lora",
        "adamix_lora:merged",
        "adamix_lora:unloaded",
    }


def test_quick_run_computes_ratios_and_checks(quick):
    train = quick["train"]
    assert train["adamix_adapter"]["reference"] == "adapter"
    expected = train["adamix_adapter"]["step_ms"]["median"] / train["adapter"]["step_ms"]["median"]
    assert train["adamix_adapter"]["ratio_vs_reference"] == pytest.approx(expected)
    assert train["lora"]["reference"] == "lora"  # peft_lora was not run: its own reference
    checks = {c["name"]: c for c in quick["checks"]}
    assert len(checks) == len(CHECKS)
    step = checks["AdaMix adapter step / adapter step"]
    assert step["value"] == pytest.approx(expected) and step["status"] in ("PASS", "MISS")
    assert checks["AdaMix LoRA merge_and_unload latency / base (1.00x)"]["status"] in ("PASS", "MISS")
    assert checks["our LoRA step / PEFT LoRA step"]["status"] == "n/a"  # peft_lora not run
    assert checks["AdaMix adapter MFU at batch 64"]["status"] == "n/a"  # CPU
    assert "AdaMix adapter step" in format_tables(quick)


def _fake(device: str, batch: int, step: dict[str, float]) -> dict:
    rows = {n: {"step_ms": {"median": t, "p25": t, "p75": t}, "mfu": 0.5} for n, t in step.items()}
    return {"settings": {"device": device, "batch": batch}, "train": rows, "inference": {}}


def test_checks_pass_miss_and_gpu_only_rules():
    times = {"adapter": 10.0, "adamix_adapter": 10.4, "adamix_adapter+cons_batched": 15.0, "peft_lora": 10.0}
    gpu = {c["name"]: c for c in evaluate_checks(_fake("cuda", 32, times))}
    assert gpu["AdaMix adapter step / adapter step"]["status"] == "PASS"  # 1.04 <= 1.05
    assert gpu["AdaMix adapter+consistency (batched) / PEFT LoRA at batch 32"]["status"] == "PASS"  # 1.5
    assert gpu["AdaMix adapter MFU at batch 64"]["status"] == "n/a"  # measured at batch 32
    times["adamix_adapter"] = 11.0
    cpu = {c["name"]: c for c in evaluate_checks(_fake("cpu", 32, times))}
    assert cpu["AdaMix adapter step / adapter step"]["status"] == "MISS"  # 1.10
    gpu_target = cpu["AdaMix adapter+consistency (batched) / PEFT LoRA at batch 32"]
    assert gpu_target["status"] == "n/a" and gpu_target["value"] == pytest.approx(1.5)


def test_step_flops_follow_the_documented_formula():
    base = build_base("tiny", 0)
    c, batch, length = base.config, 2, 8
    attention = 4 * c.num_hidden_layers * batch * length**2 * c.hidden_size
    full = build_method(base, METHODS["full"], Sizes(), 0)
    n = active_matmul_parameters(base, full, METHODS["full"])
    embeddings = sum(m.weight.numel() for m in base.modules() if isinstance(m, torch.nn.Embedding))
    assert n == sum(p.numel() for p in base.parameters()) - embeddings
    assert step_flops(base, full, METHODS["full"], batch, length) == 3 * (2 * n * batch * length + attention)
    # a mixture counts one expert per forward: same active size as the single module
    single = build_method(base, METHODS["adapter"], Sizes(), 0)
    mixture = build_method(base, METHODS["adamix_adapter+cons_batched"], Sizes(), 0)
    n_single = active_matmul_parameters(base, single, METHODS["adapter"])
    assert active_matmul_parameters(base, mixture, METHODS["adamix_adapter"]) == n_single > n
    two_views = step_flops(base, mixture, METHODS["adamix_adapter+cons_batched"], batch, length)
    assert two_views == 2 * 2 * (2 * n_single * batch * length + attention)


def _probe_payload(method: str) -> dict:
    """The smallest memory-probe job: the tiny model, 2 x 8 tokens, one step."""
    return dict(
        model="tiny",
        method=method,
        batch=2,
        length=8,
        seed=0,
        precision="fp32",
        grad_clip=1.0,
        sizes=Sizes().__dict__,
        steps=1,
    )


def test_memory_probe_measures_in_process():
    out = memory_probe.measure(_probe_payload("adamix_lora+cons_batched"))
    assert out["peak_mb"] >= 0 and out["how"]


@pytest.mark.slow
def test_memory_probe_runs_in_a_fresh_process():
    out = memory_probe.run_probe(_probe_payload("full"), timeout=120)
    assert out.get("error") is None and out["peak_mb"] >= 0


def test_generation_benchmark_times_every_deployed_row_against_the_base(tmp_path):
    from benchmarks import generation

    out = tmp_path / "gen.json"
    argv = ["--model", "tiny", "--beams", "2", "1", "--rounds", "1", "--new-tokens", "3", "--batch", "2"]
    assert generation.main([*argv, "--prompt-length", "4", "--cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"beams=2", "beams=1"}
    for rows in report["results"].values():
        assert list(rows) == list(generation.ROWS)
        assert rows["base"]["ratio_to_base"] == 1.0
        assert all(r["new_tokens_per_s"] > 0 and r["rounds"] == 1 for r in rows.values())
