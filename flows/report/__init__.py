"""The parts of the report stage (`flows.stages.report` assembles them into reports/).

- `collect`: the per-run result files, read and checked; main and ablation runs apart.
- `plots`: tables as Markdown/LaTeX cells, and every PNG plot.
- `ablations`: one table and plot per ablation grid, and the loss curves with and without sharing.
- `stats`: the paired t-test over seeds between AdaMix and the best baseline.
- `paper`: the paper's published numbers beside ours where model and task match.
- `findings`: which of the paper's findings held, in plain words with their numbers.
"""
