"""The Typer application and its entry point: usage errors become one red line and exit code 2."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import UsageError

app = typer.Typer(
    name="insvp",
    help="InsVP (instance visual prompting, ACM MM 2024) and its baselines on frozen vision transformers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors.")) -> None:
    _state["debug"] = debug


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=False)
    except UsageError as exc:
        if _state["debug"]:
            raise
        # escaped: messages quote values such as [0.001, 0.01], which rich would read as markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except RuntimeError as exc:
        from ..engine import TrainingDiverged

        if not isinstance(exc, TrainingDiverged) or _state["debug"]:
            raise
        err_console.print(f"[bold red]training stopped:[/] {exc}; the last good checkpoint is kept", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted; a run continues with: insvp train --resume RUN_DIR")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors (unknown option, missing argument)
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
