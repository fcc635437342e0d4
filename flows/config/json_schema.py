"""JSON Schemas generated from the params models, for editors (yaml-language-server) and other validators.

- ``params.schema.json``: params.yaml, every key required, with params.yaml's values as defaults.
- ``profiles/profile.schema.json``: a profile, the same schema with nothing required (a profile is a partial overlay
  deep-merged over params.yaml) and ablation grids that may be null (how a profile switches one off).

``python -m flows.config schema`` writes both (only on change); ``--check`` says whether they are current.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.source import CORE_SPLITS
from ..metrics import METRICS
from .fields import NonEmpty, Text, Unique
from .files import write_if_changed
from .grid import ABLATION_SECTIONS
from .schema import DEFAULTS, KNOWN_METHODS, OVERRIDABLE, SECTIONS, Params, field_names

PARAMS_SCHEMA = "params.schema.json"
PROFILE_SCHEMA = "profiles/profile.schema.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# -- a datasets entry: its keys and types as flows.data.user._ENTRY_RULES checks them (a test keeps the keys equal)

_Size = Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0, lt=1)]
_Names = Annotated[list[Text], NonEmpty, Unique]


class DatasetEntry(BaseModel):
    """A user task (checked by flows.data.validate_dataset_cfg; this model is for the JSON schema only)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"required": ["text_columns", "label_column", "metric"]}
    )

    path: Text = Field(description="local csv, jsonl or parquet file with the data (or its training split)")
    test_path: Text = Field(description="local csv, jsonl or parquet file with the test split")
    validation_path: Text = Field(description="local csv, jsonl or parquet file with the validation split")
    hub: Text = Field(description="Hugging Face Hub dataset id such as 'org/name' (instead of path)")
    hub_config: Text = Field(description="configuration name of the Hub dataset")
    hub_splits: dict[Literal[CORE_SPLITS], Text] = Field(
        description="Hub split names of some of train, validation and test"
    )
    text_columns: Annotated[_Names, Field(max_length=2)] = Field(
        description="one or two distinct text columns (a sentence, or a pair)"
    )
    label_column: Text = Field(description="the label column")
    metric: Literal[METRICS] | Annotated[list[Literal[METRICS]], NonEmpty, Unique] = Field(
        description="metric name, or a list of names (the first is the primary one)"
    )
    test_size: _Size = Field(description="test examples held out of the data (an int, or a fraction)")
    validation_size: _Size = Field(
        description="validation examples held out of the data (an int, or a fraction)"
    )
    label_names: Annotated[_Names, Field(min_length=2)] = Field(
        description="class names in label order (two or more)"
    )


def params_json_schema() -> dict[str, Any]:
    """The JSON Schema of a whole params file (params.yaml, params.resolved.yaml)."""
    schema = Params.model_json_schema()
    defs = schema["$defs"]
    defs["DatasetEntry"] = DatasetEntry.model_json_schema()
    schema["properties"]["datasets"]["additionalProperties"] = {"$ref": "#/$defs/DatasetEntry"}
    for section, model in SECTIONS.items():
        for key, prop in defs[model.__name__]["properties"].items():
            prop["default"] = copy.deepcopy(DEFAULTS[section][key])
    for key, prop in schema["properties"].items():
        if key not in SECTIONS:
            prop["default"] = copy.deepcopy(DEFAULTS[key])
    # A method override sets some keys of some sections: those sections' properties, none required.
    for section in OVERRIDABLE:
        name = SECTIONS[section].__name__
        defs[f"{name}Override"] = {**_partial(defs[name]), "title": f"{name}Override"}
    overrides = schema["properties"]["method_overrides"]
    overrides["propertyNames"] = {"enum": list(KNOWN_METHODS)}
    overrides["additionalProperties"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {s: {"$ref": f"#/$defs/{SECTIONS[s].__name__}Override"} for s in OVERRIDABLE},
    }
    # An ablation grid varies one key of the sections flows.config.grid allows.
    keys = [f"{section}.{key}" for section in ABLATION_SECTIONS for key in field_names(section)]
    defs["AblationGrid"]["properties"]["key"] = {**defs["AblationGrid"]["properties"]["key"], "enum": keys}
    return {"$schema": _DIALECT, **schema}


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile: `params_json_schema` with no key required and grids that may be null."""
    schema = _partial(params_json_schema())
    schema["$defs"] = {name: _partial(model) for name, model in schema["$defs"].items()}
    schema["title"] = "Profile"
    schema["description"] = (
        "A profile (profiles/<name>.yaml): keys deep-merged over params.yaml's before validation."
    )
    grids = schema["$defs"][SECTIONS["ablations"].__name__]["properties"]["grids"]
    grids["additionalProperties"] = {"anyOf": [grids["additionalProperties"], {"type": "null"}]}
    return schema


def _partial(model: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in model.items() if key != "required"}


def schema_texts() -> dict[str, str]:
    """Each schema file (relative to the repository root) and its content: sorted keys, 2-space indent."""
    return {
        PARAMS_SCHEMA: _dump(params_json_schema()),
        PROFILE_SCHEMA: _dump(profile_json_schema()),
    }


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(root: Path) -> list[str]:
    """Write both schema files under `root`, each only if its content changes; returns those written."""
    return [name for name, text in schema_texts().items() if write_if_changed(root / name, text)]


def stale_schemas(root: Path) -> list[str]:
    """The schema files under `root` that are missing or differ from what the models generate."""
    return [
        name
        for name, text in schema_texts().items()
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]
