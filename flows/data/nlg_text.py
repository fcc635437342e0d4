"""How data-to-text sources are written as text: the official NLG linearisations, and checked (source, target) pairs.

The LoRA / AdaMix NLG code (`NLG/src/format_converting_*.py`, `data/e2e/*.txt`) feeds GPT-2 an E2E MR as
`name : The Vaults | Type : pub | price : more than £30` and WebNLG / DART triples as
`Subj : property : Obj | Subj2 : property2 : Obj2`; `flows.data.nlg` documents each task's layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .source import DataError, Example

E2E_KEYS: dict[str, str] = {"eatType": "Type", "priceRange": "price", "familyFriendly": "family friendly"}
"""E2E MR attributes that the official linearisation renames; every other attribute keeps its name."""
E2E_ATTRIBUTES = (
    "name",
    "eatType",
    "food",
    "priceRange",
    "customer rating",
    "area",
    "familyFriendly",
    "near",
)
"""The eight E2E attributes, in the order the challenge's MRs list them."""


def linearise_e2e(attributes: Iterable[tuple[str, str]]) -> str:
    """E2E attributes as the official NLG code's source: `name : The Vaults | Type : pub | ...`.

    Example:
        >>> linearise_e2e([("name", "The Vaults"), ("eatType", "pub"), ("familyFriendly", "yes")])
        'name : The Vaults | Type : pub | family friendly : yes'
    """
    return " | ".join(f"{E2E_KEYS.get(key, key)} : {value}" for key, value in attributes)


def linearise_triples(triples: Iterable[tuple[str, str, str]]) -> str:
    """Triples as the official WebNLG / DART converters join them: `Subj : property : Obj | ...`.

    Example:
        >>> linearise_triples([("Aarhus", "leaderName", "Jacob_Bundsgaard"), ("Aarhus", "country", "Denmark")])
        'Aarhus : leaderName : Jacob_Bundsgaard | Aarhus : country : Denmark'
    """
    return " | ".join(f"{subject} : {relation} : {obj}" for subject, relation, obj in triples)


_MR_ATTRIBUTE = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]\s*(?:,|$)")


def parse_e2e_mr(mr: str) -> list[tuple[str, str]] | None:
    """`name[The Vaults], eatType[pub]` -> `[("name", "The Vaults"), ("eatType", "pub")]`; None if malformed."""
    attributes, position, mr = [], 0, mr.strip()
    while position < len(mr):
        match = _MR_ATTRIBUTE.match(mr, position)
        if match is None or not match[2].strip():
            return None
        attributes.append((match[1], match[2].strip()))
        position = match.end()
    return attributes or None


def make_pair(source: str, target: Any, where: str) -> Example:
    """One (source, target) example; an empty or non-text source or target is a DataError at `where`."""
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"{where}: empty source")
    if not isinstance(target, str) or not target.strip():
        raise DataError(f"{where}: empty reference (every reference must be a non-empty text)")
    return {"text_a": source.strip(), "text_b": None, "label": target.strip()}


_GEM_E2E_SPLIT = re.compile(", (?=(?:" + "|".join(map(re.escape, E2E_ATTRIBUTES)) + "): )")


def gem_e2e_source(text: str) -> str | None:
    """BIG-bench's `name: Blue Spice, eatType: pub` as the official E2E source; None if it does not parse."""
    attributes = []
    for part in _GEM_E2E_SPLIT.split(text.strip()):
        key, separator, value = part.partition(": ")
        if not separator or key not in E2E_ATTRIBUTES or not value.strip():
            return None
        attributes.append((key, value.strip()))
    return linearise_e2e(attributes)


def gem_webnlg_source(text: str) -> str | None:
    """BIG-bench's `(Subj | property | Obj), (...)` as the official WebNLG source; None if it does not parse."""
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return None
    triples = [tuple(triple.split(" | ")) for triple in text[1:-1].split("), (")]
    if not all(len(triple) == 3 and all(part.strip() for part in triple) for triple in triples):
        return None
    if "(" + "), (".join(" | ".join(triple) for triple in triples) + ")" != text:  # a value held a separator
        return None
    return linearise_triples(triples)  # type: ignore[arg-type]
