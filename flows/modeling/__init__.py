"""Models for the pipeline: the base model and tokenizer, each method's trainable model, batching and prediction.

- `base`: where the base model comes from, its tokenizer, the device and autocast dtype.
- `prompting`: prompt-based fine-tuning, a masked LM read as a classifier through a task's prompt;
  `prompting_causal`: the same on a causal LM (the label word is the next token after the prompt).
- `models`: each method's trainable model; save and reload a run's artifact; parameter counts.
- `batching`: tokenised batches, and the length-grouped order a training epoch visits them in.
- `inference`: predictions and the task's metrics on them.
- `mlflow_model`: the deployed model of an evaluate run as an MLflow pyfunc, logged and registered;
  `served_model` / `served_generator`: the code MLflow runs to load and serve a classifier / a generator
  (models from code, standalone).

Training itself (the loop, its state, checkpoints, data parallelism) is `flows.training`.
"""
