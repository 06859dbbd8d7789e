"""t-SNE of a trained model's final features and of InsVP's specific prompt (InsVP, ACM MM 2024, Figs. 6 and 8).

Fig. 8 embeds the features that reach the head (``forward_features``, ``(B, D)``); Fig. 6 embeds the
specific prompt ``p_s = G_s(.)`` ``(B, L_p, D)``, flattened, which only InsVP with ``G_s`` has. Both are
extracted from one split of the checkpoint's own dataset, embedded in 2-D with scikit-learn's seeded
t-SNE, drawn coloured by class and written as CSV (``x, y, label, class_name``; one row per sample).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ..backbone import data_config
from ..common.errors import UsageError
from ..common.notes import warn
from ..data.loaders import ImageLoader
from ..data.splits import build_splits
from ..resolve.recipes import RECIPES
from ..runs.folder import RunFolder, finished_runs
from ..runs.trained import TrainedModel
from . import save_figure

EMBEDDINGS = ("features", "specific-prompt")
SYMBOLS = {"features": "final features", "specific-prompt": "specific prompt p_s"}
TITLES = {"features": "final features (Fig. 8)", "specific-prompt": "specific prompt p_s (Fig. 6)"}
PCA_DIMS = 50  # t-SNE on more dimensions is slow and no better: reduce with PCA first, as is customary
MAX_PERPLEXITY = 30.0  # scikit-learn's default
LEGEND_CLASSES = 20  # up to this many classes get a legend; more get a colour bar of the label index


# --------------------------------------------------------------------------------------------------
# Which run


def offers(run: Path, embedding: str) -> bool:
    """Whether a run's method offers ``embedding`` (its stored config; no model built)."""
    try:
        return embedding in RunFolder(run).read_config().method.embeddings()
    except UsageError:  # not a run of this version: it offers nothing to prefer
        return False


def find_run(runs_dir: Path, dataset: str, method: str | None = None, prefer: str | None = None) -> Path:
    """The folder of the most recent finished run on ``dataset`` (with its validation-selected checkpoint).

    Args:
        runs_dir: searched recursively.
        dataset: ``summary.json``'s ``dataset``.
        method: only runs of this method.
        prefer: among the runs, take the most recent one whose method offers this embedding, if any.

    Raises:
        UsageError: no such run; the message says how to make one.
    """
    runs = []
    for run in finished_runs(runs_dir):
        try:
            summary = run.read_summary()
        except UsageError as exc:  # damaged: not a finished run
            warn(f"skipped: {exc}")
            continue
        if (summary.get("dataset") == dataset and (method is None or summary.get("method") == method)
                and run.best.is_file()):
            runs.append(run)
    if not runs:
        shipped = (RECIPES / f"{dataset}.yaml").is_file()
        how = f"insvp train --recipe {dataset}" if shipped else f"insvp train --set data.name={dataset}"
        if method is not None:
            how += f" --set method.name={method}"
        which = f"{method} run" if method else "run"
        raise UsageError(f"no finished {which} on dataset {dataset} under {runs_dir} (a run folder with "
                         f"{RunFolder.SUMMARY} and {RunFolder.BEST}); create one with: {how}, or give a checkpoint")
    runs.sort(key=RunFolder.finished_at, reverse=True)
    if prefer is not None:
        offering = [r for r in runs if offers(r.path, prefer)]
        if offering:
            return offering[0].path
    return runs[0].path


# --------------------------------------------------------------------------------------------------
# Extraction


@dataclass
class Extracted:
    """Per-sample vectors of one split: ``vectors[name]`` is ``(N, dim)``; ``labels`` is ``(N,)``.

    ``skipped`` lists embeddings that were asked for together with others but that the model lacks.
    """

    vectors: dict[str, np.ndarray]
    labels: np.ndarray
    skipped: list[str]


