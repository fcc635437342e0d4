"""The code MLflow runs to load and serve a deployed text generator (MLflow "models from code").

flows.modeling.mlflow_model saves this file into the MLflow model of a generation run (E2E, WebNLG, DART), so
loading the model executes this file and unpickles nothing. It stands alone: it imports mlflow, pandas, torch
and transformers, and `adamix` only for a bottleneck-adapter model (the model then carries the library as code).

Artifacts: ``model`` (a transformers causal-LM folder: config, safetensors weights, tokenizer; LoRA methods
already folded into the weights) and, for adapter methods, ``adamix`` (the merged AdaMix artifact). The model
config carries the prompt format (``separator``, ``max_length``) and the decoding of the run's evaluation
(``num_beams``, ``length_penalty``, ``no_repeat_ngram_size``, ``max_new_tokens``).

Input: a DataFrame with ``source``, the linearised input as the task's reader writes it (E2E:
``name : The Vaults | Type : pub``; WebNLG / DART: the triples). Output: one row per input with ``text``, the
first line of the generated continuation. ``params`` may override the decoding per request (``num_beams``,
``max_new_tokens``, ``length_penalty``, ``no_repeat_ngram_size``).

The prompt and the output follow flows.modeling.generation (`GenerationEncoder.prompts` and `.decode`), which
the evaluation uses; tests/test_mlflow_generation.py checks that both give the same texts.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel, PythonModelContext

DECODING_KEYS = ("num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens")


class TextGenerator(PythonModel):
    """A causal LM decoding from a linearised source, behind MLflow's pyfunc interface."""

    def load_context(self, context: PythonModelContext) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = dict(context.model_config or {})
        self.separator = str(config.get("separator", "\n"))
        self.max_length = int(config.get("max_length", 512))
        self.batch_size = int(config.get("batch_size", 8))
        self.decoding = {key: config[key] for key in DECODING_KEYS if key in config}
        folder = context.artifacts["model"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        if context.artifacts.get("adamix"):
            import adamix  # shipped with the model (code_paths) for the adapter methods

            model = adamix.load_adamix(model, context.artifacts["adamix"])
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()

    def _prompts(self, sources: list[str]) -> dict:
        """Left-padded source + separator ids, their ends kept within `max_length`."""
        rows = [
            self.tokenizer(s + self.separator, add_special_tokens=True)["input_ids"][-self.max_length :]
            for s in sources
        ]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "source" not in frame.columns:
            raise ValueError(f"the input needs a 'source' column (got {list(frame.columns)})")
        decoding = {**self.decoding, **{k: v for k, v in (params or {}).items() if k in DECODING_KEYS}}
        beams = int(decoding.get("num_beams", 1))
        sources = [str(s) for s in frame["source"]]
        texts: list[str] = []
        with torch.no_grad():
            for start in range(0, len(sources), self.batch_size):
                inputs = self._prompts(sources[start : start + self.batch_size])
                out = self.model.generate(
                    **inputs,
                    **decoding,
                    do_sample=False,
                    early_stopping=beams > 1,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                )
                new = self.tokenizer.batch_decode(
                    out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
                )
                texts.extend((t.strip().splitlines() or [""])[0].strip() for t in new)
        return pd.DataFrame({"text": texts})


mlflow.models.set_model(TextGenerator())
