"""The code MLflow runs to load and serve a deployed text classifier (MLflow "models from code").

flows.modeling.mlflow_model saves this file into the MLflow model beside the weights, so loading the model
executes this file and unpickles nothing. It stands alone: it imports mlflow, pandas, torch and transformers,
and `adamix` only for a bottleneck-adapter model (the model then carries a copy of the library as code).

Artifacts: ``model`` (a transformers folder: config, safetensors weights, tokenizer) and, for adapter methods,
``adamix`` (the merged AdaMix artifact, applied over the model). The model config carries ``max_length``,
``text_pair``, ``is_regression`` and ``label_names``.

Input: a DataFrame with ``text`` (and ``text_pair`` for a sentence-pair task). Output: one row per input with
``label``, ``label_id``, ``score`` (the label's probability) and ``probabilities`` (in `label_names` order);
for regression, ``score`` only.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel, PythonModelContext


class TextClassifier(PythonModel):
    """A sequence classifier (or regressor) behind MLflow's pyfunc interface."""

    def load_context(self, context: PythonModelContext) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        config = dict(context.model_config or {})
        self.max_length = int(config.get("max_length", 512))
        self.batch_size = int(config.get("batch_size", 32))
        self.text_pair = bool(config.get("text_pair", False))
        self.is_regression = bool(config.get("is_regression", False))
        self.label_names = list(config.get("label_names") or [])
        folder = context.artifacts["model"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
        if context.artifacts.get("adamix"):
            import adamix  # shipped with the model (code_paths) for the adapter methods

            model = adamix.load_adamix(model, context.artifacts["adamix"])
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "text" not in frame.columns:
            raise ValueError(f"the input needs a 'text' column (got {list(frame.columns)})")
        if self.text_pair and "text_pair" not in frame.columns:
            raise ValueError("this task classifies sentence pairs: the input needs 'text' and 'text_pair'")
        texts = [str(t) for t in frame["text"]]
        pairs = [str(t) for t in frame["text_pair"]] if self.text_pair else None
        rows: list[dict] = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                stop = start + self.batch_size
                inputs = self.tokenizer(
                    texts[start:stop],
                    pairs[start:stop] if pairs is not None else None,
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**inputs).logits.float().cpu()
                rows.extend(self._rows(logits))
        return pd.DataFrame(rows, columns=["score"] if self.is_regression else None)

    def _rows(self, logits: torch.Tensor) -> list[dict]:
        if self.is_regression:
            return [{"score": float(v)} for v in logits.squeeze(-1).tolist()]
        best_ids = logits.argmax(-1).tolist()  # as the evaluation decides (not the rounded probabilities)
        out = []
        for best, row in zip(best_ids, logits.softmax(-1).tolist(), strict=True):
            name = self.label_names[best] if best < len(self.label_names) else str(best)
            out.append({"label": name, "label_id": best, "score": row[best], "probabilities": row})
        return out


mlflow.models.set_model(TextClassifier())
