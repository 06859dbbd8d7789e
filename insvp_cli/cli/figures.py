"""``insvp gradcam`` and ``insvp tsne``: what a trained model does with its prompts (paper Figs. 3, 4, 6, 8)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..common.errors import UsageError
from ..config.limits import MAX_COUNT, SEED_MAX
from ..figures import FIGURE_FORMATS
from .app import INSPECT, app, console, err_console
from .options import CheckpointArg, DeviceOpt, RunsOpt, SetOpt, out_file, out_folder


class CamMethod(str, Enum):
    gradcam = "gradcam"
    gradcam_pp = "gradcam++"
    scorecam = "scorecam"
    eigencam = "eigencam"


class TsneSplit(str, Enum):
    train = "train"
    val = "val"
    test = "test"


class Embedding(str, Enum):
    features = "features"
    specific_prompt = "specific-prompt"
    both = "both"


@app.command(rich_help_panel=INSPECT)
def gradcam(
    checkpoint: CheckpointArg,
    images: Annotated[list[str], typer.Argument(help="Image files, folders of images, or glob patterns (quoted).",
                                                show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the figures.", parser=out_folder())] = (
        Path("figures")),
    target: Annotated[str | None, typer.Option(help="Class to explain: a class name, else a label index "
                                                    "(default: the predicted class).", show_default=False)] = None,
    cam: Annotated[CamMethod, typer.Option(help="Class activation map method (pytorch-grad-cam).")] = CamMethod.gradcam,
    compare: Annotated[Path | None, typer.Option(help="A second checkpoint, drawn as a row under the first.",
                                                 show_default=False)] = None,
    prompts: Annotated[bool, typer.Option("--prompts", help="Also save p_I, p_g and p_l on one shared colour "
                                                            "scale (Fig. 4).")] = False,
    device: DeviceOpt = "auto",
    overrides: SetOpt = None,
) -> None:
    """Grad-CAM of each image as in paper Fig. 3: original, image prompt p_I, its heat map, x + p_I, CAM.

    Writes OUT/<image>-gradcam.png per image (one row per checkpoint) and with --prompts
    OUT/<image>-prompts.png. --set overrides (e.g. backbone.weights=PATH) apply to both checkpoints.
    """
    from ..figures.gradcam import collect_images, gradcam_figures
    from ..runs.trained import TrainedModel

    paths = collect_images(images)  # bad paths fail before any model is built
    models = [TrainedModel.load(c, overrides or [], device=device) for c in (checkpoint, compare) if c is not None]

    def report(result) -> None:
        rows = "; ".join(f"{r.model_label}: '{r.predicted_name}' {r.probability:.1%}" for r in result.explanations)
        console.print(f"{result.image}: {rows}", highlight=False, soft_wrap=True)
        for path in (result.figure, *result.prompts):
            console.print(f"  written: {path}", highlight=False, soft_wrap=True)

    results = gradcam_figures(models, paths, out, target, cam.value, prompts, on_image=report)
    if prompts and not any(r.prompts for r in results):
        console.print("no image prompts in these checkpoints: no prompt figures", highlight=False)


@app.command(rich_help_panel=INSPECT)
def tsne(
    checkpoint: Annotated[Path | None, typer.Argument(help="A checkpoint or a run folder (or give --dataset).",
                                                      metavar="CKPT", show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option(help="Use the most recent finished run on this dataset under "
                                                     "--runs.", show_default=False)] = None,
    runs: RunsOpt = Path("runs"),
    method: Annotated[str | None, typer.Option(help="With --dataset: only runs of this method.",
                                               show_default=False)] = None,
    split: Annotated[TsneSplit, typer.Option(help="The split (always with the evaluation transform).")] = (
        TsneSplit.test),
    max_samples: Annotated[int, typer.Option(help="A seeded random subset of this many samples; 0: all.",
                                             min=0, max=MAX_COUNT)] = 2000,
    of: Annotated[Embedding, typer.Option(help="What to embed: the final features (Fig. 8), InsVP's specific "
                                               "prompt p_s (Fig. 6), or both.")] = Embedding.both,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for tsne.png and the CSVs.",
                                      parser=out_folder())] = Path("figures"),
    seed: Annotated[int, typer.Option(help="Seeds the subset, PCA and t-SNE.", min=0, max=SEED_MAX)] = 0,
    device: DeviceOpt = "auto",
    overrides: SetOpt = None,
) -> None:
    """t-SNE of a trained model's features and of its specific prompt p_s, coloured by class (Figs. 6, 8).

    Writes OUT/tsne.png and OUT/tsne-<features|specific-prompt>.csv (x, y, label, class_name per sample).
    With --dataset, a run with p_s is preferred when p_s is asked for. --set overrides change the
    checkpoint's config, e.g. data.root=PATH.
    """
    if (checkpoint is None) == (dataset is None):
        raise UsageError("give either a checkpoint (insvp tsne CKPT) or --dataset NAME")
    from ..figures.tsne import EMBEDDINGS, find_run, offers, tsne_figures
    from ..runs.folder import RunFolder
    from ..runs.trained import TrainedModel

    wanted = list(EMBEDDINGS) if of is Embedding.both else [of.value]
    if dataset is not None:
        run = find_run(runs, dataset, method, prefer="specific-prompt" if "specific-prompt" in wanted else None)
        checkpoint = RunFolder(run).best
        which = f"{method} run" if method else "run"
        with_ps = " with a specific prompt p_s" if "specific-prompt" in wanted and offers(run, "specific-prompt") \
            else ""
        console.print(f"using {run}: the most recent finished {which} on {dataset}{with_ps} under {runs}",
                      highlight=False, soft_wrap=True)
    trained = TrainedModel.load(checkpoint, overrides or [], device=device)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"{split.value} samples", total=None)
        result = tsne_figures(
            trained, out, split.value, max_samples or None, wanted, seed,
            on_start=lambda n: progress.update(task, total=n),
            on_batch=lambda n: progress.advance(task, n),
            on_embed=lambda n: progress.update(task, description=f"t-SNE of {n} samples"),
        )
    if result.skipped:
        console.print(f"{trained.label} has no specific prompt p_s: features only", highlight=False)
    console.print(f"t-SNE of {result.samples} {split.value} samples; written: {result.figure}, "
                  f"{', '.join(str(p) for p in result.csvs.values())}", highlight=False, soft_wrap=True)


@app.command(rich_help_panel=INSPECT)
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of insvp train (finished or not).", metavar="RUN...",
                                               show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The figure to write (.png, .pdf or .svg).",
                                      parser=out_file(*FIGURE_FORMATS))] = Path("figures/curves.png"),
) -> None:
    """Training curves of one or many runs: loss, val and test accuracy and learning rate per epoch, one figure."""
    from ..figures.curves import plot_curves

    def warn(line: str) -> None:
        err_console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)

    console.print(f"written: {plot_curves(runs, out, warn)}", highlight=False, soft_wrap=True)
