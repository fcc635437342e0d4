"""The parts of the report stage (`flows.stages.report` assembles them into reports/).

- `collect`: the per-run result files, read and checked; main and ablation runs apart.
- `plots`: tables as Markdown/LaTeX cells, and every PNG plot.
- `ablations`: one table and plot per ablation grid, and the loss curves with and without sharing.
- `stats`: the paired t-test over seeds between AdaMix and the best baseline (chosen on validation), t intervals.
- `selection`: learning rates chosen on validation; `curves`: learning and diagnostic curves over training.
- `tables`: the main and inference-mode tables.
- `bootstrap`: the paired hierarchical bootstrap over seeds and test examples, Holm's correction, plateau counts.
- `power`: variance components of a paired difference, and the interval a larger design would have.
- `study`, `study_model`, `study_text`: studies across profiles (reading and tests; arms; study.md and CSVs).
- `paper`: the paper's published numbers beside ours where model and task match.
- `findings`: which of the paper's findings held, in plain words with their numbers.
"""
