"""Run folders: what makes a folder a run of this tool, its files, and what a resume may change.

A run folder holds (every file written atomically, so a run killed at any moment loses at most its epoch):

- ``config.yaml``   the config the run was created with, written before training starts; read back as it is
  (:mod:`insvp_cli.resolve.stored`), never resolved again
- ``metrics.jsonl`` one row per finished epoch (:mod:`.metrics`)
- ``best.pt``       trainable weights at the best validation accuracy, with config, classes and metrics
  (:class:`~.checkpoint.Checkpoint`)
- ``last.pt``       the same after the last finished epoch
- ``resume.pt``     what continuing the run needs (:class:`~.checkpoint.ResumePoint`)
- ``summary.json``  the final result; its presence means the run finished
- ``.lock``         held while a process trains in the folder (:mod:`.lock`)

Only this package names these files; every other layer asks a :class:`RunFolder`. Nothing here imports torch,
so the command line checks a folder before any model is built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..common.atomic import atomic_write_text, stale_temp_files
from ..common.errors import ConfigError, RunFinished, UsageError
from ..common.paths import check_output_folder
from ..common.yamlio import read_yaml
from ..config.overrides import flatten
from ..config.schema import Config
from ..resolve.stored import config_from_tree, with_overrides
from .lock import LOCK_FILES, RunLock
from .metrics import read_rows, write_rows

# config keys that say where the files are or how fast a run goes, not what it computes: a run folder trained
# with other values of these holds the same experiment
LOCATION_KEYS = ("data.root", "data.split_dir", "data.num_workers", "data.cache_gb", "data.download", "train.device",
                 "train.compile", "train.loggers", "output_dir", "run_name")
# what a resumed run may change: where things are, how it runs, how long, and the optimizer's scalar
# settings (applied from the next step; config.yaml records them). Anything else would change the model,
# the shapes of the saved optimizer state or the data order, and make the resumed run another experiment.
RESUMABLE_KEYS = frozenset({
    *LOCATION_KEYS, "backbone.weights", "data.on_bad_image", "train.epochs", "train.eval_every",
    "train.test_every_epoch", "train.lr", "train.min_lr", "train.weight_decay", "train.grad_clip",
})


class RunFolder:
    """One run folder and its files.

    Args:
        path: the folder (it need not exist yet).
    """

    CONFIG = "config.yaml"
    METRICS = "metrics.jsonl"
    BEST = "best.pt"
    LAST = "last.pt"
    RESUME = "resume.pt"
    SUMMARY = "summary.json"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def best(self) -> Path:
        """``best.pt``: the validation-selected checkpoint."""
        return self.path / self.BEST

    @property
    def last(self) -> Path:
        """``last.pt``: the checkpoint of the last finished epoch."""
        return self.path / self.LAST

    @property
    def resume_file(self) -> Path:
        return self.path / self.RESUME

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    def is_run(self) -> bool:
        """A run of this tool: it has its ``config.yaml``."""
        return self.config_file.is_file()

    def is_finished(self) -> bool:
        """Its ``summary.json`` was written: every epoch ran and the test split was evaluated."""
        return (self.path / self.SUMMARY).is_file()

    def finished_at(self) -> float:
        """When the run finished (its summary's modification time, seconds since the epoch)."""
        return (self.path / self.SUMMARY).stat().st_mtime

    def lock(self, enabled: bool = True) -> RunLock:
        """The folder's lock, held while a process trains in it (``enabled=False`` on ranks that do not write)."""
        return RunLock(self.path, enabled)

    def is_held(self) -> bool:
        """Another process trains in the folder now (it holds the lock)."""
        return RunLock.is_held(self.path)

    def remove_stale_files(self) -> list[Path]:
        """Remove the temp files of the run's files that a killed process left (``.best.pt.<random>.tmp``, ...: a
        SIGKILL during an atomic write runs no cleanup). Call it holding the lock, when no writer can be at work.

        Returns:
            The files removed.
        """
        stale = stale_temp_files(self.path, (self.CONFIG, self.METRICS, self.BEST, self.LAST, self.RESUME,
                                             self.SUMMARY))
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    # ---------------------------------------------------------------------------------------------------------
    # the stored config

    def read_config(self) -> Config:
        """The config the run was created with, validated as it is (no layer applied again).

        Raises:
            UsageError: not a run folder, or a ``config.yaml`` that cannot be read (named).
        """
        if not self.is_run():
            raise UsageError(f"{self.path}: no {self.CONFIG} there; it is not a run folder")
        try:
            return config_from_tree(read_yaml(self.config_file), str(self.config_file))
        except ConfigError as exc:
            raise UsageError(f"{exc}; the run folder was written by another version, or edited") from None

    def write_config(self, cfg: Config) -> None:
        atomic_write_text(cfg.to_yaml(), self.config_file)

    def resume_config(self, overrides: Sequence[str] = ()) -> Config:
        """The config to continue the run with: the stored one with the user's ``--set`` values, nothing else.

        Raises:
            UsageError: not a run folder; a change a resume may not make (:meth:`changes_to`); a finished run whose
                epochs were not raised. Nothing is written.
        """
        stored = self.read_config()
        after = with_overrides(stored, overrides, str(self.config_file))
        self.changes_to(after, stored)
        self.check_epochs(after.train.epochs, len(self.read_metrics()))
        return after

    def check_epochs(self, epochs: int, done: int) -> None:
        """Refuse to continue the run with fewer ``epochs`` than the ``done`` it has finished, or a finished run with
        no more.

        Raises:
            RunFinished: the run finished and ``epochs`` trains no further; names the ``train.epochs`` that would.
            UsageError: naming the least ``train.epochs`` that would do.
        """
        if self.is_finished() and epochs <= done:
            raise RunFinished(f"--resume {self.path}: the run finished all {done} epochs ({self.SUMMARY}); raise "
                              f"train.epochs to train on, e.g. --set train.epochs={done + 10}")
        if epochs < done:
            raise UsageError(f"--resume {self.path}: train.epochs={epochs} is below the {done} epochs the run has "
                             f"finished; give at least train.epochs={done}")

    def changes_to(self, cfg: Config, stored: Config | None = None) -> dict[str, tuple[Any, Any]]:
        """What ``cfg`` changes in the run stored here, refused unless each key is in :data:`RESUMABLE_KEYS`.

        Returns:
            ``{key: (stored, new)}``; ``{}`` when the folder holds no run yet.

        Raises:
            UsageError: naming the keys that would change the model, the optimizer state or the data.
        """
        if stored is None and not self.is_run():
            return {}
        changes = config_changes(stored or self.read_config(), cfg)
        refused = [key for key in changes if key not in RESUMABLE_KEYS]
        if "method.name" in refused:  # another method: its own keys differ too, which says nothing more
            refused = [key for key in refused if key == "method.name" or not key.startswith("method.")]
        if refused:
            raise UsageError(f"{self.path}: {', '.join(refused)} cannot change in a resumed run (it would change the "
                             f"model, the optimizer state or the data); start a new run in another folder. A resume "
                             f"may change: {', '.join(sorted(RESUMABLE_KEYS))}")
        return changes

    # ---------------------------------------------------------------------------------------------------------
    # metrics and summary

    def read_metrics(self, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl`` (``[]`` if absent); a damaged row is skipped and ``warn`` told which."""
        return read_rows(self.path / self.METRICS, warn)

    def write_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        write_rows(rows, self.path / self.METRICS)

    def read_summary(self) -> dict[str, Any]:
        """``summary.json`` of a finished run.

        Raises:
            UsageError: the run has not finished, or its summary cannot be read (named).
        """
        path = self.path / self.SUMMARY
        try:
            summary = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{self.path}: the run has not finished (no {self.SUMMARY})") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{path} cannot be read ({type(exc).__name__}); the run folder is damaged") from None
        if not isinstance(summary, dict):
            raise UsageError(f"{path} is not a run's summary (no mapping)")
        return summary

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(json.dumps(summary, indent=2) + "\n", self.path / self.SUMMARY)

    # ---------------------------------------------------------------------------------------------------------
    # a new run's folder

    def check_new(self) -> None:
        """``--out`` of a new run: absent, or an empty folder, in a place this user can write to.

        Raises:
            UsageError: a file, a folder with other files (a run of this tool: resume it instead), or no write
                permission; nothing is created or touched.
        """
        path = check_output_folder(self.path)
        if path.is_dir():
            if self.is_run():
                raise UsageError(f"--out {path} already holds a run; continue it with --resume {path} or choose "
                                 f"another folder")
            entries = sorted(p.name for p in path.iterdir() if p.name not in LOCK_FILES)
            if entries:
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise UsageError(f"--out {path} holds files that are not an insvp run ({shown}); choose an empty or "
                                 f"new folder")

    @classmethod
    def default(cls, cfg: Config) -> RunFolder:
        """``output_dir/run_name``; without a run name, ``<dataset>-<method>-<date>-<time>``."""
        name = cfg.run_name or f"{cfg.data.name}-{cfg.method.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        return cls(Path(cfg.output_dir) / name)


def finished_runs(root: Path) -> Iterator[RunFolder]:
    """Every finished run under ``root`` (any depth), in path order."""
    for summary in sorted(root.rglob(RunFolder.SUMMARY)) if root.is_dir() else []:
        yield RunFolder(summary.parent)


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint ``path`` names: the file itself, or a run folder's ``best.pt``.

    Raises:
        UsageError: no such file, or not a regular one. Cheap: the command line checks it before it imports torch.
    """
    path = Path(path)
    if path.is_dir():
        path = RunFolder(path).best
    if path.exists() and not path.is_file():
        raise UsageError(f"checkpoint {path} is not a regular file (a device or a pipe); give a {RunFolder.BEST} or "
                         f"{RunFolder.LAST} file or a run folder")
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist (a run folder holds {RunFolder.BEST} and "
                         f"{RunFolder.LAST})")
    if path.stat().st_size == 0:
        raise UsageError(f"checkpoint {path} is empty (a copy or a download cut short)")
    return path


def config_changes(before: Config, after: Config) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two configs: ``{key: (before, after)}``."""
    return flat_differences(flatten(before.to_dict()), flatten(after.to_dict()))


def flat_differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two flattened configs: ``{key: (old, new)}``, sorted."""
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def setting_differences(stored: dict[str, Any], wanted: dict[str, Any], limit: int = 3) -> str:
    """What differs between two flattened configs outside :data:`LOCATION_KEYS` (``""``: nothing), e.g.
    ``train.epochs: 8 there, 2 now``; at most ``limit`` keys, then ``...``."""
    differences = [f"{k}: {old!r} there, {new!r} now" for k, (old, new) in flat_differences(stored, wanted).items()
                   if k not in LOCATION_KEYS]
    return "; ".join(differences[:limit]) + (" ..." if len(differences) > limit else "")
