"""Run folders: what makes a folder a run of this tool, who may write into it, and what a resume may change.

A run folder holds ``config.yaml`` (written before training starts), ``metrics.jsonl``, ``best.pt``,
``last.pt``, ``resume.pt`` and, once finished, ``summary.json`` (see :mod:`insvp_cli.train.loop`). While a
process trains in it, it holds the folder's lock (``.lock``, an OS file lock that dies with the
process); ``.lock.owner`` says who that is. Nothing here imports torch, so the command line checks a
folder before any model is built.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from ..common.errors import UsageError
from ..config.overrides import flatten
from ..config.schema import Config
from ..resolve.layers import resolve_config
from .lock import LOCK_FILES
from .metrics import read_metrics

CONFIG = "config.yaml"
RESUME = "resume.pt"
SUMMARY = "summary.json"

# config keys that say where the files are or how fast a run goes, not what it computes: a run folder trained
# with other values of these holds the same experiment
LOCATION_KEYS = ("data.root", "data.split_dir", "data.num_workers", "data.download", "train.device", "train.compile",
                 "train.loggers", "output_dir", "run_name")
# what a resumed run may change: where things are, how it runs, how long, and the optimizer's scalar
# settings (applied from the next step; config.yaml records them). Anything else would change the model,
# the shapes of the saved optimizer state or the data order, and make the resumed run another experiment.
RESUMABLE_KEYS = frozenset({
    *LOCATION_KEYS, "backbone.weights", "data.on_bad_image", "train.epochs", "train.eval_every",
    "train.test_every_epoch", "train.lr", "train.min_lr", "train.weight_decay", "train.grad_clip",
})


def is_run(path: Path) -> bool:
    return (path / CONFIG).is_file()


def check_new_run_dir(path: Path) -> None:
    """``--out`` of a new run: absent, or an empty folder, in a place this user can write to.

    Raises:
        UsageError: a file, a folder with other files (a run of this tool: resume it instead), or no write
            permission; nothing is created or touched.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file, not a folder; choose a new folder for the run")
    if path.is_dir():
        if is_run(path):
            raise UsageError(f"--out {path} already holds a run; continue it with --resume {path} or choose "
                             f"another folder")
        entries = sorted(p.name for p in path.iterdir() if p.name not in LOCK_FILES)
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise UsageError(f"--out {path} holds files that are not an insvp run ({shown}); choose an empty or "
                             f"new folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path}: cannot write into {existing} (permission denied or read-only)")


def load_run_config(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The resolved config of a run folder (``config.yaml``), plus ``overrides``."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir}: no {CONFIG} there; it is not a run folder")
    try:
        recipe = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path} cannot be read ({type(exc).__name__}); the run folder is damaged") from None
    if not isinstance(recipe, dict):
        raise UsageError(f"{path} is not a run's config (no mapping of groups)")
    return resolve_config(recipe, overrides)


def resume_config(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config to continue ``run_dir`` with: its own, plus overrides.

    Whether the overrides change only :data:`RESUMABLE_KEYS` is checked by ``fit`` (:func:`check_resumable`),
    which every resumed run goes through, before it writes anything.

    Raises:
        UsageError: not a run folder; a finished run whose epochs were not raised. Nothing is written.
    """
    after = load_run_config(run_dir, overrides)
    done = len(read_metrics(run_dir))
    if (run_dir / SUMMARY).is_file() and after.train.epochs <= done:
        raise UsageError(f"--resume {run_dir}: the run finished all {done} epochs (summary.json); raise train.epochs "
                         f"to train on, e.g. --set train.epochs={done + 10}")
    return after


def check_resumable(run_dir: Path, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """Raise unless ``cfg`` may continue the run in ``run_dir``: it changes only :data:`RESUMABLE_KEYS`.

    Returns:
        What ``cfg`` changes (:func:`config_changes`); ``{}`` when ``run_dir`` holds no run yet.

    Raises:
        UsageError: naming the keys that would change the model, the optimizer state or the data.
    """
    if not is_run(run_dir):
        return {}
    changes = config_changes(load_run_config(run_dir), cfg)
    refused = [key for key in changes if key not in RESUMABLE_KEYS]
    if "method.name" in refused:  # another method: its own keys differ too, which says nothing more
        refused = [key for key in refused if key == "method.name" or not key.startswith("method.")]
    if refused:
        raise UsageError(f"{run_dir}: {', '.join(refused)} cannot change in a resumed run (it would change the "
                         f"model, the optimizer state or the data); start a new run in another folder. A resume may "
                         f"change: {', '.join(sorted(RESUMABLE_KEYS))}")
    return changes


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


def default_run_dir(cfg: Config) -> Path:
    name = cfg.run_name or f"{cfg.data.name}-{cfg.method.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.output_dir) / name


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint ``path`` names: the file itself, or a run folder's ``best.pt``.

    Raises:
        UsageError: no such file. Cheap: the command line checks it before it imports torch.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist (a run folder holds best.pt and last.pt)")
    return path
