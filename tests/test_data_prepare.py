"""``insvp data prepare`` through the installed script, against a real HTTP server on 127.0.0.1 serving archives in
each source's real format: one dataset of each kind becomes a folder that ``insvp data check`` passes and that trains
one tiny epoch; ``--from`` prepares with no server at all; ``--dry-run`` lists the files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from archives import FileServer, dtd_archive, flowers_archives, pin, vtab_archive
from conftest import insvp, one_line_error, tiny_overrides


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    """The archives of dtd, oxford_flowers and vtab/kitti, with their pinned sums."""
    folder = tmp_path_factory.mktemp("served")
    files = [dtd_archive(folder), *flowers_archives(folder), vtab_archive(folder)]
    pin(files, folder.parent / "sums.yaml")
    return folder


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def train_one_epoch(tmp_path: Path, *sets: str) -> None:
    """One tiny epoch on two classes of the prepared folder, through the installed script."""
    sets = (*tiny_overrides(), "data.num_workers=0", "train.epochs=1", "train.device=cpu", "data.batch_size=128",
            "data.classes=[0, 1]", *sets)
    proc = insvp("train", *(a for s in sets for a in ("--set", s)), "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test_acc"] >= 0


@pytest.mark.parametrize("name, dataset, folder, extra", [
    ("dtd", "dtd", "dtd", ()),  # a torchvision dataset
    ("oxford_flowers", "oxford_flowers", "oxford_flowers", ()),  # an FGVC dataset read with the shipped splits
    ("vtab/kitti", "vtab", "vtab-1k/kitti", ("data.resize=direct",)),  # a VTAB-1k task from the image-folder release
])
def test_prepare_then_check_then_train(name, dataset, folder, extra, served, tmp_path):
    root = tmp_path / "data"
    with FileServer(served) as server:
        proc = insvp("data", "prepare", name, "--root", root, "--mirror", server.url,
                     "--sources", served.parent / "sums.yaml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"{name}: ready in {root / folder}" in proc.stdout
        again = insvp("data", "prepare", name, "--root", root, "--mirror", server.url)  # done: nothing fetched
        assert again.returncode == 0 and "already prepared" in again.stdout
        assert sum(server.state.sent.values()) == sum((served / f).stat().st_size for f in server.state.sent)
    check = insvp("data", "check", dataset, "--root", root / folder)
    assert check.returncode == 0 and "is ready" in check.stdout, check.stdout + check.stderr
    assert not list(root.glob(f"**/.*{Path(folder).name}.partial-*"))
    if name == "vtab/kitti":  # only the task's own folder came out of the release
        assert sorted(p.name for p in (root / "vtab-1k").iterdir()) == ["kitti"]
    train_one_epoch(tmp_path, f"data.name={dataset}", f"data.root={root / folder}", *extra)


def test_from_folder_prepares_without_network(served, tmp_path):
    """Hand-placed files are found by name and verified; the mirror is a port where nothing listens."""
    root = tmp_path / "data"
    proc = insvp("data", "prepare", "dtd", "oxford_flowers", "--root", root, "--from", served,
                 "--sources", served.parent / "sums.yaml", "--mirror", closed_port_url(), "--retries", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"dtd-r1.0.1.tar.gz from {served}" in proc.stdout
    assert (root / "dtd" / "dtd" / "dtd" / "labels" / "train1.txt").is_file()  # torchvision's <root>/dtd/dtd/...
    assert (root / "oxford_flowers" / "setid.mat").is_file()
    assert not (root / "downloads" / "dtd-r1.0.1.tar.gz").exists()  # used where it lies, not copied


def test_dry_run_lists_files_sizes_and_the_total(tmp_path):
    proc = insvp("data", "prepare", "hta", "--root", tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    for text in ("cifar-10-python.tar.gz", "CUB_200_2011.tgz", "1.2 GB", "food-101.tar.gz", "5.0 GB"):
        assert text in proc.stdout
    # 15 files, NABirds' by hand; the unknown sizes: CIFAR-100's and GTSRB's three (the checksums are published)
    assert "to download: 14 files, 8.3 GB plus 4 of unknown size" in proc.stdout and "by hand: accept" in proc.stdout
    assert not any(tmp_path.iterdir())  # nothing written


def test_usage_errors_before_any_work(tmp_path):
    proc = insvp("data", "prepare", "cifar11", "--root", tmp_path)
    one_line_error(proc.stderr, proc.returncode, 2, "unknown dataset 'cifar11'", "hta", "vtab/kitti")
    proc = insvp("data", "prepare", "cifar10", "--root", tmp_path, "--from", tmp_path / "nowhere")
    one_line_error(proc.stderr, proc.returncode, 2, "--from:", "is not a folder")
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "mine.txt").write_text("the user's own file\n")
    proc = insvp("data", "prepare", "cifar10", "--root", tmp_path)
    one_line_error(proc.stderr, proc.returncode, 2, "already holds files", "insvp data check cifar10")
    (tmp_path / "sums.yaml").write_text("cifar-10-python.tar.gz: {size: 3}\n")
    proc = insvp("data", "prepare", "cifar10", "--root", tmp_path, "--sources", tmp_path / "sums.yaml")
    one_line_error(proc.stderr, proc.returncode, 2, "needs one of sha256 or md5")
    assert (tmp_path / "cifar10" / "mine.txt").is_file() and not (tmp_path / "downloads").exists()
