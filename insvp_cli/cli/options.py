"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RecipeOpt = Annotated[
    Optional[Path], typer.Option("--recipe", "-r", help="Recipe YAML (defaults < recipe < --set).", show_default=False)
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config value: KEY.PATH=VALUE (YAML value). Repeatable.",
                 show_default=False),
]
