"""The default params: equal to params.yaml (a test keeps them in sync); a profile changes some of them."""

from __future__ import annotations

from typing import Any

# The paper's ablations (section 4.4 and appendix), on AdaMix with adapters; flows.config.grid expands them into runs.
_DEFAULT_GRIDS = {
    "num_experts": {"method": "adamix_adapter", "key": "adamix.num_experts", "values": [1, 2, 4, 8, 16]},
    "bottleneck": {"method": "adamix_adapter", "key": "adamix.bottleneck", "values": [8, 16, 32, 48, 64]},
    "share": {"method": "adamix_adapter", "key": "adamix.share", "values": ["up", "down", "none"]},
    "consistency": {"method": "adamix_adapter", "key": "train.consistency_weight", "values": [1.0, 0.0]},
}

DEFAULTS: dict[str, Any] = {
    "model": {"name_or_path": "minilm", "revision": None},
    "tasks": ["rotten_tomatoes"],
    "datasets": {},
    "methods": ["adamix_adapter", "adamix_lora", "adapter", "lora", "full"],
    "seeds": [13, 21, 42],
    "data": {
        "max_train_examples": 1000,
        "max_eval_examples": 1000,
        "validation_size": 300,
        "test_size": 1000,
        "split_seed": 0,
        "glue_dir": None,
        "fewshot_dir": None,
        "bigbench_archive": None,
        "e2e_dir": None,
        "webnlg_dir": None,
        "dart_dir": None,
    },
    "fewshot": {"k": 0, "prompt": False, "templates": {}, "label_words": {}},
    "train": {
        "epochs": 2,
        "batch_size": 32,
        "eval_batch_size": 128,
        "learning_rate": 5.0e-3,
        "max_length": 64,
        "warmup_ratio": 0.06,
        "weight_decay": 0.1,
        "consistency_weight": 1.0,
        "grad_clip": 1.0,
        "device": "auto",
        "precision": "auto",
        "compile": False,
        "two_view": "batched",
        "eval_every_epoch": True,
        "select": "last",
        "length_group_batches": 8,
        "checkpoint_every": 0,
        "label_smoothing": 0.0,
    },
    "adamix": {
        "num_experts": 4,
        "bottleneck": 16,
        "lora_alpha": 32,
        "share": "up",
        "inference": "merge",
        "fixed_expert": 0,
        "placement": "ffn",
        "target_modules": None,
        "dropout": 0.0,
        "expert_init": "identical",
        "init_std": None,
    },
    "method_overrides": {
        "adamix_lora": {"adamix": {"bottleneck": 4}, "train": {"learning_rate": 4.0e-3}},
        "lora": {"adamix": {"bottleneck": 4}, "train": {"learning_rate": 4.0e-3}},
        "full": {"train": {"learning_rate": 5.0e-5}},
    },
    "evaluate": {"inference_modes": ["merge", "random", "fixed"]},
    "generation": {
        "separator": "\n",
        "num_beams": 10,
        "length_penalty": 0.8,
        "no_repeat_ngram_size": 4,
        "max_new_tokens": 64,
        "validation_num_beams": 1,
        "validation_examples": None,
    },
    "report": {"primary_mode": "merge", "decimals": 1, "dir": "reports"},
    "ablations": {"tasks": [], "seeds": None, "grids": _DEFAULT_GRIDS},
    "flow": {
        "task_runner": "thread",
        "max_workers": 1,
        "address": None,
        "cron": "0 3 * * 1",
        "deployment": "adamix-weekly",
    },
    "tracking": {
        "experiment": "adamix-repro",
        "log_models": ["adamix_lora"],
        "log_model_seed": None,
        "registered_model": "adamix-{task}-{method}",
        "model_alias": "champion",
    },
}
