"""The real source table of ``insvp data prepare`` is complete and agrees with its published sources; extraction
cannot escape the dataset folder (tar and zip); few-shot splits are what NOAH's protocol asks."""

from __future__ import annotations

import inspect
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd

from insvp_cli.config.schema import DataConfig
from insvp_cli.data.fewshot import few_shot
from insvp_cli.data.prepare.extract import UnsafeArchive, extract
from insvp_cli.data.prepare.sources import SOURCES, expand
from insvp_cli.data.prepare.vtab import TEST_SIZES
from insvp_cli.data.splits import load_splits
from insvp_cli.data.vtab import VTAB_TASKS
from insvp_cli.experiments.reproduce.paper_tables import PAPER_TABLES
from insvp_cli.experiments.reproduce.tables import TABLES
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.resolve.recipes import shipped_recipes


def test_every_dataset_of_a_recipe_or_a_table_has_a_complete_source():
    folders = {}  # data folder under data/ -> the data.name that reads it
    for recipe in shipped_recipes():
        data = resolve_config(recipe).data
        if data.root is not None:
            folders[str(Path(data.root).relative_to("data"))] = data.name
    for table in PAPER_TABLES:
        for run in TABLES.get(table).runs():
            folders.setdefault(run.data_folder, resolve_config(run.recipe).data.name)
    by_folder = {SOURCES.get(n).folder: SOURCES.get(n) for n in SOURCES.names()}
    assert set(folders) <= set(by_folder), set(folders) - set(by_folder)
    for folder, dataset in folders.items():
        assert by_folder[folder].dataset == dataset
    for source in map(SOURCES.get, SOURCES.names()):
        assert source.homepage.startswith("http") and source.licence and source.files
        for remote in source.files:
            assert remote.urls or source.manual, remote.name  # a URL, or how to get it by hand
            assert all(u.startswith(("http://", "https://")) for u in remote.urls)
            assert remote.checksum_from, remote.name
            if remote.digest is None:  # said so, and what verifies it instead
                assert "no published checksum" in remote.checksum_from and "verified by" in remote.checksum_from
            if remote.size is None:
                assert "not published" in remote.checksum_from or "no published checksum" in remote.checksum_from
            else:
                assert remote.size > 0


def test_the_groups_are_the_papers_benchmarks():
    assert [s.name for s in expand(["hta"])] == sorted(
        ["dtd", "cub", "nabirds", "stanford_dogs", "flowers102", "food101", "cifar100", "cifar10", "gtsrb", "svhn"])
    assert [s.name for s in expand(["fgvc"])] == ["cub", "nabirds", "oxford_flowers", "stanford_cars", "stanford_dogs"]
    assert [s.name for s in expand(["vtab"])] == sorted(f"vtab/{t}" for t in VTAB_TASKS)
    assert len(expand(["all"])) == 10 + 2 + 19 and set(TEST_SIZES) == set(VTAB_TASKS)


def test_md5s_are_the_ones_torchvision_pins():
    """Every MD5 said to come from a torchvision dataset class is in that class's source, beside the file's URL."""
    checked = 0
    for source in map(SOURCES.get, SOURCES.names()):
        for remote in source.files:
            if remote.digest and remote.digest.startswith("md5:"):
                cls = remote.checksum_from.removeprefix("torchvision.datasets.").split(" ")[0]
                code = inspect.getsource(getattr(tvd, cls))
                assert remote.digest.removeprefix("md5:") in code and remote.name in code, remote.name
                checked += 1
    assert checked == 5  # CIFAR-10, CIFAR-100, GTSRB's three


