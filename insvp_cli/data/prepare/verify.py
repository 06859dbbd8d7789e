"""Checking a downloaded file against its published size and digest before anything uses it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from .sources import Remote

CHUNK = 1 << 20


class VerifyError(Exception):
    """A file whose size or digest is not the published one; the message names the file, expected and actual."""


def digest_of(path: Path, algo: str, advance: Callable[[int], None] | None = None) -> str:
    """The hex digest of ``path`` (read in 1 MiB chunks; ``advance`` gets each chunk's length, for a bar)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return h.hexdigest()


def verify(path: Path, remote: Remote, advance: Callable[[int], None] | None = None) -> str:
    """Check ``path`` against ``remote``'s size and digest.

    Returns:
        What was checked, for the log: ``"sha256 ok"``, ``"size ok, no published checksum"``, ...

    Raises:
        VerifyError: the size or the digest differs (the message has both digests, and both sizes if they differ).
    """
    size = path.stat().st_size
    sizes = "" if remote.size is None or size == remote.size else f"; size {size:,} bytes, expected {remote.size:,}"
    if remote.digest is None:
        if sizes:
            raise VerifyError(f"{remote.name}: {sizes[2:]} ({path})")
        return "size ok, no published checksum" if remote.size is not None else "no published checksum or size"
    algo, _, expected = remote.digest.partition(":")
    actual = digest_of(path, algo, advance)
    if actual != expected or sizes:
        raise VerifyError(f"{remote.name}: {algo} {actual}, expected {expected}{sizes} ({path}, the expected values "
                          f"from {remote.checksum_from})")
    return f"{algo} ok"
