"""``metrics.jsonl``: one JSON object per finished epoch of a run, each with its ``epoch`` number.

The file is rewritten whole and atomically after every epoch, so a row is never torn by this tool; a file damaged
by hand or by another program is read row by row, and what cannot be read is skipped and named, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..common.atomic import atomic_write_text


def read_rows(path: Path, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The rows of ``path`` (``[]`` if it does not exist).

    A line that is not UTF-8, not JSON, or not an object with an integer ``epoch`` is skipped, and ``warn`` (when
    given) gets one line naming the file, the line number and what is wrong with it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        problem = None
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "is not UTF-8 text"
        except ValueError:
            problem = "is not JSON (a torn or edited line)"
        else:
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int) or isinstance(row["epoch"], bool):
                problem = "is not an epoch's row (an object with an integer epoch)"
        if problem is None:
            rows.append(row)
        elif warn is not None:
            warn(f"{path}:{number}: skipped: the line {problem}")
    return rows


def write_rows(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write every row, atomically (a kill leaves the previous file)."""
    atomic_write_text("".join(json.dumps(row) + "\n" for row in rows), path)
