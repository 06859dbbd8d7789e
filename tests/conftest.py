"""Shared fixtures: tiny ViTs (random init, no download), the command line (installed script and in process),
and the path of ../shared when CI has it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup must fail at once, never retry
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N runs N workers: one thread each (and in the processes they start), not N x the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
INSVP = Path(sys.executable).with_name("insvp")  # the console script that `pip install` made


def insvp(*args, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed ``insvp`` script as a user would (offline) and capture its output."""
    assert INSVP.is_file(), f"{INSVP} is missing: install the package first (the README's commands do)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([str(INSVP), *(str(a) for a in args)], capture_output=True, text=True, env=env,
                          timeout=timeout, **kwargs)


def one_line_error(text: str, code_seen: int, code: int, *needles: str) -> None:
    """An error as users should see it: the exit code, one line, no traceback, the expected words."""
    assert code_seen == code, text
    assert "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def cli(capsys):
    """The command line in this process: ``(exit code, stdout + stderr)`` of ``insvp ARGS``."""
    from insvp_cli.cli.app import run

    def invoke(*args) -> tuple[int, str]:
        capsys.readouterr()  # what the test printed before is not the command's output
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return invoke

# (name, timm kwargs): tiny ViTs of several widths, patch sizes and resolutions
TINY_VITS = {
    "p8_d48_32px": dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=2),
    "p4_d96_32px": dict(img_size=32, patch_size=4, embed_dim=96, depth=3, num_heads=2),
    "p16_d64_64px": dict(img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=2),
    "p14_d120_56px": dict(img_size=56, patch_size=14, embed_dim=120, depth=2, num_heads=3),
    "p32_d192_64px": dict(img_size=64, patch_size=32, embed_dim=192, depth=4, num_heads=3),
}


# (name, timm kwargs): tiny Swin Transformers; 40 px with window 6 pads the windows (20 and 10 are not multiples of 6)
TINY_SWINS = {
    "w4_d24_32px": dict(img_size=32, patch_size=2, embed_dim=24, depths=(2, 2), num_heads=(1, 2), window_size=4),
    "w6_d16_40px": dict(img_size=40, patch_size=2, embed_dim=16, depths=(1, 2), num_heads=(2, 2), window_size=6),
}


def _tiny_overrides(backbone: str, kwargs: dict, method: str) -> list[str]:
    """``--set`` overrides that select timm model ``backbone`` built with ``kwargs`` (random init)."""
    kw = dict(kwargs)
    img = kw.pop("img_size")
    extra = ", ".join(f"{k}: {list(v) if isinstance(v, tuple) else v}" for k, v in kw.items())
    return [
        f"method.name={method}",
        f"backbone.name={backbone}",
        "backbone.weights=none",
        f"backbone.img_size={img}",
        f"backbone.kwargs={{{extra}}}",
    ]


def tiny_swin_overrides(key: str = "w4_d24_32px", method: str = "insvp") -> list[str]:
    """``--set`` overrides that select a tiny random-init Swin Transformer."""
    return _tiny_overrides("swin_tiny_patch4_window7_224", TINY_SWINS[key], method)


def tiny_overrides(key: str = "p8_d48_32px", method: str = "insvp") -> list[str]:
    """``--set`` overrides that select a tiny random-init ViT."""
    return _tiny_overrides("vit_tiny_patch16_224", TINY_VITS[key], method)


def tiny_run(method: str = "insvp", epochs: int = 2, *extra: str, batch_size: int = 32, classes: str = "[0, 1, 2]",
             lr: float | None = 0.005, prompt_len: int = 2) -> list[str]:
    """``--set`` values of a tiny run on CPU: a tiny ViT (patch 8, 32 px) on digits ``classes``; ``lr=None`` leaves
    the learning rate to a sweep. InsVP gets ``prompt_len`` prompts, the other methods seed 0."""
    return [*tiny_overrides("p8_d48_32px", method), "data.name=digits", "data.num_workers=0",
            f"data.batch_size={batch_size}", f"data.classes={classes}", f"train.epochs={epochs}",
            *([f"train.lr={lr}"] if lr is not None else []), "train.device=cpu",
            f"method.prompt_len={prompt_len}" if method == "insvp" else "train.seed=0", *extra]


def tiny_model(method: str, *sets: str, vit: str = "p8_d48_32px", classes: int = 5, dataset: str | None = None):
    """A tiny random-init model of ``method`` with ``classes`` outputs (no data read). ``dataset``: its name only,
    with the method's needs bound to it (``cifar100`` gives TransHP its 20 superclasses)."""
    from insvp_cli.methods.build import build_model
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.resolve.needs import bind_requirements

    cfg = resolve_config(None, [*tiny_overrides(vit, method), *([f"data.name={dataset}"] if dataset else []), *sets])
    return build_model(bind_requirements(cfg) if dataset else cfg, classes)


