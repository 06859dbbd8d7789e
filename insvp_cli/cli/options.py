"""Arguments, options and choices shared by several commands, so that each means the same everywhere."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..common.paths import check_output_file, check_output_folder
from ..experiments.reproduce.paper_tables import PAPER_TABLES


def _existing_checkpoint(path: Path) -> Path:
    """A missing checkpoint is a usage error before the command imports torch (the loader checks it again)."""
    from ..runs.folder import checkpoint_file

    checkpoint_file(path)
    return path


CheckpointArg = Annotated[Path, typer.Argument(help="A checkpoint (best.pt / last.pt) or a run folder.",
                                               metavar="CKPT", show_default=False, callback=_existing_checkpoint)]
RecipeOpt = Annotated[
    list[str] | None,
    typer.Option("--recipe", "-r", metavar="NAME|PATH", show_default=False,
                 help="A recipe: a shipped name (svhn, vtab/dtd; `insvp recipes` lists them) or a YAML file. "
                      "Repeatable: later recipes override earlier ones (defaults < recipes < --set)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE", show_default=False,
                 help="Override a config value, e.g. train.lr=1e-3 (the value is YAML). Repeatable."),
]

TABLE_METAVAR = "|".join(PAPER_TABLES)


def table_name(value: str) -> str:
    """A table's name: one of the paper's (the choices the help shows) or another registered with ``register_table``.

    The registry (and torch with it) is never imported for this: a table outside the paper's exists only if code
    that ran before (a plugin, ``sitecustomize``) registered it, which imported the registry already; an unknown
    name therefore fails at once.

    Raises:
        typer.BadParameter: an unknown name (the parser's usage error, exit code 2, listing the valid ones).
    """
    if value in PAPER_TABLES:
        return value
    registry = sys.modules.get("insvp_cli.experiments.reproduce.tables")
    if registry is not None and value in registry.TABLES.names():
        return value
    raise typer.BadParameter(f"{value!r} is not one of {', '.join(PAPER_TABLES)}")


def out_file(*suffixes: str, option: str = "--out") -> Callable[[str | Path], Path]:
    """The parser of an option naming a file to write in one of ``suffixes``: checked as it is parsed, before any
    work (:func:`~insvp_cli.common.paths.check_output_file`)."""
    return lambda value: check_output_file(value, suffixes, option)


def out_folder(option: str = "--out") -> Callable[[str | Path], Path]:
    """The parser of an option naming a folder to write into: checked as it is parsed, before any work."""
    return lambda value: check_output_folder(value, option)


DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
RunsOpt = Annotated[Path, typer.Option("--runs", help="The folder of the run folders.")]


class Split(str, Enum):
    val = "val"
    test = "test"


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class ReportFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    latex = "latex"


def recipes(values: list[str] | None) -> list[str] | None:
    """``--recipe`` values as the resolver takes them (``None``: no recipe)."""
    return list(values) if values else None


def split_names(text: str, option: str, example: str) -> list[str]:
    """A comma-separated option value as names; none at all is a usage error."""
    from ..common.errors import UsageError

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"{option}: name at least one, e.g. {option} {example}")
    return names
