"""Errors that the command line reports as one clear line with exit code 2 (usage errors)."""


class UsageError(Exception):
    """Bad input from the user: a recipe key, a value, a path, a checkpoint.

    The message says what was wrong, where, and what would be valid. The CLI prints it on one line
    and exits with code 2; ``--debug`` shows the traceback.
    """


class ConfigError(UsageError):
    """An unknown key, a wrong type or a bad choice in a recipe or a ``--set`` override."""
