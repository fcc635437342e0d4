"""Outputs get the permissions of an ordinary write (0o666 / 0o777 & ~umask), not tempfile's private 0600 / 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from tiny_models import tiny_classifier

import adamix
from flows.atomic import current_umask, staging_dir, staging_file
from flows.config.files import write_if_changed


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing_it(umask_027) -> None:
    assert current_umask() == 0o027 and current_umask() == 0o027


def test_staging_paths_follow_the_umask(tmp_path: Path, umask_027) -> None:
    folder = staging_dir(tmp_path / "out" / "run")
    assert folder.parent == tmp_path / "out" and folder.name.startswith(".run.") and _mode(folder) == 0o750
    fd, name = staging_file(tmp_path / "params.yaml")
    os.close(fd)
    assert _mode(name) == 0o640


def test_written_params_and_artifacts_are_not_private(tmp_path: Path, umask_027) -> None:
    write_if_changed(tmp_path / "params.resolved.yaml", "a: 1\n")
    assert _mode(tmp_path / "params.resolved.yaml") == 0o640  # was 0600
    model = adamix.get_adamix_model(tiny_classifier("bert"), adamix.AdaMixConfig(bottleneck=4))
    folder = adamix.save_adamix(model, tmp_path / "artifact")
    assert _mode(folder) == 0o750  # was 0700
    assert all(_mode(p) == 0o640 for p in folder.iterdir())


def test_ordinary_modes_opens_up_a_library_written_folder(tmp_path: Path, umask_027) -> None:
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "model.safetensors").write_bytes(b"x")
    (folder / "sub" / "model.safetensors").chmod(0o600)
    folder.chmod(0o700)
    from flows.atomic import ordinary_modes

    ordinary_modes(folder)
    assert (_mode(folder), _mode(folder / "sub"), _mode(folder / "sub" / "model.safetensors")) == (
        0o750,
        0o750,
        0o640,
    )
