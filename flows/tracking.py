"""MLflow tracking for every stage: one parent run per pipeline run, one nested child run per stage call.

This is the only module that talks to MLflow. It uses ``MlflowClient`` with explicit run ids (no fluent
active-run state), so stages running in threads or in separate processes never share hidden state.

    with StageRun(params, "train", "rotten_tomatoes/adamix_adapter/13", run_params(params, "adamix_adapter"),
                  tags={"task": "rotten_tomatoes", "method": "adamix_adapter", "seed": 13}) as run:
        run.log_metrics({"train_loss": 0.4}, step=1)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

from . import mlflow_store as store
from .mlflow_store import LOCK_PID_ENV, PROJECT_ROOT, flatten, reap_dead_runs, tracking_uri

try:
    import fcntl
except ImportError:  # Windows: no advisory file locks; parents then settle on the oldest run
    fcntl = None

PIPELINE_TAG = "adamix.pipeline_run"  # on the parent and on every child: the pipeline run they belong to
KIND_TAG = "adamix.kind"  # "pipeline" on the parent, "stage" on children
PARENT_TAG = "mlflow.parentRunId"  # what the MLflow UI nests by
COMMIT_TAG = "mlflow.source.git.commit"
_SETTLE_SECONDS = 1.0


def finish_pipeline(run_key: str, status: str) -> list[str]:
    """Mark the RUNNING parent runs of pipeline `run_key` (any experiment of the store) `status`.

    The DVC path has no single process that sees the pipeline end; flows.orchestration.lock, which wraps
    `make reproduce`, calls this with the outcome of `dvc repro` (FINISHED, FAILED or KILLED).
    """
    client = store.client()
    done = []
    for experiment in client.search_experiments():
        for run in _find_parents(client, experiment.experiment_id, _checked_key(run_key, "run_key")):
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status=status)
                done.append(run.info.run_id)
    return done


@contextlib.contextmanager
def _parent_lock() -> Iterator[bool]:
    """Serialise find-or-create of parent runs among processes sharing a local sqlite store.

    Run start times are taken before the insert commits, so without a lock two racing creators can each see
    only their own run and keep it. Other stores (a tracking server) fall back to settling on the oldest run.
    """
    database = store.sqlite_file(tracking_uri())
    if database is None or fcntl is None:
        yield False
        return
    with store.store_lock(database):
        yield True


def experiment_id(params: Mapping[str, Any]) -> str:
    """Id of the experiment named by ``tracking.experiment``, created if missing (safe under races).

    Args:
        params: validated parameters.

    Returns:
        The experiment id.
    """
    name = params["tracking"]["experiment"]
    client = store.client()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":  # runs cannot be created in a deleted experiment
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=store.artifact_location(tracking_uri()))
    except MlflowException:  # another process created it between the lookup and the create
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The project's current git commit, or None outside a git checkout (or without git).

    Returns:
        The full commit sha, or None.
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative paths and contents, in sorted order).

    Args:
        path: a file or a directory.

    Returns:
        The hex digest.

    Raises:
        FileNotFoundError: `path` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot hash {path}: no such file or directory")
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file is not path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def run_tags(task: str, method: str, seed: int, data_dir: str | Path) -> dict[str, str]:
    """The tags every train and evaluate run carries: task, method, seed and the hash of its data split.

    Args:
        task: task name.
        method: method name.
        seed: training seed.
        data_dir: the split folder the run read (hashed with :func:`file_hash`).

    Returns:
        Tag name -> value.
    """
    return {
        "adamix.task": task,
        "adamix.method": method,
        "adamix.seed": str(seed),
        "adamix.data_hash": file_hash(data_dir),
    }


def pipeline_run_id(params: Mapping[str, Any]) -> str:
    """Key shared by every stage process of one pipeline run.

    ``ADAMIX_PIPELINE_RUN`` when set; otherwise a short hash of the resolved params and the git commit, so that
    the separate processes of one ``dvc repro`` (same params, same commit) agree without talking to each other.
    Pass the full resolved params here, not one method's `run_params`.

    Args:
        params: validated parameters.

    Returns:
        The key (12 hex characters unless given by the environment).
    """
    if os.environ.get("ADAMIX_PIPELINE_RUN"):
        return _checked_key(os.environ["ADAMIX_PIPELINE_RUN"], "ADAMIX_PIPELINE_RUN")
    payload = json.dumps(params, sort_keys=True, default=str) + (git_commit() or "")
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _checked_key(key: str, source: str) -> str:
    if not re.fullmatch(r"[\w.\-:]{1,200}", key):
        raise ValueError(f"{source} must be 1-200 letters, digits or '_.-:', got {key!r}")
    return key


def _find_parents(client: MlflowClient, experiment: str, key: str) -> list[Any]:
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.`{PIPELINE_TAG}` = '{key}' and tags.`{KIND_TAG}` = 'pipeline'",
        order_by=["attributes.start_time ASC"],
        max_results=100,
    )
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def get_or_create_parent(params: Mapping[str, Any], run_key: str | None = None) -> str:
    """Find the parent run of this pipeline run (by tag ``adamix.pipeline_run``) or create it.

    Safe when stage processes race: with a local sqlite store the lookup and creation hold a file lock; with
    other stores a creator waits briefly, then every process settles on the oldest run and extra ones are
    deleted.

    Args:
        params: validated parameters (the full resolved set; logged on the parent when it is created).
        run_key: the pipeline run key; default `pipeline_run_id(params)`.

    Returns:
        The parent's run id.
    """
    key = _checked_key(run_key, "run_key") if run_key else pipeline_run_id(params)
    client, experiment = store.client(), experiment_id(params)
    with _parent_lock() as locked:
        found = _find_parents(client, experiment, key)
        if found:
            return found[0].info.run_id
        reap_dead_runs(client, experiment)
        owner = os.environ.get(LOCK_PID_ENV, "")
        # The owner is the locked `make` command when there is one; a plain `dvc repro` has no long-lived
        # process, so its parent carries no owner (the lock wrapper, or the Prefect flow, finishes it).
        tags = {
            PIPELINE_TAG: key,
            KIND_TAG: "pipeline",
            **store.owner_tags(int(owner) if owner.isdigit() else None),
        }
        run = client.create_run(experiment, tags={**tags, **_commit_tag()}, run_name=f"pipeline {key}")
    if not locked:
        time.sleep(_SETTLE_SECONDS)  # let a racing creator's insert commit before choosing the oldest
    oldest = _find_parents(client, experiment, key)[0]
    if oldest.info.run_id != run.info.run_id:
        client.delete_run(run.info.run_id)  # lost a race: use the run the other process created first
        return oldest.info.run_id
    _log_params(client, run.info.run_id, params)
    return run.info.run_id


def finish_parent(params: Mapping[str, Any], status: str = "FINISHED", run_key: str | None = None) -> None:
    """Mark the pipeline's parent run terminated (the last stage, or the flow, calls this).

    Args:
        params: validated parameters.
        status: FINISHED, FAILED or KILLED.
        run_key: the pipeline run key; default `pipeline_run_id(params)`.
    """
    store.client().set_terminated(get_or_create_parent(params, run_key), status=status)


def _commit_tag() -> dict[str, str]:
    commit = git_commit()
    return {COMMIT_TAG: commit} if commit else {}


def _log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    items = [Param(key, value) for key, value in flatten(params).items()]
    for batch in _batches(items, MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=batch, synchronous=True)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StageRun:
    """One stage call as an MLflow child run nested under the pipeline's parent run (a context manager).

    Args:
        params: the full validated parameters (they pick the experiment and the parent run).
        stage: the stage name, e.g. "train" (tag ``adamix.stage``, and the start of the run name).
        name: what this call works on, e.g. "rotten_tomatoes/adamix_adapter/13".
        run_params: the parameters this call used (e.g. `flows.config.grid.run_params(params, method)`), logged
            flattened with dotted keys.
        tags: extra tags; a key without a dot is namespaced (``task`` -> ``adamix.task``), so the usual ones
            are task, method, seed and data_hash. Values are logged as strings.

    On exit the run is marked FINISHED, or FAILED if an exception escaped (the exception propagates).
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        stage: str,
        name: str,
        run_params: Mapping[str, Any],
        tags: Mapping[str, Any] | None = None,
        resume: str | None = None,
    ) -> None:
        self.params, self.stage, self.name, self.run_params = params, stage, name, run_params
        self.resume = (
            resume  # the id of an earlier run of this stage call to continue (a resumed training run)
        )
        self.tags = {
            k if "." in k else f"adamix.{k}": str(v) for k, v in (tags or {}).items() if v is not None
        }
        self.run_id: str | None = None
        self._client = store.client()

    @property
    def run_name(self) -> str:
        """The MLflow run name: ``"<stage> <name>"``, unless `name` already starts with the stage."""
        return self.name if self.name.split(" ", 1)[0] == self.stage else f"{self.stage} {self.name}"

    def __enter__(self) -> StageRun:
        if self.resume:
            try:
                self._client.get_run(self.resume)
            except MlflowException:
                pass  # gone (another store, or deleted): start a new run
            else:
                self._client.update_run(self.resume, status="RUNNING")
                self.run_id = self.resume
                return self
        key = pipeline_run_id(self.params)
        parent = get_or_create_parent(self.params, key)
        tags = {
            PARENT_TAG: parent,
            PIPELINE_TAG: key,
            KIND_TAG: "stage",
            "adamix.stage": self.stage,
            **store.owner_tags(os.getpid()),
            **_commit_tag(),
            **self.tags,
        }
        experiment = experiment_id(self.params)
        reap_dead_runs(
            self._client, experiment
        )  # runs of processes killed earlier: KILLED, not RUNNING forever
        run = self._client.create_run(experiment, tags=tags, run_name=self.run_name)
        self.run_id = run.info.run_id
        _log_params(self._client, self.run_id, self.run_params)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if self.run_id is not None:
            self._client.set_terminated(self.run_id, status=store.run_status(exc_type, exc))
        return False

    def _require_run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("StageRun is not active: use it as `with StageRun(...) as run:`")
        return self.run_id

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log numeric metrics (one batch, one timestamp).

        Args:
            metrics: metric name -> number; names may contain ``/`` (e.g. "validation/accuracy").
            step: the step (e.g. the epoch); default 0.

        Raises:
            TypeError: a value is not a real number (booleans included), naming the metric.
        """
        run_id, now = self._require_run(), int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"metric {key!r} must be a number, got {value!r}")
            items.append(Metric(store.safe_key(str(key)), float(value), now, step or 0))
        for batch in _batches(items, 1000):
            self._client.log_batch(run_id, metrics=batch, synchronous=True)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Add tags to the run (keys without a dot get the ``adamix.`` prefix, as in the constructor).

        Args:
            tags: tag name -> value (logged as strings).
        """
        items = [RunTag(k if "." in k else f"adamix.{k}", str(v)) for k, v in tags.items() if v is not None]
        self._client.log_batch(self._require_run(), tags=items, synchronous=True)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy one file into the run's artifacts.

        Args:
            path: the local file.
            artifact_path: folder inside the run's artifacts (default: the top).
        """
        self._client.log_artifact(self._require_run(), str(path), artifact_path)

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """Copy a directory's contents into the run's artifacts.

        Args:
            directory: the local directory.
            artifact_path: folder inside the run's artifacts (default: the top).
        """
        self._client.log_artifacts(self._require_run(), str(directory), artifact_path)