def _tar(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("bad", [
    _member("/etc/evil"), _member("a/../../evil"), _member("a/link", tarfile.SYMTYPE, "../../evil"),
    _member("a/abs", tarfile.SYMTYPE, "/etc/passwd"), _member("a/hard", tarfile.LNKTYPE, "../evil"),
    _member("a/fifo", tarfile.FIFOTYPE),
])
def test_a_tar_that_would_escape_is_refused(bad, tmp_path):
    archive = _tar(tmp_path / "evil.tar", _member("a/fine.txt"), bad)
    with pytest.raises(UnsafeArchive, match="the archive is refused"):
        extract(archive, tmp_path / "out" / "dataset")
    assert not (tmp_path / "evil").exists() and not list(tmp_path.rglob("evil"))


def _zip_with_symlink(path: Path, name: str, target: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/fine.txt", "x")
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16)  # a symbolic link, as Info-ZIP stores them
        zf.writestr(info, target)
    return path


@pytest.mark.parametrize("name, target", [("../evil", None), ("/tmp/evil", None), ("a/link", "../../evil")])
def test_a_zip_that_would_escape_is_refused(name, target, tmp_path):
    if target is None:
        archive = tmp_path / "evil.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("a/fine.txt", "x")
            zf.writestr(zipfile.ZipInfo(name), "x")  # ZipInfo keeps the name as given
    else:
        archive = _zip_with_symlink(tmp_path / "evil.zip", name, target)
    with pytest.raises(UnsafeArchive, match="the archive is refused"):
        extract(archive, tmp_path / "out" / "dataset")
    assert not list(tmp_path.rglob("evil")) and not Path("/tmp/evil").exists()


def test_links_inside_and_a_prefix_are_extracted(tmp_path):
    archive = _tar(tmp_path / "ok.tar", _member("top/a/file.txt"), _member("top/a/link", tarfile.SYMTYPE, "file.txt"),
                   _member("top/b/hard", tarfile.LNKTYPE, "top/a/file.txt"), _member("other/skipped.txt"))
    assert extract(archive, tmp_path / "out", strip="top/") == 3
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if not p.is_dir()) == [
        "a/file.txt", "a/link", "b/hard"]
    assert (tmp_path / "out" / "a" / "link").read_text() == "x"


def test_few_shot_keeps_k_per_class_deterministically():
    labels = np.repeat(np.arange(4), [10, 3, 7, 1])
    four = few_shot(labels, 4, seed=0)
    assert np.bincount(labels[four]).tolist() == [4, 3, 4, 1]  # all of a class with fewer
    assert np.array_equal(four, few_shot(labels, 4, seed=0)) and not np.array_equal(four, few_shot(labels, 4, seed=1))
    assert set(few_shot(labels, 2, seed=0)) <= set(four)  # a larger K keeps the smaller K's images


def test_shots_shrink_the_training_split_only():
    full = load_splits(DataConfig(name="mnist5k", classes=[5, 6, 7]))
    few = load_splits(DataConfig(name="mnist5k", classes=[5, 6, 7], shots=2, shot_seed=3))
    assert np.bincount(few.train.labels).tolist() == [2, 2, 2]
    assert few.val.files() == full.val.files() and np.array_equal(few.val.labels, full.val.labels)
    assert len(few.test) == len(full.test)
    whole = load_splits(DataConfig(name="mnist5k", shots=2, shot_seed=3))  # a class's pick ignores the subset
    fives = whole.train.labels == 5
    assert np.array_equal(whole.train.select(np.flatnonzero(fives))._images[whole.train.indices[fives]],
                          few.train._images[few.train.indices[few.train.labels == 0]])


def test_shots_out_of_range_is_a_one_line_usage_error(cli):
    code, out = cli("data", "check", "mnist5k", "--set", "data.shots=0")
    assert code == 2 and "data.shots: 0 is not in [1, 2147483647]" in out


def test_docs_list_every_file_with_its_size():
    from insvp_cli.cli.data import _size

    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    for source in map(SOURCES.get, SOURCES.names()):
        assert f"`{source.folder}/`" in text or source.name.startswith("vtab/")
        for remote in source.files:
            size = "unknown" if remote.size is None else _size(remote.size)
            assert f"`{remote.name}` {size}" in text, remote.name


def test_reproduce_says_how_to_fetch_missing_data(tmp_path):
    from insvp_cli.experiments.reproduce.runner import header_lines, plan_table

    lines = header_lines(plan_table("table5", tmp_path, tmp_path / "runs"))
    assert f"  insvp data prepare cifar100 cub nabirds svhn --root {tmp_path} fetches them" in lines
