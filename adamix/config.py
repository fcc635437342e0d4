"""AdaMixConfig: every knob of a mixture of adaptations, validated, saved as sorted JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"

METHODS = ("adapter", "lora")
SHARE_MODES = ("up", "down", "none")
# "random_token" is the paper's per-token random-routing ablation; "random" routes each example (sentence).
INFERENCE_MODES = ("merge", "random", "random_token", "fixed")
PLACEMENTS = ("ffn", "houlsby")
EXPERT_INITS = ("identical", "independent")
DEFAULT_INIT_STD = 0.02  # BERT's and RoBERTa's initializer_range, for models whose config has none

# Architecture families: model_type -> family whose module names the defaults below describe.
_FAMILIES = {
    **dict.fromkeys(
        ("bert", "roberta", "xlm-roberta", "electra", "camembert", "data2vec-text", "ernie", "xmod"), "bert"
    ),
    "mpnet": "mpnet",
    "distilbert": "distilbert",
    "gpt2": "gpt2",
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "olmo2"), "llama"),
}
# Regular expressions (full match on the dotted module name) for each family.
_LORA_TARGETS = {
    "bert": r".*\.attention\.self\.(query|value)",
    "mpnet": r".*\.attention\.attn\.(q|v)",
    "distilbert": r".*\.attention\.(q_lin|v_lin)",
    "gpt2": r".*\.attn\.c_attn",  # GPT-2 fuses q, k, v in one projection
    "llama": r".*\.self_attn\.(q_proj|v_proj)",
}
_FFN_OUTPUT = {
    "bert": r".*\.layer\.\d+\.output\.dense",
    "mpnet": r".*\.layer\.\d+\.output\.dense",
    "distilbert": r".*\.ffn\.lin2",
    "gpt2": r".*\.mlp\.c_proj",
    "llama": r".*\.mlp\.down_proj",
}
_ATTENTION_OUTPUT = {
    "bert": r".*\.attention\.output\.dense",
    "mpnet": r".*\.attention\.attn\.o",
    "distilbert": r".*\.attention\.out_lin",
    "gpt2": r".*\.attn\.c_proj",
    "llama": r".*\.self_attn\.o_proj",
}


@dataclass
class AdaMixConfig:
    """Configuration of a mixture of adaptation modules (AdaMix, Wang et al., EMNLP 2022).

    Example:
        >>> cfg = AdaMixConfig(method="adapter", num_experts=4, bottleneck=16)
        >>> cfg.share
        'up'
    """

    method: str = field(default="adapter", metadata={"help": "'adapter' (bottleneck) or 'lora'."})
    num_experts: int = field(
        default=4, metadata={"help": "M, modules per mixture; 1 = a plain single module."}
    )
    bottleneck: int = field(default=16, metadata={"help": "Adapter bottleneck size r, or the LoRA rank."})
    lora_alpha: float = field(
        default=32.0, metadata={"help": "LoRA scaling numerator: update * alpha / rank."}
    )
    share: str = field(
        default="up",
        metadata={
            "help": "Projection kept as one copy shared by all experts: 'up' (LoRA: B), 'down' (A), 'none'."
        },
    )
    inference: str = field(
        default="merge",
        metadata={
            "help": "Eval-mode routing: 'merge' (averaged weights), 'random' (per example), "
            "'random_token' (per token), 'fixed' (always `fixed_expert`)."
        },
    )
    fixed_expert: int = field(default=0, metadata={"help": "Expert used when inference='fixed'."})
    placement: str = field(
        default="ffn",
        metadata={"help": "Adapter placement: 'ffn' (one per layer, on the FFN output) or 'houlsby' (two)."},
    )
    target_modules: list[str] | str | None = field(
        default=None,
        metadata={
            "help": "Modules to adapt: None = architecture defaults; a list of names (suffix match) "
            "or a regular expression (full match)."
        },
    )
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adaptation module's input."})
    expert_init: str = field(
        default="identical",
        metadata={
            "help": "How the experts start. 'identical': one draw copied to every expert (adapter: torch's "
            "Linear init for down, zeros for up; LoRA: kaiming A, zero B), as the official NLG LoRA code. "
            "'independent': every expert of every projection its own draw, as the official NLU adapter code "
            "(its init_weights re-draws each deep-copied nn.Linear): adapter down and up from N(0, init_std) "
            "with zero biases, so up is not zero; LoRA: each A expert its own kaiming draw, B zero. The default "
            "is 'identical': the paper motivates merging by experts from one initialisation; "
            "reports/fidelity/ compares the two."
        },
    )
    init_std: float | None = field(
        default=None,
        metadata={
            "help": "Std of the 'independent' adapter init; None = the model config's initializer_range "
            f"(else {DEFAULT_INIT_STD}). get_adamix_model records the value used."
        },
    )
    modules_to_save: list[str] | None = field(
        default=None,
        metadata={"help": "Extra modules that train and are saved (task head); None = found automatically."},
    )

    def __post_init__(self) -> None:
        def fail(name: str, message: str) -> None:
            raise ValueError(f"AdaMixConfig.{name} {message}, got {getattr(self, name)!r}")

        if self.method not in METHODS:
            fail("method", f"must be one of {METHODS}")
        if (
            isinstance(self.num_experts, bool)
            or not isinstance(self.num_experts, int)
            or self.num_experts < 1
        ):
            fail("num_experts", "must be an int >= 1")
        if isinstance(self.bottleneck, bool) or not isinstance(self.bottleneck, int) or self.bottleneck < 1:
            fail("bottleneck", "must be an int >= 1")
        if not isinstance(self.lora_alpha, int | float) or self.lora_alpha <= 0:
            fail("lora_alpha", "must be a number > 0")
        if self.share not in SHARE_MODES:
            fail("share", f"must be one of {SHARE_MODES}")
        if self.inference not in INFERENCE_MODES:
            fail("inference", f"must be one of {INFERENCE_MODES}")
        if not isinstance(self.fixed_expert, int) or not 0 <= self.fixed_expert < self.num_experts:
            fail("fixed_expert", f"must be an int in [0, num_experts={self.num_experts})")
        if self.placement not in PLACEMENTS:
            fail("placement", f"must be one of {PLACEMENTS}")
        if self.method == "lora" and self.placement != "ffn":
            fail("placement", "applies to the adapter method only (LoRA targets attention projections)")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            fail("dropout", "must be a number in [0, 1)")
        if self.expert_init not in EXPERT_INITS:
            fail("expert_init", f"must be one of {EXPERT_INITS}")
        if self.init_std is not None and (
            isinstance(self.init_std, bool)
            or not isinstance(self.init_std, int | float)
            or not math.isfinite(self.init_std)
            or self.init_std <= 0
        ):
            fail("init_std", "must be None or a finite number > 0")
        targets = self.target_modules
        if isinstance(targets, str):
            try:
                re.compile(targets)
            except re.error as err:
                fail("target_modules", f"is not a valid regular expression ({err})")
        elif targets is not None:
            if isinstance(targets, tuple):
                self.target_modules = targets = list(targets)
            if (
                not isinstance(targets, list)
                or not targets
                or not all(isinstance(t, str) and t for t in targets)
            ):
                fail("target_modules", "must be None, a regex string, or a non-empty list of module names")
        if self.modules_to_save is not None:
            if isinstance(self.modules_to_save, tuple):
                self.modules_to_save = list(self.modules_to_save)
            if not isinstance(self.modules_to_save, list) or not all(
                isinstance(m, str) and m for m in self.modules_to_save
            ):
                fail("modules_to_save", "must be None or a list of module names")

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view of the config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> AdaMixConfig:
        """Build a config from a dict, rejecting unknown keys (typos) except those named in `ignore`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - set(ignore))
        if unknown:
            raise ValueError(f"AdaMixConfig has no field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json_file(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write the config (plus `extra` metadata keys) as sorted, indented JSON."""
        payload = {**self.to_dict(), **(extra or {})}
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    # -- architecture defaults -------------------------------------------------------------------------------
    def resolved_targets(self, model_type: str) -> list[str] | str:
        """Target modules for `model_type`: the explicit setting, or the architecture's default pattern."""
        if self.target_modules is not None:
            return self.target_modules
        family = _FAMILIES.get(model_type)
        if family is None:
            raise ValueError(
                f"AdaMixConfig.target_modules has no default for model_type {model_type!r} "
                f"(defaults exist for {sorted(_FAMILIES)}); pass target_modules=[...] with the names of "
                "the linear layers to adapt"
            )
        if self.method == "lora":
            return _LORA_TARGETS[family]
        if self.placement == "houlsby":
            return f"(?:{_ATTENTION_OUTPUT[family]})|(?:{_FFN_OUTPUT[family]})"
        return _FFN_OUTPUT[family]


def matches_target(name: str, targets: list[str] | str) -> bool:
    """Whether module `name` is selected: a regex string must match fully, a list entry matches as a suffix."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)
