"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RecipeOpt = Annotated[
    list[Path] | None,
    typer.Option("--recipe", "-r", metavar="PATH", show_default=False,
                 help="Recipe YAML (defaults < recipe < --set). Repeatable: later recipes override earlier ones."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE", show_default=False,
                 help="Override a config value: KEY.PATH=VALUE (YAML value). Repeatable."),
]
