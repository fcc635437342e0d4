"""The value types of params keys: pydantic types (strict, in the models of flows.config.schema) with, on each,
what a value must be as error messages say it (an `Expect` marker in the `Annotated` metadata).

A message reads ``'<dotted key>' must be <Expect.phrase>, got <value>``; flows.config.validation writes it from
pydantic's first error, and `flows.config.schema.check_field` from one key's check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    WithJsonSchema,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


@dataclass(frozen=True)
class Expect:
    """`Annotated` marker: what a valid value is, e.g. ``"an int >= 1"`` (the end of "must be ...")."""

    phrase: str


def expected(info: FieldInfo) -> str:
    """The phrase of a model field's `Expect` marker (the last one: an outer `Annotated` wins over an alias).

    Raises:
        LookupError: the field has no marker (a test checks that every field has one).
    """
    phrases = [item.phrase for item in info.metadata if isinstance(item, Expect)]
    if not phrases:
        raise LookupError(f"field {info!r} has no Expect marker")
    return phrases[-1]


class _UniqueItems:
    """`Annotated` marker for lists: no item repeated (compared by repr, as 13 and 13.0 differ); uniqueItems."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_check_unique, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["uniqueItems"] = True
        return json_schema


def _check_unique(value: list[Any]) -> list[Any]:
    if len({repr(item) for item in value}) != len(value):
        raise ValueError("repeated items")
    return value


def _check_nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("blank string")
    return value


def _check_cron(value: str) -> str:
    if len(value.split()) != 5:
        raise ValueError("not 5 fields")
    return value


def _check_mapping(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError("not a mapping")
    return value


Unique = _UniqueItems()
NonEmpty = Field(min_length=1)

# -- scalars --------------------------------------------------------------------------------------------------

Text = Annotated[
    str,
    AfterValidator(_check_nonblank),
    WithJsonSchema({"type": "string", "pattern": r"\S"}),
    Expect("a non-empty string"),
]
Name = Annotated[str, AfterValidator(_check_nonblank)]  # a mapping key: the JSON schema keeps a plain string
OptionalText = Annotated[Text | None, Expect("null or a non-empty string")]
Flag = Annotated[bool, Expect("true or false")]
PositiveInt = Annotated[int, Field(ge=1), Expect("an int >= 1")]
NaturalInt = Annotated[int, Field(ge=0), Expect("an int >= 0")]
OptionalPositiveInt = Annotated[PositiveInt | None, Expect("null or an int >= 1")]
Decimals = Annotated[int, Field(ge=0, le=6), Expect("an int from 0 to 6")]
# The loop keeps one loss per step (a float32 tensor of epochs x steps per epoch): `epochs: 1e12` must be a
# config error, not an allocator traceback. 10,000 passes is far past any schedule of the paper.
Epochs = Annotated[int, Field(ge=1, le=10_000), Expect("an int from 1 to 10000")]
# Numbers: strict floats take ints (`consistency_weight: 0`) but never bools or strings, and must be finite.
PositiveNumber = Annotated[float, Field(gt=0, allow_inf_nan=False), Expect("a number > 0")]
NonNegativeNumber = Annotated[float, Field(ge=0, allow_inf_nan=False), Expect("a number >= 0")]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False), Expect("a number >= 0 and < 1")]
OptionalPositiveNumber = Annotated[PositiveNumber | None, Expect("null or a number > 0")]
Number = Annotated[float, Field(allow_inf_nan=False), Expect("a finite number")]
Separator = Annotated[str, Field(max_length=64), Expect("a string (may be a newline, at most 64 characters)")]
LearningRates = Annotated[
    PositiveNumber | Annotated[list[PositiveNumber], NonEmpty, Unique],
    Expect(
        "a number > 0, or a non-empty list of unique numbers > 0 (each trained, the best on validation kept)"
    ),
]
Cron = Annotated[
    str,
    AfterValidator(_check_cron),
    WithJsonSchema({"type": "string", "pattern": r"^\s*\S+(\s+\S+){4}\s*$"}),
    Expect("a 5-field cron expression"),
]
_NAME_FIELDS = {"task": "t", "method": "m", "seed": "0"}  # what a registered-model name template may use


def _check_name_template(value: str) -> str:
    _check_nonblank(value)
    try:
        value.format(**_NAME_FIELDS)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"bad template ({err})") from None
    return value


