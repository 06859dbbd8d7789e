"""``insvp recipes``: the recipes shipped with insvp, by the names ``--recipe`` takes."""

from __future__ import annotations

import typer

from .app import TOOLS, app, err_console


@app.command("recipes", rich_help_panel=TOOLS)
def list_recipes() -> None:
    """List the recipes shipped with insvp (use them as --recipe NAME)."""
    from ..resolve.recipes import RECIPES, shipped_recipes

    for name in shipped_recipes():
        typer.echo(name)
    err_console.print(f"shipped in {RECIPES}", style="dim", highlight=False, soft_wrap=True)
