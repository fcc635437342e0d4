"""Data-parallel training of one run: 2 CPU processes (gloo) with DDP and shared routing end with the weights of
one process on the same global batches; without the shared draw they do not. And the train stage under torchrun
writes one run folder, with the weights of a one-process run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import ddp_worker
import pytest
import torch
import torch.multiprocessing as mp
from ddp_worker import SCENARIOS, SEED
from safetensors.torch import load_file

import adamix
from flows.training import distributed
from flows.training.distributed import DataParallel, DistributedError

TOLERANCE = 1e-5  # float32: DDP's sum of shard gradients against one batch's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(out: Path, kind: str) -> Path:
    """Every scenario trained once by 2 gloo processes (one spawn: the start-up is most of the time)."""
    mp.spawn(ddp_worker.worker, args=(2, _free_port(), str(out), kind), nprocs=2, join=True)
    return out


@pytest.fixture(scope="module")
def toy_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _spawn(tmp_path_factory.mktemp("ddp-toy"), "toy")


@pytest.fixture(scope="module")
def bert_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _spawn(tmp_path_factory.mktemp("ddp-bert"), "bert")


def _result(out: Path, name: str, rank: int) -> tuple[dict[str, torch.Tensor], list[float]]:
    losses = json.loads((out / f"{name}-rank{rank}.json").read_text())
    return load_file(out / f"{name}-rank{rank}.safetensors"), losses


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _check_equal_to_one_process(out: Path, kind: str, name: str) -> None:
    reference, reference_losses = ddp_worker.train(kind, None, batched=SCENARIOS[name][1])
    rank0, losses0 = _result(out, name, 0)
    rank1, losses1 = _result(out, name, 1)
    assert _max_difference(rank0, rank1) == 0.0  # DDP keeps the processes in step
    assert _max_difference(rank0, reference) < TOLERANCE
    assert losses0 == losses1 and losses0 == pytest.approx(
        reference_losses, abs=1e-5
    )  # the global batch's loss
    start = {n: p.detach() for n, p in ddp_worker.model(kind).named_parameters() if p.requires_grad}
    assert _max_difference(rank0, start) > 1e-2  # it trained


def _check_naive_differs(out: Path, kind: str) -> None:
    """The check can fail: each process drawing its own experts is not one process on the global batch."""
    naive, _ = _result(out, "naive", 0)
    reference, _ = ddp_worker.train(kind, None, batched=True)
    assert _max_difference(naive, reference) > 10 * TOLERANCE


@pytest.mark.parametrize("name", ["shared", "sequential"])
def test_two_processes_equal_one_on_the_global_batch(toy_processes: Path, name: str) -> None:
    _check_equal_to_one_process(toy_processes, "toy", name)


def test_without_the_shared_draw_the_weights_differ(toy_processes: Path) -> None:
    _check_naive_differs(toy_processes, "toy")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shared", "sequential"])
def test_two_processes_equal_one_on_the_global_batch_tiny_bert(bert_processes: Path, name: str) -> None:
    _check_equal_to_one_process(bert_processes, "bert", name)


@pytest.mark.slow
def test_without_the_shared_draw_the_weights_differ_tiny_bert(bert_processes: Path) -> None:
    _check_naive_differs(bert_processes, "bert")


def _record_draws(model: torch.nn.Module) -> list[torch.Tensor]:
    drawn: list[torch.Tensor] = []
    for p in model.modules():
        if isinstance(p, adamix.ExpertLinear) and p.num_experts > 1:
            original = p._draw
            p._draw = lambda count, device, original=original: (
                drawn.append(original(count, device)) or drawn[-1]
            )
    return drawn


def test_shared_routing_draws_alike_whatever_the_global_rng_and_batch() -> None:
    a, b = ddp_worker.model("toy"), ddp_worker.model("toy")
    draws_a, draws_b = _record_draws(a), _record_draws(b)
    routing_a, routing_b = adamix.shared_routing(a, SEED), adamix.shared_routing(b, SEED)
    for step in range(3):
        torch.manual_seed(
            step
        )  # the global RNG (dropout's) differs, and so does the batch size: not the draws
        routing_a.reseed(step)
        a(torch.randn(2, ddp_worker.FEATURES))
        torch.manual_seed(100 + step)
        routing_b.reseed(step)
        b(torch.randn(6, ddp_worker.FEATURES))
    assert len(draws_a) == 3 * 2 and [d.tolist() for d in draws_a] == [d.tolist() for d in draws_b]
    assert len({str(d.tolist()) for d in draws_a}) > 1  # not one expert throughout
    routing_a.remove()
    assert all(p.routing_generator is None for p in a.modules() if isinstance(p, adamix.ExpertLinear))


def test_default_routing_still_draws_from_the_global_rng() -> None:
    """No shared routing: the draws are torch.randint on the global RNG, as before (committed runs rely on it)."""
    layer = adamix.ExpertLinear(4, 3, 2)
    torch.manual_seed(7)
    drawn = layer._draw(5, torch.device("cpu"))
    torch.manual_seed(7)
    assert torch.equal(drawn, torch.randint(4, (5,)))


def test_inactive_outside_a_launch_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    dp = distributed.start({"batch_size": 7, "device": "cpu"}, SEED, 10)
    model, loss = torch.nn.Linear(2, 2), torch.tensor(1.5)
    assert not dp.active and dp.is_main and dp.wrap(model) is model
    batches = [[0, 1, 2], [3]]
    assert dp.shard(batches) is batches and dp.global_mean(loss, None) == (loss, None)
    assert dp.global_mean(loss) is loss


def test_shards_split_every_global_batch() -> None:
    batches = [list(range(8)), list(range(8, 13))]
    shards = [DataParallel(rank, 2, active=True).shard(batches) for rank in (0, 1)]
    assert shards[0] == [[0, 1, 2, 3], [8, 9]] and shards[1] == [[4, 5, 6, 7], [10, 11, 12]]
    dp = DataParallel(1, 2, active=True)
    dp.shard(batches)
    assert dp._weights == [0.5, 0.6]


@pytest.mark.parametrize(
    ("batch", "examples", "message"),
    [(7, 14, "train.batch_size 7 is the global batch"), (8, 17, "the last batch of each epoch has 1")],
)
def test_a_batch_that_does_not_split_is_refused(
    monkeypatch: pytest.MonkeyPatch, batch: int, examples: int, message: str
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(DistributedError, match=message):
        distributed.start({"batch_size": batch, "device": "cpu"}, SEED, examples)


# -- the train stage under torchrun --------------------------------------------------------------------------------


def _torchrun(root: Path, processes: int, argv: list[str]) -> subprocess.CompletedProcess:
    from tiny_project import tool_env

    env = {**tool_env(root), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    done = subprocess.run(
        [*command, "-m", "flows.stages.train", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_the_train_stage_under_torchrun_writes_one_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    from mlflow import MlflowClient
    from tiny_project import TASK, make_project

    from flows import tracking
    from flows.config import paths
    from flows.config.params import load_params
    from flows.stages import fewshot, prepare

    method = "adamix_adapter"
    params_file = make_project(tmp_path, tiny_model_dir, train={"batch_size": 8, "checkpoint_every": 1})
    params = load_params(params_file, profile="")
    prepare.prepare(params, TASK, root=tmp_path)
    fewshot.split_for_seed(params, TASK, SEED, root=tmp_path)
    argv = ["--task", TASK, "--method", method, "--seed", str(SEED), "--params", str(params_file)]
    run_dir = paths.run_dir(TASK, method, SEED, tmp_path)

    runs = {}
    for processes in (2, 1):  # 1: torchrun with one process, the same routing stream on one device
        _torchrun(tmp_path, processes, argv)
        assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]  # one folder, no leftovers
        assert sorted(p.name for p in run_dir.iterdir()) == ["adapter", "history.json", "run.json"]
        assert paths.timing_path(TASK, method, SEED, tmp_path).is_file()
        runs[processes] = (
            load_file(run_dir / "adapter" / "adapter_model.safetensors"),
            json.loads((run_dir / "run.json").read_text()),
        )
        run_dir.rename(tmp_path / f"run-{processes}")

    (two, info2), (one, info1) = runs[2], runs[1]
    assert _max_difference(two, one) < TOLERANCE
    assert info2["step_loss"] == pytest.approx(
        info1["step_loss"], abs=1e-4
    )  # the global batch's loss, recorded
    client = MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    train_runs = client.search_runs([experiment.experiment_id], filter_string="tags.`adamix.stage` = 'train'")
    assert len(train_runs) == 2  # one per launch: rank 0's
