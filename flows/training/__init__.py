"""Training one run of (task, method, seed): the loop the train stage runs, and what it is made of.

- `setup`: the model, optimizer, schedule and data, built once before the loop (`Setup`);
- `state`: the loop's only mutable state (`TrainState`) and the best epoch `train.select: best` keeps;
- `loop`: an epoch of optimizer steps, one step (two views and the consistency term for AdaMix), the epoch's
  record (validation, best epoch, expert diagnostics);
- `guards`: the non-finite stop;
- `checkpoint`: checkpoints for resume after a crash, read once before the loop;
- `distributed`: data-parallel training of one run (torchrun, DDP, shared routing);
- `optim`: the optimizer (public: the benchmarks build the same one) and the learning-rate schedule;
- `outputs`: the selected weights, the run folder and the timings.
"""
