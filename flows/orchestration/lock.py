"""One pipeline run per workspace: run a command while holding the workspace lock, or refuse at once.

`make reproduce` and `make flow` resolve the params (rewriting params.resolved.yaml and params.grid.yaml) and
then run DVC or Prefect. DVC's own lock only covers `dvc repro`, so a second invocation used to rewrite the
resolved params under the first one's feet before DVC refused it: the first run then trained with the second's
settings. Both targets now run their resolve + repro inside this lock::

    python -m flows.orchestration.lock -- sh -c 'python -m flows.config resolve ... && dvc repro'

A second invocation exits 2 at once, before it changes anything, with one line naming the holder. The lock is an
advisory `fcntl.flock` on ``<project root>/.adamix.lock``: the kernel releases it when the holder exits, however it
exits (a `kill -9` leaves no stale lock).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..config import paths
from ..errors import InputError

LOCK_NAME = ".adamix.lock"
LOCK_PID_ENV = "ADAMIX_LOCK_PID"  # = flows.tracking.LOCK_PID_ENV (not imported: MLflow is slow to import)


class WorkspaceBusy(InputError):
    """Another pipeline run holds the workspace lock."""


@contextlib.contextmanager
def workspace_lock(root: Path | None = None, command: Sequence[str] = ()) -> Iterator[Path]:
    """Hold the workspace lock for the duration of the block.

    Raises:
        WorkspaceBusy: another process holds it (the message names its pid, start time and command).
    """
    path = (root or paths.project_root()) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            raise WorkspaceBusy(
                f"another pipeline run holds this workspace ({path}{holder}); wait for it to finish or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        info = {
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(command),
        }
        handle.write(json.dumps(info) + "\n")
        handle.flush()
        yield path
    finally:
        handle.close()  # releases the lock


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f": pid {info['pid']}, since {info['started']}, `{info['command']}`"
    except (ValueError, KeyError, TypeError):
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a command while holding the workspace's pipeline lock.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (python -m flows.orchestration.lock -- COMMAND ...)")
    try:
        with workspace_lock(command=command):
            env = {**os.environ, LOCK_PID_ENV: str(os.getpid())}  # parent runs record their owner
            try:
                code = subprocess.run(command, check=False, env=env).returncode
            except KeyboardInterrupt:
                code = -2
            _finish_pipeline(code)
            return code
    except WorkspaceBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _finish_pipeline(code: int) -> None:
    """End the MLflow parent run of this pipeline run (``ADAMIX_PIPELINE_RUN``) with the command's outcome."""
    key = os.environ.get("ADAMIX_PIPELINE_RUN")
    if not key:
        return
    from ..mlflow_store import sqlite_file, tracking_uri
    from ..tracking import finish_pipeline

    database = sqlite_file(tracking_uri())
    if database is not None and not database.exists():
        return  # nothing was tracked
    status = "FINISHED" if code == 0 else "KILLED" if code < 0 or code in (130, 137, 143) else "FAILED"
    finish_pipeline(key, status)


if __name__ == "__main__":
    sys.exit(main())
