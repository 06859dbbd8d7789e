"""Archives in the real formats of ``insvp data prepare``'s sources (same names, member layouts and metadata files,
a few tiny images), and a real HTTP server on 127.0.0.1 that serves them with ranges, counts the bytes it sends,
and can cut a connection half-way or send slowly.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import scipy.io
import yaml
from fabricate import image_bytes, make_dtd

FLOWERS_IMAGES = 8189  # image_00001.jpg .. image_08189.jpg: every image the FGVC splits list


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1_600_000_000
    tar.addfile(info, io.BytesIO(data))


def dtd_archive(folder: Path, padding: int = 0) -> Path:
    """``dtd-r1.0.1.tar.gz``: ``dtd/images/<class>/<class>_NNNN.jpg``, ``dtd/labels/{train,val,test}{1,2}.txt`` and
    ``dtd/imdb/imdb.mat`` (``padding`` random bytes, to make the file as long as a test needs)."""
    tree = folder / "dtd-tree"
    make_dtd(tree)
    path = folder / "dtd-r1.0.1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree / "dtd" / "dtd", arcname="dtd")
        _add(tar, "dtd/imdb/imdb.mat", np.random.default_rng(0).bytes(padding))
    return path


def flowers_archives(folder: Path) -> list[Path]:
    """``102flowers.tgz`` (``jpg/image_NNNNN.jpg``), ``imagelabels.mat`` and ``setid.mat`` of Oxford Flowers-102."""
    jpeg = image_bytes()
    with tarfile.open(folder / "102flowers.tgz", "w:gz") as tar:
        for i in range(1, FLOWERS_IMAGES + 1):
            _add(tar, f"jpg/image_{i:05d}.jpg", jpeg)
    ids = np.arange(1, FLOWERS_IMAGES + 1)
    scipy.io.savemat(folder / "imagelabels.mat", {"labels": (ids % 102 + 1).reshape(1, -1).astype(np.uint8)})
    scipy.io.savemat(folder / "setid.mat", {"trnid": ids[:1020].reshape(1, -1), "valid": ids[1020:2040].reshape(1, -1),
                                            "tstid": ids[2040:].reshape(1, -1)})
    return [folder / name for name in ("102flowers.tgz", "imagelabels.mat", "setid.mat")]


def vtab_archive(folder: Path, task: str = "kitti", test: int = 711) -> Path:
    """``vtab-1k.zip``: ``vtab-1k/<task>/`` with ``images/{train,test}/NNNNNN.jpg`` and the four lists at VTAB-1k's
    sizes (800 / 200 / 1,000 / ``test``), and a stray list of another task (which preparing ``task`` leaves out)."""
    jpeg = image_bytes()
    lines = {"train800": [f"images/train/{i:06d}.jpg {i % 4}" for i in range(800)],
             "val200": [f"images/train/{i:06d}.jpg {i % 4}" for i in range(800, 1000)],
             "test": [f"images/test/{i:06d}.jpg {i % 4}" for i in range(test)]}
    lines["train800val200"] = lines["train800"] + lines["val200"]
    path = folder / "vtab-1k.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for stem, rows in lines.items():
            zf.writestr(f"vtab-1k/{task}/{stem}.txt", "\n".join(rows) + "\n")
        for row in lines["train800val200"] + lines["test"]:
            zf.writestr(f"vtab-1k/{task}/{row.split()[0]}", jpeg)
        zf.writestr("vtab-1k/dtd/train800.txt", "images/train/000000.jpg 0\n")
    return path


def pin(files: list[Path], path: Path) -> Path:
    """A ``--sources`` file pinning the size and SHA-256 of ``files``."""
    entries = {f.name: {"size": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
               for f in files}
    path.write_text(yaml.safe_dump(entries))
    return path


@dataclass
class Served:
    """What the server did: bytes sent per file, the ``Range`` header of every request, and what to do next."""

    folder: Path
    sent: Counter = field(default_factory=Counter)
    ranges: list[tuple[str, str | None]] = field(default_factory=list)
    cut: dict[str, int] = field(default_factory=dict)  # file -> close the connection after this many bytes, once
    delay: float = 0.0  # seconds per 16 KiB chunk


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state
        name = self.path.lstrip("/")
        path = state.folder / name
        if "/" in name or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = self.headers.get("Range")
        state.ranges.append((name, wanted))
        start = int(wanted.split("=")[1].split("-")[0]) if wanted else 0
        if start >= len(data) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        limit = state.cut.pop(name, None)
        body = data[start:] if limit is None else data[start:start + limit]
        for i in range(0, len(body), 1 << 14):
            chunk = body[i:i + (1 << 14)]
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
            state.sent[name] += len(chunk)
            time.sleep(state.delay)
        if limit is not None:  # drop the connection with the response unfinished
            self.wfile.flush()
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: Served


class FileServer:
    """A real HTTP server on 127.0.0.1 (a free port) serving the files of ``folder`` by name; ``url`` is its base."""

    def __init__(self, folder: Path):
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.state = self.state = Served(folder)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
