"""``insvp convert-official``: a model of the authors' release as an insvp checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import TOOLS, app, console
from .options import SetOpt, out_folder


@app.command("convert-official", rich_help_panel=TOOLS)
def convert_official_command(
    state_dict: Annotated[Path, typer.Argument(help="The release's best_model.pth (a state dict).",
                                               metavar="STATE_DICT", show_default=False, exists=True,
                                               dir_okay=False)],
    recipe: Annotated[str, typer.Option("--recipe", "-r", metavar="NAME|PATH",
                                        help="Recipe of the release run (method.preset=release).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for best.pt, config.yaml, backbone.safetensors.",
                                      parser=out_folder())],
    overrides: SetOpt = None,
) -> None:
    """Convert the release's state dict; `insvp evaluate OUT` and insvp_cli.load_model then use it like our runs."""
    from ..use.convert import convert_official

    result = convert_official(state_dict, recipe, out, overrides or [])
    console.print(f"converted {result.tensors} tensors ({result.num_classes} classes) -> {result.checkpoint}; "
                  f"backbone weights in {result.backbone}", highlight=False)
