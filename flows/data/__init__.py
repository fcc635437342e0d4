"""The data layer: every task, built-in or declared in params, as one normalised folder of JSONL splits.

- `source`: an example, a task as its source gives it (`TaskSource`), and `DataError`.
- `tables`: shared readers for csv/jsonl/parquet files and Hub datasets.
- `glue`, `bigbench`: the GLUE tasks and the BIG-bench pair tasks; `catalog`: every built-in task by name.
- `nlg`, `nlg_text`: the data-to-text generation tasks (E2E, WebNLG, DART, BIG-bench GEM) and their official
  linearisations; `generation`: their preparation (pairs for training, references grouped by source).
- `user`: datasets declared under params `datasets` (checked, then read).
- `prepare`: read -> clean -> deduplicate -> split -> cap -> write atomically; read a prepared folder back.
- `prompts`: LM-BFF templates and label words for prompt-based few-shot fine-tuning.
"""

from .catalog import builtin_task_names
from .prepare import load_split, prepare_task, read_meta, stratified_take, write_task_dir
from .source import CLASSIFICATION, CORE_SPLITS, GENERATION, META_FILE, DataError, Example, TaskSource
from .user import validate_dataset_cfg

__all__ = [
    "CLASSIFICATION",
    "CORE_SPLITS",
    "GENERATION",
    "META_FILE",
    "DataError",
    "Example",
    "TaskSource",
    "builtin_task_names",
    "load_split",
    "prepare_task",
    "read_meta",
    "stratified_take",
    "validate_dataset_cfg",
    "write_task_dir",
]
