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
        # without standalone mode click returns the code of a `typer.Exit(code)` instead of exiting with it
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UsageError as exc:
        if _state["debug"]:
            raise
        # escaped: a message may quote text in square brackets (pip install "insvp[export]"), which is not markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except RuntimeError as exc:
        from ..engine import TrainingDiverged

        if not isinstance(exc, TrainingDiverged) or _state["debug"]:
            raise
        err_console.print(f"[bold red]training stopped:[/] {escape(str(exc))}; the last good checkpoint is kept",
                          highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted; a run continues with: insvp train --resume RUN_DIR")
        sys.exit(130)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors (unknown option, missing argument, bad choice)
        # recognised by their interface: recent typer raises those of its own copy of click, not click's
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
