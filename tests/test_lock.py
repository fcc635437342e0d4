"""One pipeline run per workspace (flows.orchestration.lock): a second one is refused before it changes anything."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tiny_project import make_project, tool_env

from flows.orchestration.lock import WorkspaceBusy, workspace_lock

LOCK = [sys.executable, "-m", "flows.orchestration.lock", "--"]


def _resolve(params_file: Path, profile: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flows.config",
        "resolve",
        "--params",
        str(params_file),
        "--profile",
        profile,
    ]


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    with workspace_lock(tmp_path, ["make", "reproduce"]):
        with pytest.raises(WorkspaceBusy, match=rf"pid {os.getpid()}, since .*`make reproduce`"):
            with workspace_lock(tmp_path):
                pass
    with workspace_lock(tmp_path):  # released on exit
        pass


def test_a_second_concurrent_run_changes_nothing(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Two `make reproduce`-style invocations with different profiles: the second stops at once with one line,
    and the resolved params stay the first one's (they used to be rewritten under the first run's feet)."""
    params_file = make_project(tmp_path, tiny_model_dir)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "one.yaml").write_text("train: {learning_rate: 0.001}\n")
    (tmp_path / "profiles" / "two.yaml").write_text("train: {learning_rate: 0.002}\n")
    env = tool_env(tmp_path)
    resolved = tmp_path / "params.resolved.yaml"
    first_cmd = " ".join(_resolve(params_file, "one")) + f" --out {resolved} && sleep 5"
    first = subprocess.Popen([*LOCK, "bash", "-c", first_cmd], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while not resolved.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert resolved.exists()
        before = resolved.read_bytes()
        second = subprocess.run(
            [*LOCK, *_resolve(params_file, "two"), "--out", str(resolved)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2 and first.poll() is None
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: another pipeline run holds this workspace")
        assert f"pid {first.pid}" in lines[0]
        assert resolved.read_bytes() == before
        assert yaml.safe_load(before)["train"]["learning_rate"] == 0.001
    finally:
        assert first.wait(timeout=60) == 0
    third = subprocess.run([*LOCK, "true"], cwd=tmp_path, env=env, timeout=60)
    assert third.returncode == 0  # free again once the first run ended
