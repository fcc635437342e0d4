"""Speed and memory benchmarks of AdaMix against its peers; `python -m benchmarks.run --help` for the flags.

Imports torch, transformers, peft, tqdm, the standard library, `adamix`, and three helpers of `flows` so that it
times what the pipeline runs: the model-path resolver (`flows.modeling.base`), the autocast dtype and the train
stage's optimizer (`flows.training.optim`). Those modules import no orchestration package (prefect, dvc, mlflow).
"""
