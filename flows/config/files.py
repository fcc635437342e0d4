"""Params files: strict YAML reading (YAML 1.2 floats, no duplicate keys), profiles, deep merging, atomic writes."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..atomic import staging_file
from .schema import ParamsError


class _Loader(yaml.SafeLoader):
    """Safe loader that reads `1e-4` as a float (YAML 1.2) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` entries may legitimately be overridden by explicit keys
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_document(self) -> yaml.Node:
        document = super().compose_document()
        if _expanded_size(document) > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"its aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?)",
                document.start_mark,
            )
        return document


# A params file has a few hundred values; a 450-byte "billion laughs" file expands to 9^9 of them, which a
# loader builds as shared objects but every later deep copy and validation writes out in full.
MAX_EXPANDED_NODES = 100_000


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes `root` holds with every alias written out, counted without writing them out (each node
    once, bottom-up, capped just past the budget); a node that contains itself counts as over budget."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            sizes[id(node)] = min(MAX_EXPANDED_NODES + 1, 1 + sum(sizes[id(child)] for child in children))
            visiting.discard(id(node))
        elif id(node) in visiting:  # reached again from inside itself
            return MAX_EXPANDED_NODES + 1
        elif id(node) not in sizes:
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: Path, *, allow_empty: bool = False) -> dict[str, Any]:
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader subclass)
    except RecursionError:
        raise ParamsError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ParamsError(f"{where}: invalid YAML: {problem}") from None
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def profile_path(profile: str, root: Path) -> Path:
    if profile.endswith((".yaml", ".yml")):
        return Path(profile)
    folder = root / "profiles"
    candidate = folder / f"{profile}.yaml"
    if candidate.is_file():
        return candidate
    available = sorted(p.stem for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    raise ParamsError(
        f"unknown profile {profile!r}: no {candidate}; available profiles: {', '.join(available) or 'none'}"
    )


# -- merging ---------------------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `override` over `base` into a new dict; neither input is modified.

    Args:
        base: the starting mapping.
        override: values that win; a mapping merges into a mapping recursively, anything else replaces.

    Returns:
        A new dict sharing no mutable values with the inputs.
    """
    merged = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    fd, tmp = staging_file(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def dump_yaml(params: Mapping[str, Any]) -> str:
    plain = json.loads(json.dumps(params))  # tuples -> lists, any Mapping -> dict: what safe_dump accepts
    return yaml.safe_dump(plain, sort_keys=True, default_flow_style=False)
