"""AdaMix: Mixture-of-Adaptations for parameter-efficient tuning of any Hugging Face transformer.

Example:
    >>> from transformers import AutoModelForSequenceClassification
    >>> import adamix
    >>> model = AutoModelForSequenceClassification.from_pretrained("roberta-large", num_labels=2)  # doctest: +SKIP
    >>> model = adamix.get_adamix_model(model, adamix.AdaMixConfig(method="adapter", num_experts=4, bottleneck=16))
    >>> # train: out = adamix.adamix_loss(model, inputs, labels); out.loss.backward()        # doctest: +SKIP
    >>> adamix.merge_experts(model)                                                           # doctest: +SKIP
    >>> adamix.save_adamix(model, "my-artifact")                                              # doctest: +SKIP

`adamix.AdaMixTrainer` (a `transformers.Trainer`) is imported on first use, so `import adamix` loads neither the
Trainer nor accelerate.
"""

from typing import TYPE_CHECKING, Any

from .config import CONFIG_NAME, WEIGHTS_NAME, AdaMixConfig
from .consistency import AdaMixLoss, adamix_loss, consistency_loss, route_groups, two_view_logits
from .diagnostics import expert_diagnostics, expert_spread, snapshot_merged
from .layers import AdaMixAdapterLayer, AdaMixLayer, AdaMixLoRALayer, ExpertLinear
from .model import (
    count_parameters,
    get_adamix_model,
    iter_adamix_layers,
    merge_and_unload,
    merge_experts,
    set_inference_mode,
    unload,
)
from .peft_export import export_peft
from .routing import SharedRouting, routing_seed, shared_routing
from .serialization import load_adamix, read_adamix_config, save_adamix

if TYPE_CHECKING:
    from .trainer import AdaMixTrainer

__version__ = "0.1.0"

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "AdaMixAdapterLayer",
    "AdaMixConfig",
    "AdaMixLayer",
    "AdaMixLoRALayer",
    "AdaMixLoss",
    "AdaMixTrainer",
    "ExpertLinear",
    "SharedRouting",
    "adamix_loss",
    "consistency_loss",
    "count_parameters",
    "expert_diagnostics",
    "expert_spread",
    "export_peft",
    "get_adamix_model",
    "iter_adamix_layers",
    "load_adamix",
    "merge_and_unload",
    "merge_experts",
    "read_adamix_config",
    "route_groups",
    "routing_seed",
    "save_adamix",
    "set_inference_mode",
    "shared_routing",
    "snapshot_merged",
    "two_view_logits",
    "unload",
]


def __getattr__(name: str) -> Any:
    # Lazy: the Trainer imports accelerate and much of transformers, which plain library use never needs.
    if name == "AdaMixTrainer":
        from .trainer import AdaMixTrainer

        return AdaMixTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