def tiny_config(overrides: list[str]):
    """The resolved config of ``overrides`` with every method's data needs met: CIFAR-100 (named only, no files
    read) has a built-in coarse-label hierarchy for TransHP."""
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.resolve.needs import bind_requirements

    return bind_requirements(resolve_config(None, ["data.name=cifar100", *overrides]))


TINY_CLASSES = ["cat", "dog", "bird", "fish", "frog"]


def tiny_checkpoint(folder: Path, overrides: list[str], classes: list[str] = TINY_CLASSES) -> Path:
    """``folder/best.pt``: a tiny random-init model (:func:`tiny_config`) whose trainable weights are moved off their
    initialisation, so that zero-initialised parts (the adapters' up-projections) do not hide their whole path from a
    comparison."""
    from insvp_cli.methods.build import build_model
    from insvp_cli.runs.checkpoint import Checkpoint

    cfg = tiny_config(overrides)
    model = build_model(cfg, len(classes))
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    Checkpoint.of(model, cfg, list(classes), {}, 0).save(folder / "best.pt")
    return folder / "best.pt"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: these tests read the shared fixtures beside the checkout (CI has them)")
    return SHARED


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@dataclass(frozen=True)
class DigitRun:
    """A trained run on an ``imagefolder`` of real MNIST digits, and the folder.

    Attributes:
        checkpoint: the run's ``best.pt``.
        root: ``train/<digit>/``, ``test/<digit>/`` (10 PNGs per digit) and, directly in ``test/``, two files
            that are not readable images (``broken.png``, truncated; ``notes.txt``), which the dataset ignores.
    """

    checkpoint: Path
    root: Path

    @property
    def test_images(self) -> list[Path]:
        return sorted(self.root.glob("test/*/*.png"))


@pytest.fixture(scope="session")
def digit_run(tmp_path_factory) -> DigitRun:
    """The quickstart recipe (the shipped backbone, InsVP ``paper``) trained for 1 epoch on 100 digits 5-9."""
    from insvp_cli.data.splits import load_splits
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.train.loop import fit

    tmp = tmp_path_factory.mktemp("digits")
    root = tmp / "digits"
    digits = load_splits(resolve_config(None, ["data.name=mnist5k", "data.classes=[5, 6, 7, 8, 9]"]).data)
    for split, source, per_class in (("train", digits.train, 20), ("test", digits.test, 10)):
        for label, name in enumerate(digits.classes):
            (root / split / name).mkdir(parents=True)
            for n, i in enumerate(np.flatnonzero(source.labels == label)[:per_class]):
                source[int(i)][0].save(root / split / name / f"{name}-{n:02d}.png")
    first = next((root / "test" / "5").iterdir()).read_bytes()
    (root / "test" / "broken.png").write_bytes(first[: len(first) // 2])
    (root / "test" / "notes.txt").write_text("not an image\n")
    cfg = resolve_config(REPO / "recipes" / "quickstart.yaml", [
        "data.name=imagefolder", f"data.root={root}", "data.classes=null", "train.epochs=1"])
    fit(cfg, tmp / "run")
    return DigitRun(tmp / "run" / "best.pt", root)


@dataclass(frozen=True)
class ServedRuns:
    """Tiny trained runs for ``insvp serve`` and images to send them.

    Attributes:
        runs: task name -> run folder: ``insvp-a``, ``linear-a`` and ``insvp-b`` on one tiny ViT (two methods, three
            tasks sharing one backbone), ``vpt-c`` on another.
        images: PNG digits of scikit-learn's test split (8x8) and one 45x37 RGB image that the transforms resize.
    """

    runs: dict[str, Path]
    images: list[Path]


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory) -> ServedRuns:
    """Four runs of one epoch on a few hundred of scikit-learn's digits (a few seconds each) and eight images."""
    from insvp_cli.data.splits import load_splits
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.train.loop import fit

    root = tmp_path_factory.mktemp("served")
    plans = {"insvp-a": ("insvp", "[0, 1, 2]", "p8_d48_32px"), "linear-a": ("linear", "[3, 4, 5, 6]", "p8_d48_32px"),
             "insvp-b": ("insvp", "[7, 8, 9]", "p8_d48_32px"), "vpt-c": ("vpt", "[0, 1, 2, 3]", "p4_d96_32px")}
    runs = {}
    for name, (method, classes, vit) in plans.items():
        runs[name] = root / name
        fit(resolve_config(None, [*tiny_run(method, 1, classes=classes), *tiny_overrides(vit, method)]), runs[name])
    digits = load_splits(resolve_config(None, ["data.name=digits"]).data)
    images = []
    for i in range(7):
        image, label = digits.test[i]
        images.append(root / f"digit-{i}-{digits.classes[label]}.png")
        image.save(images[-1])
    images.append(root / "colour.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)).save(images[-1])
    return ServedRuns(runs, images)
