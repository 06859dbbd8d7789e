"""The Typer application and its entry point: every exit path ends in one clear message and an honest exit code.

=====  ============================================================================================
code   when
=====  ============================================================================================
0      success
1      the work failed: a diverged run, a failed run of a table, a dataset that is not ready, a file
       system error, an unexpected exception (one line naming it; ``--debug`` shows the traceback)
2      a usage error: unknown option or command, missing argument, bad choice (the parser's usual
       message), or the project's own: a bad ``--set``, a missing file, a corrupt checkpoint (one line)
130    interrupted (Ctrl-C); a run says how to resume it
=====  ============================================================================================

Only typer, rich and the standard library are imported here and in every command module's top level,
so ``insvp --help``, usage errors and shell completion never pay for importing torch.
"""

from __future__ import annotations

import errno
import inspect
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup

from ..common.errors import RunInterrupted, TrainingDiverged, UsageError
from ..runtime.memory import human_bytes
from . import streams

# help panels, in the order the commands are listed
TRAIN, PAPER, INSPECT, TOOLS = "Train and use a model", "Reproduce the paper", "Inspect", "Tools"


def unwrap(text: str | None) -> str | None:
    """A docstring as its paragraphs: the line breaks inside a paragraph become spaces, so the terminal wraps it.

    Typer keeps a paragraph's own line breaks and then wraps each line again at the terminal's width, which breaks
    sentences in the middle. Paragraphs (split at blank lines) stay; list items (``- ``) keep their own lines; a
    paragraph that starts with ``\\b`` is left as written.
    """
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not line.lstrip().startswith("- "):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


class Argument(TyperArgument):
    """Typer's argument shown by its plain name: ``CKPT`` (``[CKPT]`` when optional), ``INPUT...`` when repeated.

    Typer writes ``{CKPT}`` in the usage line and a type such as ``<path>`` or ``<list[str]>`` beside the name; the
    name (its metavar) says what to give, and the help says the rest.
    """

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"

    def display_type(self, ctx: Any) -> str:
        return ""


class Command(TyperCommand):
    """Typer's command with ``PATH`` / ``N`` / ``TEXT`` metavars for options, none for flags, plain argument names,
    and help paragraphs that the terminal wraps (:func:`unwrap`)."""

    def __init__(self, *args: Any, help: str | None = None, **kwargs: Any):
        super().__init__(*args, help=unwrap(help), **kwargs)

    def get_params(self, ctx: Any) -> list[Any]:
        return _with_metavars(super().get_params(ctx))


class Group(TyperGroup):
    """Typer's group, listing commands in the order they are registered (within their help panels)."""

    command_class = Command

    def __init__(self, *args: Any, help: str | None = None, **kwargs: Any):
        super().__init__(*args, help=unwrap(help), **kwargs)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def get_params(self, ctx: Any) -> list[Any]:
        return _with_metavars(super().get_params(ctx))


def _with_metavars(params: list[Any]) -> list[Any]:
    for param in params:
        if param.param_type_name == "option" and param.metavar is None:
            param.metavar = _metavar(param)
        elif isinstance(param, TyperArgument) and not isinstance(param, Argument):
            # Typer builds its arguments itself and takes no argument class: this subclass only changes their display
            param.__class__ = Argument
    return params


class App(typer.Typer):
    """A Typer app whose commands are :class:`Command` s and whose groups are :class:`Group` s."""

    def __init__(self, **kwargs: Any):
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, cls: type | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or Command, **kwargs)


def _metavar(param: Any) -> str:
    if param.is_flag:
        return ""
    desc = param.type_descriptor
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    if desc.is_path:
        return "PATH"
    names = {int: "N", float: "X", str: "TEXT"}
    return names.get(desc.annotation, "VALUE") + ("..." if desc.is_list else "")


app = App(
    name="insvp",
    help="InsVP (instance visual prompting, ACM MM 2024) and its baselines on frozen vision transformers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"insvp {version('insvp')}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error, and the libraries' "
                                                      "warnings."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug
    if debug:
        streams.show_library_messages()


def run(args: Sequence[str] | None = None) -> int:
    """Run the command line on ``args`` (default: ``sys.argv[1:]``) and return its exit code (see the module doc)."""
    _state["debug"] = False
    if streams.stdout_closed():
        print_error("stdout is closed, so nothing could be printed; redirect it instead (> FILE or > /dev/null)")
        return 1
    with streams.quiet_libraries(print_error), streams.named_stdout():
        return _run(args)


def _run(args: Sequence[str] | None) -> int:
    try:
        try:
            code = app(args=list(args) if args is not None else None, prog_name="insvp", standalone_mode=False)
            sys.stdout.flush()  # a write error of stdout is reported here, not by the interpreter at exit
            return code if isinstance(code, int) else 0
        except SystemExit as exc:  # the parser's silent exit 1 on a closed pipe: handled as the error it was
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise
    except typer.TyperException as exc:  # the parser's errors (click's, bundled with typer)
        if not hasattr(exc, "ctx"):  # not a usage error: click's own message
            exc.show()
            return exc.exit_code
        command = exc.ctx.command_path if exc.ctx is not None else "insvp"
        return _fail(exc, f"{' '.join(exc.format_message().split())} ({command} --help shows the usage)", 2)
    except typer.Abort:
        print_error("aborted")
        return 1
    except UsageError as exc:
        return _fail(exc, str(exc), 2)
    except RunInterrupted as exc:
        return _fail(exc, f"interrupted; the run continues from its last finished epoch with: insvp train --resume "
                          f"{exc.run_dir} (insvp compare, reproduce and sweep continue where they stopped when run "
                          f"again)", 130, label="")
    except KeyboardInterrupt as exc:
        return _fail(exc, "interrupted", 130, label="")
    except TrainingDiverged as exc:
        return _fail(exc, str(exc), 1, label="training stopped:")
    except OSError as exc:
        if exc.filename == streams.STDOUT:
            streams.discard_stdout()  # what it still holds cannot be written either
            if isinstance(exc, BrokenPipeError):  # `insvp ... | head` has what it wanted: quiet, as Unix tools are
                return 0
        return _fail(exc, _os_error(exc), 1)
    except Exception as exc:
        if _out_of_memory(exc):
            return _fail(exc, _out_of_memory(exc), 1)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return _fail(exc, f"unexpected {type(exc).__name__}: {first} (insvp --debug ... shows the traceback)", 1)


def _out_of_memory(exc: Exception) -> str:
    """The line for PyTorch's allocation failures (``""`` for any other error): what was asked, and what to lower."""
    text = str(exc)
    if type(exc).__name__ != "OutOfMemoryError" and "can't allocate memory" not in text:
        return ""
    asked = re.search(r"allocate (\d+) bytes|[Tt]ried to allocate ([\d.]+ [KMGT]iB)", text)
    size = "" if asked is None else f" ({human_bytes(int(asked[1])) if asked[1] else asked[2]} asked at once)"
    return (f"out of memory{size}; lower data.batch_size, or the sizes of the model (prompt lengths, backbone.kwargs, "
            "the image size)")


def _os_error(exc: OSError) -> str:
    """``reason (path)``: a file-system error in words, with the file it concerns."""
    reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return f"{reason} ({exc.filename})" if exc.filename else reason


def _fail(exc: BaseException, message: str, code: int, label: str = "error:") -> int:
    if _state["debug"]:
        traceback.print_exception(exc)
    print_error(message, label)
    return code


def print_error(message: str, label: str = "error:") -> None:
    prefix = f"[bold red]{label}[/] " if label else ""
    err_console.print(f"{prefix}{escape(message)}", highlight=False, soft_wrap=True)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
