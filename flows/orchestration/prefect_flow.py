"""The pipeline as a Prefect flow: the same stage functions DVC runs, fanned out through a task runner.

    python -m flows.orchestration.prefect_flow run [--profile smoke]     # one flow run (what `make flow` does)
    python -m flows.orchestration.prefect_flow serve [--profile P]       # serve it on the cron schedule of params `flow.cron`

After a flow run, `dvc commit` records its outputs, so `dvc status` is clean and a later `dvc repro` reuses them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from ..config import paths

# torch's random generators are process-wide: two runs training in threads of one process would interleave
# their draws and lose reproducibility. Runs in one process therefore take turns; use the dask or ray task
# runner (worker processes) to train in parallel.
_TORCH_LOCK = threading.Lock()


def _torch_turn() -> threading.Lock:
    """This process's lock. The tasks reach it through this module-level function (pickled by reference):
    Dask and Ray pickle each task's function by value, and a lock cannot be pickled."""
    return _TORCH_LOCK


@task(name="prepare")
def prepare_task(params: dict, task_name: str) -> str:
    """Read, normalise and split one task."""
    from ..stages.prepare import prepare

    return str(prepare(params, task_name))


@task(name="fewshot")
def fewshot_task(params: dict, task_name: str, seed: int) -> str:
    """Draw one seed's K-shot split (or pass the full data through)."""
    from ..stages.fewshot import split_for_seed

    return str(split_for_seed(params, task_name, seed))


@task(name="train")
def train_task(params: dict, task_name: str, method: str, seed: int) -> str:
    """Train one (task, method, seed) run."""
    from ..stages.train import train_run

    with _torch_turn():
        train_run(params, task_name, method, seed)
    return str(paths.run_dir(task_name, method, seed))


@task(name="merge")
def merge_task(params: dict, task_name: str, method: str, seed: int) -> str:
    """Merge one run's experts into the deployable artifact."""
    from ..stages.merge import merge_run

    with _torch_turn():
        merge_run(params, task_name, method, seed)
    return str(paths.merged_dir(task_name, method, seed))


@task(name="evaluate")
def evaluate_task(params: dict, task_name: str, method: str, seed: int) -> str:
    """Score one run in every inference mode."""
    from ..stages.evaluate import evaluate_run

    with _torch_turn():
        evaluate_run(params, task_name, method, seed)
    return str(paths.result_path(task_name, method, seed))


@task(name="report")
def report_task(params: dict) -> str:
    """Build the tables and plots in reports/."""
    from ..stages.report import build_report

    out = paths.reports_dir(params=params)
    build_report(paths.results_dir(), out, params)
    return str(out)


@flow(name="adamix-reproduce", log_prints=True)
def reproduce(profile: str = "", params_path: str = "params.yaml") -> str:
    """Run every stage for the params (with `profile` merged over them) and record the outputs in DVC.

    Args:
        profile: a profile name (profiles/<name>.yaml) or a YAML path; empty = params.yaml alone.
        params_path: the params file.

    Returns:
        The reports folder.
    """
    from ..config.params import load_params, resolve_to_file
    from ..tracking import finish_parent, get_or_create_parent, pipeline_run_id

    params = load_params(params_path, profile=profile)
    root = paths.project_root()
    resolve_to_file(params, root / paths.RESOLVED_PARAMS, root / paths.GRID_PARAMS)
    parent_key = pipeline_run_id(params)
    get_or_create_parent(params, parent_key)

    from ..config.grid import runs

    grid = runs(params)  # the main grid, then ablation variants
    prepared = {t: prepare_task.submit(params, t) for t in dict.fromkeys(t for t, _, _ in grid)}
    splits = {
        (t, s): fewshot_task.submit(params, t, s, wait_for=[prepared[t]])
        for t, s in dict.fromkeys((t, s) for t, _, s in grid)
    }
    evaluated = []
    for t, method, s in grid:
        trained = train_task.submit(params, t, method, s, wait_for=[splits[t, s]])
        merged = merge_task.submit(params, t, method, s, wait_for=[trained])
        evaluated.append(evaluate_task.submit(params, t, method, s, wait_for=[merged]))
    try:
        report = report_task.submit(params, wait_for=evaluated).result()
    except BaseException:
        finish_parent(params, "FAILED", parent_key)
        raise
    finish_parent(params, "FINISHED", parent_key)
    dvc_commit()
    return report


def dvc_commit(root: Path | None = None) -> None:
    """Record the flow's outputs in dvc.lock and the DVC cache, so `dvc status` is clean afterwards."""
    root = root or paths.project_root()
    dvc = Path(sys.executable).with_name("dvc")
    command = [str(dvc) if dvc.exists() else "dvc", "commit", "--force", "--quiet"]
    subprocess.run(command, cwd=root, check=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})


def task_runner(params: dict) -> Any:
    """The Prefect task runner named by params `flow.task_runner`: thread pool, Dask or Ray.

    Dask and Ray start a temporary local cluster of `flow.max_workers` single-threaded worker processes with
    no dashboard (Dask's bound to 127.0.0.1); with `flow.address` set they connect to that running cluster
    instead (Dask: the scheduler, e.g. tcp://host:8786; Ray: ray://host:10001, or `auto` for one started on
    this machine with `ray start --head`), whose own workers and resources apply.
    """
    flow_cfg = params["flow"]
    kind, workers, address = flow_cfg["task_runner"], flow_cfg["max_workers"], flow_cfg["address"]
    if kind == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    package = {"dask": "prefect_dask", "ray": "prefect_ray"}[kind]
    try:
        module = __import__(package)
    except ImportError:
        raise SystemExit(
            f"error: flow.task_runner '{kind}' needs the {package.replace('_', '-')} package "
            "(pip install -e '.[scale]')"
        ) from None
    if kind == "dask":
        if address:
            return module.DaskTaskRunner(address=address)
        local = {"host": "127.0.0.1", "dashboard_address": None, "processes": True}
        return module.DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, **local})
    if address:
        return module.RayTaskRunner(address=address)
    # Ray's own processes listen on the node's address (it refuses loopback); its token auth guards them.
    return module.RayTaskRunner(init_kwargs={"num_cpus": workers, "include_dashboard": False})


def main(argv: list[str] | None = None) -> int:
    from ..config.params import ParamsError, load_params

    parser = argparse.ArgumentParser(description="Run or serve the AdaMix reproduction flow.")
    parser.add_argument("command", choices=["run", "serve"])
    parser.add_argument("--profile", default=os.environ.get("PROFILE", ""))
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, profile=args.profile)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    configured = reproduce.with_options(task_runner=task_runner(params))
    if args.command == "run":
        configured(profile=args.profile, params_path=args.params)
        return 0
    configured.serve(
        name=params["flow"]["deployment"],
        cron=params["flow"]["cron"],
        parameters={"profile": args.profile, "params_path": str(Path(args.params).resolve())},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
