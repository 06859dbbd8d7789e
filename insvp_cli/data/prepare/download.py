"""Resumable downloads: ``requests`` with urllib3's retry and backoff, continued with HTTP ranges.

A file is written to ``NAME.part`` beside its final path. Every attempt asks for the bytes the partial file does
not have yet (``Range: bytes=N-``); a connection that drops half-way is retried with backoff from where it stopped,
and so is a download interrupted by Ctrl-C or a killed job when the command runs again. A server that ignores ranges
sends the whole file again, and the partial file is restarted. Nothing is renamed to its final name here: the caller
verifies ``NAME.part`` first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

CHUNK = 1 << 16  # a dropped connection loses the chunk in flight: at most this much is fetched twice
TIMEOUT = (15, 60)  # seconds to connect, seconds between two reads: a stalled connection is retried
# errors after the response started (a dropped connection, a stalled read): resumed from the partial file
DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class DownloadError(Exception):
    """Every URL of a file failed; the message says why for the last one."""


def session(retries: int) -> requests.Session:
    """A session that retries refused connections and 429 / 5xx answers with exponential backoff."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=1, backoff_max=60,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",), raise_on_status=False)
    s = requests.Session()
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.headers["User-Agent"] = "insvp-data-prepare"
    return s


def part_of(path: Path) -> Path:
    """The partial file of ``path``: ``NAME.part``."""
    return path.with_name(path.name + ".part")


def fetch(urls: tuple[str, ...], path: Path, *, size: int | None, retries: int, http: requests.Session,
          progress: Callable[[int, int | None], None] | None = None) -> str:
    """Download the first of ``urls`` that answers into ``NAME.part`` of ``path``, resuming what is there.

    Args:
        urls: the file's URLs, tried in order.
        path: the final path (the bytes go to its ``.part``).
        size: the published size, if any (a partial file that already has it is not requested again).
        retries: attempts per URL after a dropped connection (each resumes).
        http: the session (:func:`session`).
        progress: called with (bytes on disk, total bytes or ``None``).

    Returns:
        The URL that served the file.

    Raises:
        DownloadError: no URL served the file.
    """
    part = part_of(path)
    part.parent.mkdir(parents=True, exist_ok=True)
    reason = "no URL"
    for url in urls:
        try:
            _fetch_one(url, part, size, retries, http, progress)
            return url
        except DownloadError as exc:
            reason = str(exc)
    raise DownloadError(reason)


def _fetch_one(url: str, part: Path, size: int | None, retries: int, http: requests.Session,
               progress: Callable[[int, int | None], None] | None) -> None:
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have >= size:
            return
        try:
            with http.get(url, headers={"Range": f"bytes={have}-"} if have else {}, stream=True,
                          timeout=TIMEOUT) as r:
                if r.status_code == 416 and have:  # the partial file already holds every byte
                    return
                if r.status_code >= 400:
                    raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}")
                if r.status_code != 206:  # the server ignored the range: start again from the first byte
                    have = 0
                length = r.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else size
                with open(part, "ab" if have else "wb") as f:
                    for chunk in r.iter_content(CHUNK):
                        f.write(chunk)
                        have += len(chunk)
                        if progress is not None:
                            progress(have, total)
                if total is not None and have < total:  # the server closed the connection early
                    raise requests.ConnectionError(f"connection closed at {have:,} of {total:,} bytes")
                return
        except DROPPED as exc:
            if attempt == retries:
                raise DownloadError(f"{url}: {_reason(exc)}") from None
            time.sleep(min(2 ** attempt, 60))  # back off, then resume from the partial file


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests error, in a line (requests nests urllib3's errors several deep)."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip("()'\" ").splitlines()[0][:200]
