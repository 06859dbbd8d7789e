"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RecipeOpt = Annotated[
    Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (defaults < recipe < --set).", show_default=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config value: KEY.PATH=VALUE (YAML value). Repeatable.",
                 show_default=False),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
