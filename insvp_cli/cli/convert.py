"""``insvp convert-official``: a model trained with the authors' release -> an insvp checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..methods.insvp.convert import convert_official
from .app import app, console
from .options import SetOpt


@app.command("convert-official")
def convert_official_command(
    state_dict: Annotated[Path, typer.Argument(help="The release's best_model.pth (a state dict).")],
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="Recipe of the release run (method.preset=release).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for best.pt, config.yaml, backbone.safetensors.")],
    overrides: SetOpt = None,
) -> None:
    """Convert the release's state dict; `insvp evaluate OUT` and insvp_cli.load_model then use it like our runs."""
    if (out / "best.pt").exists():
        raise UsageError(f"--out {out} already holds best.pt; choose another folder")
    result = convert_official(state_dict, recipe, out, overrides or [])
    console.print(f"converted {result.tensors} tensors ({result.num_classes} classes) -> {result.checkpoint}; "
                  f"backbone weights in {result.backbone}", highlight=False)
