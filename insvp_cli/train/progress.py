"""Progress display: rich bars on a terminal, plain lines otherwise (logs, CI), nothing on non-main ranks."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunProgress:
    """An epoch bar and a step bar with loss, learning rate and images/s.

    Args:
        epochs: total epochs.
        enabled: False on non-main ranks.
        console: where to draw; plain text lines when it is not a terminal.
    """

    def __init__(self, epochs: int, enabled: bool = True, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.rich = enabled and self.console.is_terminal
        self.epochs = epochs
        self._progress: Progress | None = None
        self._last_plain = 0.0

    def __enter__(self) -> RunProgress:
        if self.rich:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._progress.__enter__()
            self._epoch_task = self._progress.add_task("epoch", total=self.epochs, info="")
            self._step_task = self._progress.add_task("step", total=None, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start_epoch(self, epoch: int, steps: int, what: str = "train") -> None:
        if self._progress is not None:
            self._progress.update(self._epoch_task, completed=epoch)
            self._progress.reset(self._step_task, total=steps, description=what, info="")

    def step(self, completed: int, info: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._step_task, completed=completed, info=info)
        elif self.enabled and info and time.monotonic() - self._last_plain > 30:
            # plain logs: one line every 30 s at most, so long epochs still show life
            self._last_plain = time.monotonic()
            self.console.print(f"  step {completed}: {info}", highlight=False)

    def end_epoch(self, epoch: int, line: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.update(self._epoch_task, completed=epoch + 1)
            self._progress.console.print(line, highlight=False)
        else:
            self.console.print(line, highlight=False)
            sys.stderr.flush()

    def message(self, line: str) -> None:
        if self.enabled:
            (self._progress.console if self._progress is not None else self.console).print(line, highlight=False)