def _check_alias_template(value: str) -> str:
    filled = _check_name_template(value).format(**_NAME_FIELDS)
    if not re.fullmatch(r"[\w\-]+", filled) or filled.lower() == "latest" or re.fullmatch(r"[vV]\d+", filled):
        raise ValueError("not an MLflow alias")
    return value


ModelName = Annotated[
    str,
    AfterValidator(_check_name_template),
    WithJsonSchema({"type": "string", "pattern": r"\S"}),
    Expect("a non-empty name, in which {task}, {method} and {seed} are filled in"),
]
ModelAlias = Annotated[
    str,
    AfterValidator(_check_alias_template),
    WithJsonSchema({"type": "string", "pattern": r"^([\w\-]|\{(task|method|seed)\})+$"}),
    Expect(
        "letters, digits, _ and - (not 'latest' or v<number>), in which {task}, {method} and {seed} are filled in"
    ),
]

# -- choices --------------------------------------------------------------------------------------------------

MethodName = Literal["adamix_adapter", "adamix_lora", "adapter", "lora", "full"]
InferenceMode = Literal["merge", "random", "fixed"]
KNOWN_METHODS: tuple[str, ...] = get_args(MethodName)
INFERENCE_MODES: tuple[str, ...] = get_args(InferenceMode)


def _one_of(choices: Any) -> Expect:
    return Expect(f"one of {', '.join(get_args(choices))}")


_Device = Literal["auto", "cpu", "cuda", "mps"]
_Precision = Literal["auto", "fp32", "bf16", "fp16"]
_TwoView = Literal["batched", "sequential"]
_Share = Literal["up", "down", "none"]
_Placement = Literal["ffn", "houlsby"]
_TaskRunner = Literal["thread", "dask", "ray"]
_Select = Literal["last", "best"]
_ExpertInit = Literal["identical", "independent"]
Method = Annotated[MethodName, _one_of(MethodName)]
Mode = Annotated[InferenceMode, _one_of(InferenceMode)]
Device = Annotated[_Device, _one_of(_Device)]
Precision = Annotated[_Precision, _one_of(_Precision)]
TwoView = Annotated[_TwoView, _one_of(_TwoView)]
Share = Annotated[_Share, _one_of(_Share)]
Placement = Annotated[_Placement, _one_of(_Placement)]
TaskRunner = Annotated[_TaskRunner, _one_of(_TaskRunner)]
Select = Annotated[_Select, _one_of(_Select)]
ExpertInit = Annotated[_ExpertInit, _one_of(_ExpertInit)]

# -- lists and mappings ---------------------------------------------------------------------------------------

TaskNames = Annotated[list[Text], NonEmpty, Unique, Expect("a non-empty list of unique task names")]
AblationTaskNames = Annotated[list[Text], Unique, Expect("a list of unique task names")]
Methods = Annotated[
    list[MethodName],
    NonEmpty,
    Unique,
    Expect(f"a non-empty list of unique methods from {', '.join(KNOWN_METHODS)}"),
]
Seeds = Annotated[list[NaturalInt], NonEmpty, Unique, Expect("a non-empty list of unique int seeds")]
OptionalSeeds = Annotated[Seeds | None, Expect("null or a non-empty list of unique int seeds")]
OptionalSeed = Annotated[NaturalInt | None, Expect("null or an int seed >= 0")]
MethodSubset = Annotated[
    list[MethodName],
    Unique,
    Expect(f"a list of unique methods from {', '.join(KNOWN_METHODS)} (may be empty)"),
]
InferenceModes = Annotated[
    list[InferenceMode],
    NonEmpty,
    Unique,
    Expect(f"a non-empty list of unique modes from {', '.join(INFERENCE_MODES)}"),
]
TargetModules = Annotated[
    None | Text | Annotated[list[Text], NonEmpty, Unique],
    Expect("null, a regex string, or a non-empty list of module names"),
]
Templates = Annotated[dict[Name, Text], Expect("a mapping from task names to template strings")]
LabelWords = Annotated[
    dict[Name, Annotated[list[Text], NonEmpty, Unique]],
    Expect("a mapping from task names to lists of label words"),
]


def free_mapping(described_as: Any) -> Any:
    """A mapping validated here only for being one: its entries have checks of their own (flows.data, the
    method_overrides and ablation grid checks), so no second validator could disagree with them; the JSON
    schema describes it as `described_as`, e.g. ``dict[str, DatasetEntry]`` (a model used only for the schema)."""
    return Annotated[
        dict[Any, Any],
        PlainValidator(_check_mapping, json_schema_input_type=described_as),
        Expect("a mapping"),
    ]
