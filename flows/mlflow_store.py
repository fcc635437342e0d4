"""The MLflow store: where it is, created once under a file lock, which of its runs belong to dead processes,
and the keys MLflow accepts (`flatten`).

The lowest part of the tracking layer (flows.tracking builds parent and stage runs on it); imports only mlflow.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mlflow import MlflowClient
from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

try:
    import fcntl
except ImportError:  # Windows: no advisory file locks
    fcntl = None

PROJECT_ROOT = Path(__file__).resolve().parents[1]

HOST_TAG, PID_TAG = (
    "adamix.host",
    "adamix.pid",
)  # who owns a RUNNING run: reaped as KILLED once that process is gone
LOCK_PID_ENV = "ADAMIX_LOCK_PID"  # set by flows.orchestration.lock for its command: the pipeline's owner


def tracking_uri() -> str:
    """The MLflow tracking URI: ``MLFLOW_TRACKING_URI``, else ``sqlite:///<project root>/mlflow.db``.

    The project root is ``$ADAMIX_ROOT`` when set (as for every other output), else the repository.

    Returns:
        The URI string.
    """
    root = os.environ.get("ADAMIX_ROOT", "").strip()
    base = Path(root).expanduser().resolve() if root else PROJECT_ROOT
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{base / 'mlflow.db'}"


def client() -> MlflowClient:
    """A client of the tracking store, the store created first if it is a new sqlite file."""
    uri = tracking_uri()
    _init_store(uri)
    return MlflowClient(tracking_uri=uri)


@functools.lru_cache(maxsize=8)
def _init_store(uri: str) -> None:
    """Create (or migrate) a local sqlite store once, under the store's file lock.

    On a fresh database, processes that start together each ran MLflow's schema migration and 2 of 3 crashed
    ("table experiments already exists"); with the lock the first creates it and the others find it done.
    """
    database = sqlite_file(uri)
    if database is None or fcntl is None:
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(database):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


@contextlib.contextmanager
def store_lock(database: Path) -> Iterator[None]:
    with database.with_name(database.name + ".lock").open("a") as handle:  # beside the db: same permissions
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def owner_tags(pid: int | None) -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)} if pid else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def reap_dead_runs(client: MlflowClient, experiment: str) -> list[str]:
    """Mark KILLED the RUNNING runs of `experiment` whose owning process, on this host, no longer exists.

    A run killed with ``kill -9`` (or a pipeline whose ``make`` was) never reached its end; the next start
    settles it. Runs of other hosts, and runs without an owner tag, are left alone.

    Returns:
        The ids of the runs marked KILLED.
    """
    host = socket.gethostname()
    running = client.search_runs(
        [experiment],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        max_results=500,
    )
    reaped = []
    for run in running:
        pid = run.data.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, status="KILLED")
            reaped.append(run.info.run_id)
    return reaped


def run_status(exc_type: type[BaseException] | None, exc: BaseException | None) -> str:
    """FINISHED for a normal end (``sys.exit(0)`` included), KILLED for Ctrl-C, FAILED for any other error."""
    if exc_type is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
        return "FINISHED"
    return "KILLED" if exc_type is KeyboardInterrupt else "FAILED"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``sqlite:////abs/db`` or ``sqlite:///relative/db``), else None."""
    prefix = "sqlite:///"
    database = unquote(uri[len(prefix) :].split("?", 1)[0]) if uri.startswith(prefix) else ""
    return Path(database).resolve() if database and database != ":memory:" else None


def artifact_location(uri: str) -> str | None:
    """Artifacts of a sqlite store go beside the database (not into the current directory's ./mlruns)."""
    database = sqlite_file(uri)
    return (database.parent / "mlartifacts").as_uri() if database else None


_TRUNCATED = "...[truncated]"


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as MLflow params: dotted keys, string values (lists as JSON), long values truncated.

    Args:
        params: nested mapping.
        prefix: key prefix for recursion.

    Returns:
        A flat dict of MLflow-valid keys to values of at most MLflow's length limit.
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{safe_key(str(key))}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        if len(text) > MAX_PARAM_VAL_LENGTH:
            text = text[: MAX_PARAM_VAL_LENGTH - len(_TRUNCATED)] + _TRUNCATED
        flat[name[:MAX_ENTITY_KEY_LENGTH]] = text
    return flat


def safe_key(key: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . / : `` and spaces; anything else becomes ``_``."""
    return re.sub(r"[^\w\-./: ]", "_", key).strip("/") or "_"
