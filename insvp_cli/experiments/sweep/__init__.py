"""``insvp sweep``: hyper-parameters chosen on the validation split, the protocol behind InsVP's comparisons.

InsVP (ACM MM 2024) compares with numbers from VPT, E2VPT, DAM-VP and others, which chose the learning rate
and weight decay of every method on every dataset on the validation split (VPT: a grid, ``tune_fgvc.py`` and
``tune_vtab.py``); InsVP's own values are in a supplement that is not public. This module is that protocol,
on Optuna:

- Search space: grids (Optuna's ``GridSampler``, every point once) or ranges (``TPESampler``, ``--trials N``),
  from the recipes' ``sweep:`` sections and ``--grid`` / ``--range``, else :func:`default_space` (the method's
  protocol's grid).
- Trials: each trial is an ordinary run folder, ``OUT/trials/trial-NNNN``, trained by
  :func:`~insvp_cli.train.loop.fit`; its objective is its best validation accuracy. Trials never see the test
  split: ``fit(final_test=False)``, ``train.test_every_epoch`` off, and a dataset's own search splits where it
  defines them (VTAB-1k: ``train800`` / ``val200``). Validation accuracy is reported to Optuna after every
  evaluated epoch, so ``--prune`` (median pruner) can stop a trial early; its folder stays.
- Selection: the highest best-validation accuracy among complete trials; a tie goes to the earlier best epoch
  (the cheaper run), then to the earlier trial. Pruned and failed (diverged, out of memory) trials are shown
  but never selected.
- Result: the selected trial's ``best.pt`` is evaluated on the test split once; where the dataset defines a
  final run (VTAB-1k: ``train800val200``), that run is trained with the chosen values into ``OUT/final`` and its
  test accuracy is the result. ``sweep.md``, ``sweep.csv``, ``sweep.json``, ``sweep.png`` and ``best.yaml``
  (a recipe delta: ``insvp train --recipe R --recipe OUT/best.yaml`` trains the selected trial again).

Workers: any number of processes started with the same command share one study (default storage: the
journal file ``OUT/study.journal``; ``--storage URL``: any Optuna storage URL) and the folder ``OUT`` (on
several machines: a shared file system). A worker claims a trial while holding the file lock
``OUT/locks/sweep.lock``, after checking that a point is left, so the sampler never hands out a point twice.
Each worker also holds its own lock file, ``OUT/locks/worker-*.lock``, for as long as it lives; the operating
system releases it when the process dies. A trial still RUNNING whose worker's lock is free was interrupted:
it is marked failed and retried with Optuna's ``RetryHeartbeatStaleTrialCallback``, whose retry keeps the point and
the run folder, so it resumes from ``resume.pt``. A trial stopped by Ctrl-C or an error that is not the
trial's own (a missing data folder) is retried the same way by the next worker or the next run.
"""
