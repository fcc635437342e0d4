"""Speed and memory benchmarks of AdaMix against its peers; `python -m benchmarks.run --help` for the flags.

Imports only torch, transformers, peft, tqdm, the standard library and `adamix` (never `flows`), so it runs on
a GPU machine that has none of the pipeline's packages.
"""
