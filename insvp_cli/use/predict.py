"""``predict``: a trained checkpoint (InsVP, ACM MM 2024, or any comparison method) on new, unlabelled images.

The images are read with the checkpoint's own evaluation transform through a DataLoader (worker
processes, pinned memory on CUDA) and classified in batches under ``torch.inference_mode`` with the
checkpoint's autocast precision, exactly as ``insvp evaluate`` runs its model. Each image gives one
:class:`Prediction`: its path and the top-k class names with their softmax probabilities.

A file that cannot be read as an image (not an image, truncated, unreadable) never stops the run: it
is returned in :attr:`PredictResult.skipped` with the reason, and the other images are classified.

Inputs are files, folders (walked recursively, each folder's entries sorted by name, hidden entries
skipped) and glob patterns (their matching files, sorted). The paths are held once, compactly, in an
:class:`~.inputs.InputFiles`, which forked loader workers share without copying; rows are streamed to the
output file as they come, so neither the path list nor the rows are ever held twice.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import torch
from torch.utils.data import DataLoader, Dataset

from ..common.atomic import atomic_open
from ..common.errors import UsageError
from ..common.paths import check_output_file
from ..config.limits import MAX_BATCH, MAX_WORKERS
from ..data.base import BadImage, read_rgb
from ..data.loaders import collate
from ..runs.trained import TrainedModel
from ..runtime.cpus import loader_workers
from .formats import PREDICTION_FORMATS
from .inputs import InputFiles


class ImagePaths(Dataset):
    """``(transformed image, position)`` for each file of an :class:`InputFiles`, or a :class:`BadImage`.

    An unreadable file is returned as a value, not raised, so that it reaches the main process from any
    worker (see :func:`insvp_cli.data.loaders.collate`).
    """

    def __init__(self, files: InputFiles, transform: Callable):
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | BadImage:
        image = read_rgb(self.files[i])
        return image if isinstance(image, BadImage) else (self.transform(image), i)


@dataclass(frozen=True)
class Prediction:
    """One classified image.

    Attributes:
        path: the file, as found from the inputs.
        classes: the ``k`` most probable class names, most probable first.
        probabilities: their softmax probabilities.
    """

    path: str
    classes: list[str]
    probabilities: list[float]


@dataclass
class PredictResult:
    """What :func:`predict` did.

    Attributes:
        rows: every :class:`Prediction`, in input order, when ``out`` was ``None``; empty when the rows were
            written to ``out`` instead.
        images: how many images were classified.
        skipped: files (and folders) that could not be read, with the reason; they have no row.
        seconds: time spent reading and classifying (model loading and file listing excluded).
        out: the output file, when one was written.
        top_k: classes per row (the requested ``top_k``, capped at the number of classes).
    """

    rows: list[Prediction] = field(default_factory=list)
    images: int = 0
    skipped: list[BadImage] = field(default_factory=list)
    seconds: float = 0.0
    out: Path | None = None
    top_k: int = 0

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def output_format(out: str | Path) -> str:
    """``csv`` or ``jsonl`` from the file name of a file that can be written; anything else is a usage error."""
    return PREDICTION_FORMATS[check_output_file(out, tuple(PREDICTION_FORMATS)).suffix.lower()]


def predict(
    checkpoint: str | Path,
    inputs: str | Path | Sequence[str | Path] | InputFiles,
    *,
    out: str | Path | IO[str] | None = None,
    out_format: str | None = None,
    top_k: int = 5,
    batch_size: int | None = None,
    device: str = "auto",
    workers: int | None = None,
    overrides: Sequence[str] = (),
    on_batch: Callable[[int], None] | None = None,
) -> PredictResult:
    """Classify image files with a checkpoint's model; write or return one row per readable image.

    Args:
        checkpoint: ``best.pt`` / ``last.pt`` or a run folder.
        inputs: an image file, folder (recursive) or glob pattern, a list of them, or an :class:`InputFiles`.
        out: a ``.csv`` or ``.jsonl`` file, written atomically (a run that fails or is interrupted leaves no
            file); an open text stream (written as rows come); or ``None`` to return the rows.
        out_format: ``csv`` or ``jsonl`` for a stream (default ``csv``); a file's format is its suffix.
        top_k: classes per image (at most the number of classes).
        batch_size: images per batch (default: the checkpoint's ``data.batch_size``).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        workers: DataLoader worker processes (default: the checkpoint's ``data.num_workers``).
        overrides: ``KEY=VALUE`` config overrides, e.g. ``backbone.weights=PATH``.
        on_batch: called with the number of files (readable or not) of each batch when it is done.

    Returns:
        A :class:`PredictResult`; its ``skipped`` list names every file that could not be read.

    Raises:
        UsageError: a bad checkpoint, input, option or output name.
    """
    if isinstance(inputs, (str, Path)):  # one input, not a sequence of characters
        inputs = [inputs]
    if isinstance(out, (str, Path)):
        out_format = output_format(out)
    elif out_format not in (None, *PREDICTION_FORMATS.values()):
        raise UsageError(f"out_format: {out_format!r}; valid: {', '.join(PREDICTION_FORMATS.values())}")
    if top_k < 1:
        raise UsageError(f"--top-k {top_k} must be >= 1")
    files = inputs if isinstance(inputs, InputFiles) else InputFiles.find(
        inputs, exclude=out if isinstance(out, (str, Path)) else None)

    trained = TrainedModel.load(checkpoint, overrides, device=device)
    cfg, classes = trained.config, trained.classes
    batch_size = cfg.data.batch_size if batch_size is None else batch_size
    if not 1 <= batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size {batch_size} is not in [1, {MAX_BATCH}]")
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers} is not in [0, {MAX_WORKERS}]")
    workers = loader_workers(workers, "--workers") if workers is not None else loader_workers(cfg.data.num_workers)
    loader = DataLoader(ImagePaths(files, trained.transform), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=trained.device.type == "cuda",
                        collate_fn=collate)

    result = PredictResult(skipped=list(files.unreadable), top_k=min(top_k, len(classes)))
    rows = _classify(trained, loader, files, result.top_k, result, on_batch)
    start = time.perf_counter()
    if out is None:
        result.rows = list(rows)
    else:
        write_predictions(rows, out, result.top_k, out_format)
        result.out = Path(out) if isinstance(out, (str, Path)) else None
    result.seconds = time.perf_counter() - start
    return result


def _classify(trained: TrainedModel, loader: DataLoader, files: InputFiles, k: int, result: PredictResult,
              on_batch: Callable[[int], None] | None) -> Iterator[Prediction]:
    """Yield a :class:`Prediction` per readable image; count them and record the unreadable ones in ``result``."""
    classes = trained.classes
    with torch.inference_mode():
        for batch in loader:
            result.skipped.extend(batch.bad)
            if batch.images is not None:
                # the checkpoint's autocast, as evaluate computes them (bf16 by default on CUDA, fp32 on the CPU)
                logits = trained.logits(batch.images)
                probabilities, labels = logits.float().softmax(dim=1).topk(k, dim=1)  # (B, k) each
                positions = batch.labels.tolist()  # ImagePaths puts each image's position where a label would be
                for i, p, y in zip(positions, probabilities.tolist(), labels.tolist(), strict=True):
                    yield Prediction(files[i], [classes[j] for j in y], p)
                result.images += len(positions)
            if on_batch is not None:
                on_batch(len(batch.bad) + (0 if batch.images is None else len(batch.images)))


def write_predictions(rows: Iterable[Prediction], out: str | Path | IO[str], k: int,
                      out_format: str | None = None) -> None:
    """Write rows as they come: to a ``.csv`` / ``.jsonl`` file atomically, or to an open text stream.

    CSV columns: ``path, class_1, probability_1, ..., class_k, probability_k``; JSONL objects:
    ``{"path", "classes", "probabilities"}``. Probabilities have 6 decimals.

    Args:
        rows: the predictions.
        out: a file name (its suffix decides the format) or a stream.
        k: classes per row (the CSV header needs it before the first row).
        out_format: ``csv`` (default) or ``jsonl`` for a stream.
    """
    if isinstance(out, (str, Path)):
        with atomic_open(out, "w", newline="") as f:
            write_predictions(rows, f, k, output_format(out))
        return
    if out_format == "jsonl":
        for row in rows:
            out.write(json.dumps({"path": row.path, "classes": row.classes,
                                  "probabilities": [round(p, 6) for p in row.probabilities]}) + "\n")
        return
    writer = csv.writer(out)
    writer.writerow(["path", *(f"{name}_{i}" for i in range(1, k + 1) for name in ("class", "probability"))])
    for row in rows:
        writer.writerow([row.path, *(v for c, p in zip(row.classes, row.probabilities, strict=True)
                                     for v in (c, f"{p:.6f}"))])
