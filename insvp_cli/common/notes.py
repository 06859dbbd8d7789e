"""insvp's own notes and warnings to the user, one line each, from any layer.

They go through the ``insvp`` logger: the command line prints each as one ``note:`` or ``warning:`` line on stderr
(:mod:`insvp_cli.cli.streams`), and a Python program sees them as log records it may show or not.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("insvp")


def note(message: str) -> None:
    """Something the user should know that changes nothing they asked for (a worker count capped, ...)."""
    LOGGER.info(message)


def warn(message: str) -> None:
    """Something was skipped or is wrong, and the work goes on (a damaged row or summary, ...)."""
    LOGGER.warning(message)
