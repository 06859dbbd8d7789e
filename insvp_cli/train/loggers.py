"""Experiment trackers beside ``metrics.jsonl``: the same per-epoch rows through TensorBoard and MLflow.

``train.loggers: [tensorboard, mlflow]`` (optional extras: ``pip install "insvp[tensorboard]"``, ``"insvp[mlflow]"``)
writes every row that ``metrics.jsonl`` gets, each through its own library, offline: TensorBoard event files in
``RUN/tensorboard``, and an MLflow run (the resolved config as its parameters) in MLflow's tracking store:
``MLFLOW_TRACKING_URI`` when set (a server, or one sqlite file for many runs), else the sqlite store
``RUN/mlflow.db`` (``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db`` shows it). A missing extra is a usage
error before anything trains.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..common.errors import UsageError

# logger -> (the module it imports, the extra that installs it)
LOGGERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_loggers(names: list[str]) -> None:
    """Fail at once, in one line, when a logger's package is not installed."""
    for name in names:
        module, extra = LOGGERS[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(f"train.loggers: {name} needs the {module} package: pip install "
                             f"\"insvp[{extra}]\"") from None


class MetricLoggers:
    """The loggers of ``names`` for one run: :meth:`log` each epoch's row, :meth:`close` at the end.

    Args:
        names: ``tensorboard`` and/or ``mlflow``.
        run_dir: the run folder.
        params: the resolved config, flat (``{"train.lr": 0.001, ...}``), for MLflow's run parameters.
    """

    def __init__(self, names: list[str], run_dir: Path, params: Mapping[str, Any]):
        check_loggers(names)
        self._writers: list[_TensorBoard | _MLflow] = []
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self._writers.append(_TensorBoard(SummaryWriter(str(run_dir / "tensorboard"))))
        if "mlflow" in names:
            self._writers.append(_MLflow(run_dir, params))

    def log(self, row: Mapping[str, Any]) -> None:
        """One epoch's row of ``metrics.jsonl`` (its ``epoch`` is the step)."""
        numbers = {k: float(v) for k, v in row.items() if k != "epoch" and isinstance(v, int | float)}
        for writer in self._writers:
            writer.log(numbers, int(row["epoch"]))

    def close(self) -> None:
        for writer in self._writers:
            writer.close()

    def __enter__(self) -> MetricLoggers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _TensorBoard:
    def __init__(self, writer):
        self.writer = writer

    def log(self, numbers: dict[str, float], step: int) -> None:
        for key, value in numbers.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, run_dir: Path, params: Mapping[str, Any]):
        import mlflow
        from mlflow.entities import Param

        store = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
        self.client = mlflow.MlflowClient(store)
        experiment = self.client.get_experiment_by_name("insvp")
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("insvp")
        self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        # one write per batch, not per key (MLflow takes at most 100 parameters a batch)
        values = [Param(key, str(value)[:500]) for key, value in params.items()]
        for start in range(0, len(values), 100):
            self.client.log_batch(self.run_id, params=values[start : start + 100])

    def log(self, numbers: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in numbers.items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
