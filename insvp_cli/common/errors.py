"""Errors that the command line reports as one clear line with exit code 2 (usage errors)."""

import re


class UsageError(Exception):
    """Bad input from the user: a recipe key, a value, a path, a checkpoint.

    The message says what was wrong, where, and what would be valid. The CLI prints it on one line
    and exits with code 2; ``--debug`` shows the traceback.
    """


class ConfigError(UsageError):
    """An unknown key, a wrong type or a bad choice in a recipe or a ``--set`` override."""


class RunInUse(UsageError):
    """Another process holds the run folder's lock (it trains there now)."""


class RunFinished(UsageError):
    """The run folder holds a finished run that the given epochs would not train on (found holding its lock, so a
    run that another process finished a moment ago counts too)."""


class RunInterrupted(Exception):
    """Ctrl-C during a run: it resumes from its last finished epoch with ``insvp train --resume RUN``.

    Not a ``KeyboardInterrupt``, so that it reaches the entry point with the run folder it names.
    """

    def __init__(self, run_dir):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says what the run folder keeps."""


def first_sentence(exc: BaseException) -> str:
    """``Type: first sentence`` of an exception, for one-line errors (torch's load errors run to pages)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0].split('. ')[0][:200]}" if text else type(exc).__name__
