"""Faults of ``insvp data prepare``, each through the installed script against a real HTTP server on 127.0.0.1: a
connection cut half-way, a wrong checksum, a malicious archive, no network, Ctrl-C during the download and during
the extraction, workers sharing a root. Nothing half-done may be left where a dataset folder belongs."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from archives import FileServer, dtd_archive, flowers_archives, pin
from conftest import INSVP, insvp, one_line_error
from test_data_prepare import closed_port_url

from insvp_cli.data.prepare.download import CHUNK

DTD = "dtd-r1.0.1.tar.gz"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    """DTD's archive padded to 3 MB (long enough to interrupt) and Oxford Flowers' files, with pinned sums."""
    folder = tmp_path_factory.mktemp("served")
    pin([dtd_archive(folder, padding=3_000_000), *flowers_archives(folder)], folder / "sums.yaml")
    return folder


def prepare(root: Path, *args, server: FileServer | None = None, sums: Path | None = None, **popen):
    """``insvp data prepare ARGS --root ROOT``, the server as mirror, the pinned sums (a Popen given ``popen``)."""
    argv = ["data", "prepare", *args, "--root", root, *(["--mirror", server.url] if server else []),
            *(["--sources", sums] if sums else [])]
    if not popen:
        return insvp(*argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.Popen([str(INSVP), *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **popen)


def nothing_partial(root: Path, folder: str) -> None:
    assert not (root / folder).exists()
    assert not list(root.glob(f".{folder}.partial-*"))


def test_a_cut_connection_resumes_without_a_second_download(served, tmp_path):
    size = (served / DTD).stat().st_size
    with FileServer(served) as server:
        server.state.cut[DTD] = size // 2
        proc = prepare(tmp_path, "dtd", server=server, sums=served / "sums.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # half, then the rest: what is fetched twice is at most the chunk in flight when the connection dropped
    (first, whole), (second, resumed) = server.state.ranges
    start = int(resumed.removeprefix("bytes=").removesuffix("-"))
    assert first == second == DTD and whole is None and size // 2 - CHUNK <= start <= size // 2
    assert server.state.sent[DTD] == size + size // 2 - start <= size + CHUNK


def test_a_wrong_checksum_keeps_nothing(served, tmp_path):
    with FileServer(served) as server:  # the real table's sha256, a different file
        proc = prepare(tmp_path, "dtd", server=server)
    one_line_error(proc.stderr, proc.returncode, 1, "dtd: checksum mismatch: dtd-r1.0.1.tar.gz: sha256 ",
                   "expected e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205", "deleted")
    nothing_partial(tmp_path, "dtd")
    assert not [p.name for p in (tmp_path / "downloads").iterdir() if not p.name.startswith(".")]


def test_a_malicious_archive_is_refused(served, tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / DTD, "w:gz") as tar:
        for name in ("dtd/labels/train1.txt", "../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"hi\n"))
    root = tmp_path / "data"
    with FileServer(evil) as server:
        proc = prepare(root, "dtd", server=server, sums=pin([evil / DTD], tmp_path / "sums.yaml"))
    one_line_error(proc.stderr, proc.returncode, 1, "member '../escaped.txt' would be written outside", "refused")
    nothing_partial(root, "dtd")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_no_network_names_from(tmp_path):
    proc = insvp("data", "prepare", "dtd", "--root", tmp_path, "--mirror", closed_port_url(), "--retries", "1")
    one_line_error(proc.stderr, proc.returncode, 1, "cannot download dtd-r1.0.1.tar.gz", "--from DIR")
    nothing_partial(tmp_path, "dtd")


def interrupt_when(proc: subprocess.Popen, ready, what: str) -> tuple[int, str]:
    """Send Ctrl-C (SIGINT) to ``proc`` as soon as ``ready()`` holds; its exit code and stderr."""
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, f"finished before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never reached {what}"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_ctrl_c_during_the_download_then_the_same_command_finishes(served, tmp_path):
    size = (served / DTD).stat().st_size
    part = tmp_path / "downloads" / f"{DTD}.part"
    with FileServer(served) as server:
        server.state.delay = 0.01  # about 2 s for the whole file
        proc = prepare(tmp_path, "dtd", server=server, sums=served / "sums.yaml", cwd=tmp_path)
        code, err = interrupt_when(proc, lambda: part.is_file() and part.stat().st_size > 0, "the download")
        one_line_error(err, code, 130, "interrupted; the same command continues")
        nothing_partial(tmp_path, "dtd")
        kept = part.stat().st_size
        assert 0 < kept < size
        server.state.delay = 0
        again = prepare(tmp_path, "dtd", server=server, sums=served / "sums.yaml")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "dtd" / ".insvp-prepared.json").is_file()
    assert server.state.sent[DTD] <= size + 4 * CHUNK  # the rest only (plus what was in flight at Ctrl-C)
    assert server.state.ranges[-1] == (DTD, f"bytes={kept}-")


def test_ctrl_c_during_the_extraction_leaves_no_dataset_folder(served, tmp_path):
    proc = prepare(tmp_path, "oxford_flowers", "--from", served, sums=served / "sums.yaml", cwd=tmp_path)
    code, err = interrupt_when(proc, lambda: any(tmp_path.glob(".oxford_flowers.partial-*/jpg")), "the extraction")
    one_line_error(err, code, 130, "interrupted")
    nothing_partial(tmp_path, "oxford_flowers")
    again = prepare(tmp_path, "oxford_flowers", "--from", served, sums=served / "sums.yaml")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(list((tmp_path / "oxford_flowers" / "jpg").iterdir())) == 8189


def test_workers_sharing_a_root_download_once(served, tmp_path):
    """Two processes prepare the same dataset in one root at once: one downloads and builds, the other waits."""
    with FileServer(served) as server:
        server.state.delay = 0.02  # about 4 s: the second starts while the first downloads
        procs = [prepare(tmp_path, "dtd", server=server, sums=served / "sums.yaml", cwd=tmp_path) for _ in range(2)]
        outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert server.state.sent[DTD] == (served / DTD).stat().st_size
    assert sum("dtd: ready in" in out for out, _ in outputs) == 1
    assert sum("prepared by another process" in out or "already prepared" in out for out, _ in outputs) == 1