@torch.no_grad()
def extract(trained: TrainedModel, split: str = "test", max_samples: int | None = None,
            of: Sequence[str] = EMBEDDINGS, seed: int = 0,
            on_start: Callable[[int], None] | None = None,
            on_batch: Callable[[int], None] | None = None) -> Extracted:
    """Final features and / or flattened ``p_s`` of the samples of ``split``.

    Args:
        trained: the checkpoint's model.
        split: ``train`` (evaluation transform), ``val`` or ``test``.
        max_samples: a seeded random subset of this many samples (``None``: all).
        of: a subset of :data:`EMBEDDINGS`.
        seed: seeds the subset.
        on_start: called with the number of samples to extract.
        on_batch: called with the samples of each batch done (progress).

    Raises:
        UsageError: a bad split, ``specific-prompt`` alone for a model without one (asked for with the
            features, it is skipped), a dataset with other classes than the checkpoint.
    """
    if split not in ("train", "val", "test"):
        raise UsageError(f"--split {split!r} is not valid; valid: train, val, test")
    bad = [name for name in of if name not in EMBEDDINGS]
    if bad or not of:
        raise UsageError(f"--of {', '.join(bad) or 'nothing'}: valid: {', '.join(EMBEDDINGS)}, both")
    cfg = trained.config
    splits = build_splits(cfg.data, data_config(trained.model.backbone))
    if list(splits.classes) != trained.classes:
        raise UsageError(f"checkpoint {trained.path}: its dataset now has other classes than it was trained on")
    # the evaluation transform for every split: the features of the images, not of random crops
    dataset = getattr(splits, split).with_transform(splits.test.transform)
    if max_samples is not None and len(dataset) > max_samples:
        rng = np.random.default_rng(seed)
        dataset = dataset.select(np.sort(rng.choice(len(dataset), max_samples, replace=False)))
    offered = trained.config.method.embeddings()
    skipped = [name for name in dict.fromkeys(of) if name not in offered]
    of = [name for name in dict.fromkeys(of) if name in offered]
    if not of:
        missing = ", ".join(SYMBOLS.get(name, name) for name in skipped)
        raise UsageError(f"checkpoint {trained.path} ({trained.method}) has no {missing}; it offers "
                         f"{', '.join(offered)} (p_s is InsVP's with G_s); use --of features")
    loader = ImageLoader(dataset, batch_size=cfg.data.batch_size, shuffle=False, num_workers=cfg.data.num_workers,
                         on_bad_image=cfg.data.on_bad_image)
    if on_start is not None:
        on_start(len(dataset))
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in of}
    labels = []
    for images, targets in loader:
        images = images.to(trained.device)
        for name in of:
            vectors[name].append(trained.model.embed(images, name).float().cpu().numpy())
        labels.append(targets.numpy())
        if on_batch is not None:
            on_batch(len(targets))
    if not labels:
        raise UsageError(f"split {split} of {cfg.data.name} has no readable samples")
    return Extracted({name: np.concatenate(v) for name, v in vectors.items()}, np.concatenate(labels), skipped)


# --------------------------------------------------------------------------------------------------
# Embedding


def perplexity_for(samples: int) -> float:
    """scikit-learn's default 30, capped for few samples (t-SNE needs perplexity < samples)."""
    return float(min(MAX_PERPLEXITY, max(1.0, (samples - 1) / 3)))


def tsne_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Seeded 2-D t-SNE ``(N, dim) -> (N, 2)``, after PCA to :data:`PCA_DIMS` dimensions when there are more.

    Raises:
        UsageError: fewer than 4 samples.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    samples = len(vectors)
    if samples < 4:
        raise UsageError(f"t-SNE needs at least 4 samples; got {samples}")
    x = vectors.astype(np.float32)
    if x.shape[1] > PCA_DIMS and samples > PCA_DIMS:
        x = PCA(n_components=PCA_DIMS, random_state=seed).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=perplexity_for(samples), init="pca", learning_rate="auto",
                random_state=seed)
    return tsne.fit_transform(x).astype(np.float32)


