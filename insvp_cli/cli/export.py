"""``insvp export``: a trained checkpoint as an ONNX or torch.export file, checked against PyTorch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .app import TRAIN, app, console, err_console
from .options import CheckpointArg, SetOpt, out_folder


class ExportFormat(str, Enum):
    onnx = "onnx"
    pt2 = "pt2"


@app.command(rich_help_panel=TRAIN)
def export(
    checkpoint: CheckpointArg,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="onnx: one model.onnx for onnxruntime; "
                                              "pt2: model.pt2 for torch.export.load.")] = ExportFormat.onnx,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: export-FORMAT beside "
                                             "the checkpoint).", metavar="PATH", show_default=False,
                                             parser=out_folder())] = None,
    overrides: SetOpt = None,
) -> None:
    """Export the whole model (backbone, prompt generators, head) with a dynamic batch axis.

    Writes the model file, labels.json (class names by label) and preprocess.json (resize, crop,
    interpolation, mean, std). The exported file is first run on sample inputs; if its logits differ
    from PyTorch's by more than 1e-4 (relative to the largest logit when it exceeds 1), nothing is written and the
    exit status is 1.
    """
    from rich.markup import escape

    from ..use.export import ExportMismatch, export_model

    with err_console.status("exporting") as status:
        try:
            result = export_model(checkpoint, fmt.value, out, overrides or [], on_step=status.update)
        except ExportMismatch as exc:
            status.stop()
            err_console.print(f"[bold red]export failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    for path in result.files:
        console.print(f"written: {path}", highlight=False, soft_wrap=True)
    console.print(f"largest logit difference from PyTorch on sample inputs: {result.max_diff:.2e}",
                  highlight=False)