def write_csv(path: Path, coords: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Path:
    """``x, y, label, class_name``: one row per sample, in extraction order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "label", "class_name"])
        for (x, y), label in zip(coords.tolist(), labels.tolist(), strict=True):
            writer.writerow([f"{x:.6g}", f"{y:.6g}", label, classes[label]])
    return path


# --------------------------------------------------------------------------------------------------
# Drawing


def plot_tsne(embeddings: dict[str, np.ndarray], labels: np.ndarray, classes: Sequence[str], title: str) -> Figure:
    """One scatter panel per embedding, coloured by class: a shared legend for up to
    :data:`LEGEND_CLASSES` classes, else a colour bar of the label index."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    num = len(classes)
    if num <= 10:
        colours = [colormaps["tab10"](k) for k in range(num)]
    elif num <= LEGEND_CLASSES:
        colours = [colormaps["tab20"](k) for k in range(num)]
    else:
        colours = None
    fig = Figure(figsize=(4.6 * len(embeddings) + (1.6 if num <= LEGEND_CLASSES else 0.9), 4.8), layout="constrained")
    fig.suptitle(title, fontsize=11)
    axes = fig.subplots(1, len(embeddings), squeeze=False)[0]
    size = 14 if len(labels) <= 2000 else 5
    scatter = None
    for ax, (name, coords) in zip(axes, embeddings.items(), strict=True):
        if colours is not None:
            ax.scatter(coords[:, 0], coords[:, 1], c=[colours[k] for k in labels], s=size, linewidths=0)
        else:
            scatter = ax.scatter(coords[:, 0], coords[:, 1], c=labels, cmap="turbo", s=size, linewidths=0, vmin=0,
                                 vmax=num - 1)
        ax.set_title(TITLES.get(name, name), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if colours is not None:
        handles = [Line2D([], [], marker="o", linestyle="", color=colours[k], label=classes[k]) for k in range(num)]
        fig.legend(handles=handles, loc="outside right center", title="class", fontsize=8, title_fontsize=9,
                   ncols=1 if num <= 10 else 2)
    else:
        bar = fig.colorbar(scatter, ax=list(axes), shrink=0.85, label=f"class label (0..{num - 1})")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    return fig


# --------------------------------------------------------------------------------------------------
# The command's core


@dataclass
class TsneOutputs:
    """What :func:`tsne_figures` wrote."""

    figure: Path
    csvs: dict[str, Path]
    samples: int
    skipped: list[str]


def tsne_figures(trained: TrainedModel, out: Path, split: str = "test", max_samples: int | None = 2000,
                 of: Sequence[str] = EMBEDDINGS, seed: int = 0, on_start: Callable[[int], None] | None = None,
                 on_batch: Callable[[int], None] | None = None,
                 on_embed: Callable[[int], None] | None = None) -> TsneOutputs:
    """``out/tsne.png`` (a panel per embedding) and ``out/tsne-<embedding>.csv``.

    ``of`` holding both embeddings on a model without ``p_s`` draws the features alone and reports
    ``specific-prompt`` in ``skipped``; asking for ``specific-prompt`` alone is an error then.
    ``on_start`` / ``on_batch`` follow the extraction (see :func:`extract`); ``on_embed`` is called with
    the sample count when the t-SNE starts.
    """
    data = extract(trained, split, max_samples, of, seed, on_start, on_batch)
    if on_embed is not None:
        on_embed(len(data.labels))
    embeddings = {name: tsne_2d(vectors, seed) for name, vectors in data.vectors.items()}
    csvs = {name: write_csv(out / f"tsne-{name}.csv", coords, data.labels, trained.classes)
            for name, coords in embeddings.items()}
    samples = len(data.labels)
    title = (f"t-SNE of {trained.config.data.name} {split} ({samples} samples, perplexity "
             f"{perplexity_for(samples):.3g}): {trained.label}")
    figure = save_figure(plot_tsne(embeddings, data.labels, trained.classes, title), out / "tsne.png")
    return TsneOutputs(figure, csvs, samples, data.skipped)

