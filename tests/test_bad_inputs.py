"""Every bad input answered in one honest line, before any work (issue #30), through the installed ``insvp``.

One table of bad inputs, by kind: values out of their range (config keys and options), output paths that cannot be
written, damaged run files, YAML that is invalid or holds a key twice, ``--set`` values a command owns, faults of
the environment (closed stdout, a full disk), and each command's own usage errors. Every case runs the installed
script in a fresh folder of its own and checks the exit code (2: usage, 1: the work failed), exactly one line on
stderr without a traceback or a library warning, the offending key or path named in it, and that nothing was
written (every file and folder, with its contents, compared before and after: the case's own folder and the shared
fixtures). The cases run four at a time; most fail before torch is imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import INSVP, insvp, tiny_run
from tests.faults import fault_env

Q = ("train", "--recipe", "quickstart", "--set", "train.epochs=1")  # the shorthand


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        id: what it is.
        args: the command line after ``insvp``; ``{fx}`` is the shared fixture folder, ``{run}`` a trained run,
            ``{here}`` the case's own folder (also the working directory).
        code: the exit code expected.
        needles: words the one line must hold (the key, option or path at fault).
        setup: makes the case's own files in ``{here}`` before it runs.
        shell: how stdout is wired: ``closed`` (``>&-``), ``full`` (``> /dev/full``) or ``None``.
        env: extra environment variables.
        writes: the work starts, so files may be written and progress shown: then only leftover temp files are
            checked, and the error is the last line.
    """

    id: str
    args: tuple[str, ...]
    code: int
    needles: tuple[str, ...]
    setup: Callable[[Path, Path], None] | None = None
    shell: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    writes: bool = False


def copy_run(damage: Callable[[Path], None] | None = None) -> Callable[[Path, Path], None]:
    """A setup that copies the trained run to ``{here}/copy`` and damages the copy."""
    def setup(here: Path, run: Path) -> None:
        shutil.copytree(run, here / "copy")
        if damage is not None:
            damage(here / "copy")
    return setup


def folders(*paths: str) -> Callable[[Path, Path], None]:
    """A setup that makes the folders ``paths`` in ``{here}``."""
    def setup(here: Path, run: Path) -> None:
        for path in paths:
            (here / path).mkdir(parents=True)
    return setup


def files(*paths: str) -> Callable[[Path, Path], None]:
    """A setup that writes a small text file at each of ``paths`` in ``{here}``."""
    def setup(here: Path, run: Path) -> None:
        for path in paths:
            (here / path).parent.mkdir(parents=True, exist_ok=True)
            (here / path).write_text("mine\n")
    return setup


def _write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return damage


def _zero_resume(run: Path) -> None:
    (run / "summary.json").unlink()
    (run / "resume.pt").write_bytes(b"")


def _sets(*values: str) -> tuple[str, ...]:
    return tuple(x for v in values for x in ("--set", v))


CKPT = "{run}/best.pt"
IMG = "{fx}/imgs/a.png"

RANGES = [
    Case("batch-size-huge", (*Q, "--set", "data.batch_size=99999999999999999999"), 2, ("data.batch_size", "65536")),
    Case("seed-overflow", (*Q, "--set", "train.seed=99999999999999999999999"), 2, ("train.seed", "4294967295")),
    Case("seed-negative", (*Q, "--set", "train.seed=-1"), 2, ("train.seed",)),
    Case("prompt-len-huge", (*Q, "--set", "method.prompt_len=100000"), 2, ("method.prompt_len", "1024")),
    Case("data-seed-33-bits", (*Q, "--set", "data.seed=4294967296"), 2, ("data.seed",)),
    Case("shot-seed-negative", (*Q, "--set", "data.shot_seed=-1"), 2, ("data.shot_seed",)),
    Case("workers-huge", (*Q, "--set", "data.num_workers=100000"), 2, ("data.num_workers",)),
    Case("epochs-zero", (*Q, "--set", "train.epochs=0"), 2, ("train.epochs",)),
    Case("epochs-huge", (*Q, "--set", "train.epochs=1000000"), 2, ("train.epochs", "100000")),
    Case("lr-huge", (*Q, "--set", "train.lr=1e9"), 2, ("train.lr",)),
    Case("lr-zero", (*Q, "--set", "train.lr=0"), 2, ("train.lr",)),
    Case("lr-infinite", (*Q, "--set", "train.lr=.inf"), 2, ("train.lr", "finite")),
    Case("weight-decay-negative", (*Q, "--set", "train.weight_decay=-1"), 2, ("train.weight_decay",)),
    Case("mixup-huge", (*Q, "--set", "train.mixup=1e300"), 2, ("train.mixup",)),
    Case("momentum-one", (*Q, "--set", "train.momentum=1"), 2, ("train.momentum",)),
    Case("grad-clip-zero", (*Q, "--set", "train.grad_clip=0"), 2, ("train.grad_clip",)),
    Case("eval-every-zero", (*Q, "--set", "train.eval_every=0"), 2, ("train.eval_every",)),
    Case("image-size-huge", (*Q, "--set", "data.image_size=100000"), 2, ("data.image_size",)),
    Case("img-size-zero", (*Q, "--set", "backbone.img_size=0"), 2, ("backbone.img_size",)),
    Case("class-id-negative", (*Q, "--set", "data.classes=[5, -1]"), 2, ("data.classes[1]",)),
    Case("shots-zero", (*Q, "--set", "data.shots=0"), 2, ("data.shots",)),
    Case("val-fraction-above-one", (*Q, "--set", "data.val_fraction=1.5"), 2, ("data.val_fraction",)),
    Case("vpt-tokens-huge", (*Q, *_sets("method.name=vpt", "method.num_tokens=5000")), 2, ("method.num_tokens",)),
    Case("e2vpt-tokens-zero", (*Q, *_sets("method.name=e2vpt", "method.visual_tokens=0")), 2,
         ("method.visual_tokens",)),
    Case("mlp-layers-huge", (*Q, *_sets("method.name=mlp", "method.layers=100000")), 2, ("method.layers",)),
    Case("yoo-gate-huge", (*Q, *_sets("method.name=yoo", "method.gate_init=1e9")), 2, ("method.gate_init",)),
    Case("partial-blocks-zero", (*Q, *_sets("method.name=partial", "method.blocks=0")), 2, ("method.blocks",)),
    Case("insvp-weight-negative", (*Q, "--set", "method.global_weight=-1"), 2, ("method.global_weight",)),
    Case("insvp-kernel-huge", (*Q, "--set", "method.specific_kernels=[7, 9, 999]"), 2,
         ("method.specific_kernels[2]",)),
    Case("backbone-depth-huge", (*Q, "--set", "backbone.kwargs={depth: 99999999}"), 2, ("backbone.kwargs.depth",)),
    Case("backbone-width-negative", (*Q, "--set", "backbone.kwargs.embed_dim=-5"), 2, ("backbone.kwargs.embed_dim",)),
    # sizes that multiply: estimated before anything is built
    Case("backbone-weighs-terabytes", (*Q, "--set", "backbone.kwargs={patch_size: 4, embed_dim: 60000, depth: 100, "
                                       "num_heads: 3}", "--out", "{here}/run"), 2, ("backbone.kwargs", "TB")),
    Case("batch-needs-terabytes", (*Q, *_sets("data.batch_size=65536", "backbone.img_size=512"), "--out",
                                   "{here}/run"), 2, ("data.batch_size=65536", "TB")),
    # options: click's range types, one line
    Case("predict-batch-huge", ("predict", CKPT, IMG, "--batch-size", "99999999999999999999"), 2, ("--batch-size",)),
    Case("predict-top-k-zero", ("predict", CKPT, IMG, "--top-k", "0"), 2, ("--top-k",)),
    Case("predict-workers-negative", ("predict", CKPT, IMG, "--workers", "-1"), 2, ("--workers",)),
    Case("predict-workers-huge", ("predict", CKPT, IMG, "--workers", "100000"), 2, ("--workers",)),
    Case("tsne-seed-negative", ("tsne", CKPT, "--seed", "-1"), 2, ("--seed",)),
    Case("tsne-seed-huge", ("tsne", CKPT, "--seed", "99999999999999999999"), 2, ("--seed",)),
    Case("tsne-samples-negative", ("tsne", CKPT, "--max-samples", "-1"), 2, ("--max-samples",)),
    Case("params-classes-zero", ("params", "--num-classes", "0"), 2, ("--num-classes",)),
    Case("compare-seeds-zero", ("compare", "--recipe", "quickstart", "--seeds", "0"), 2, ("--seeds",)),
    Case("compare-seeds-huge", ("compare", "--recipe", "quickstart", "--seeds", "100000"), 2, ("--seeds",)),
    Case("sweep-seeds-zero", ("sweep", "--out", "s", "--seeds", "0"), 2, ("--seeds",)),
    Case("sweep-trials-zero", ("sweep", "--out", "s", "--sampler", "tpe", "--trials", "0"), 2, ("--trials",)),
    Case("reproduce-seeds-zero", ("reproduce", "table1", "--data-root", "d", "--seeds", "0"), 2, ("--seeds",)),
    Case("prepare-retries-negative", ("data", "prepare", "cifar10", "--retries", "-1"), 2, ("--retries",)),
    Case("export-format-unknown", ("export", CKPT, "--format", "tflite"), 2, ("--format",)),
    Case("evaluate-split-unknown", ("evaluate", CKPT, "--split", "train"), 2, ("--split",)),
]

OUTPUTS = [
    Case("predict-out-existing-folder", ("predict", CKPT, IMG, "--out", "outdir.csv"), 2, ("--out outdir.csv",
                                                                                             "is a folder"),
         setup=folders("outdir.csv")),
    Case("predict-out-txt", ("predict", CKPT, IMG, "--out", "x.txt"), 2, ("--out x.txt", ".csv or .jsonl")),
    Case("predict-out-empty", ("predict", CKPT, IMG, "--out", ""), 2, ("--out ''",)),
    Case("predict-out-under-a-file", ("predict", CKPT, IMG, "--out", "{fx}/a_file/sub.csv"), 2,
         ("a_file/sub.csv", "is a file, not a folder")),
    Case("predict-out-unwritable", ("predict", CKPT, IMG, "--out", "/proc/x.csv"), 2, ("/proc/x.csv",
                                                                                       "cannot write into /proc")),
    Case("predict-out-device", ("predict", CKPT, IMG, "--out", "/dev/null"), 2, ("--out /dev/null",)),
    Case("export-out-a-file", ("export", CKPT, "--out", "{fx}/a_file"), 2, ("a_file", "is a file")),
    Case("export-out-impossible", ("export", CKPT, "--out", "/dev/null/x"), 2, ("/dev/null/x",)),
    Case("export-out-unwritable", ("export", CKPT, "--out", "/proc/export"), 2, ("/proc/export",)),
    Case("plot-out-txt", ("plot", "{run}", "--out", "x.txt"), 2, ("--out x.txt", ".png")),
    Case("plot-out-folder", ("plot", "{run}", "--out", "some_folder"), 2, ("some_folder", "is a folder"),
         setup=folders("some_folder")),
    Case("plot-out-empty", ("plot", "{run}", "--out", ""), 2, ("--out ''",)),
    Case("plot-out-unwritable", ("plot", "{run}", "--out", "/proc/curves.png"), 2, ("/proc/curves.png",)),
    Case("params-plot-out-jpg", ("params", "--plot", "{fx}", "--out", "x.jpg"), 2, ("--out x.jpg",)),
    Case("gradcam-out-a-file", ("gradcam", CKPT, IMG, "--out", "{fx}/a_file"), 2, ("a_file",)),
    Case("tsne-out-a-file", ("tsne", CKPT, "--out", "{fx}/a_file"), 2, ("a_file",)),
    Case("compare-out-a-file", ("compare", "--recipe", "quickstart", "--out", "{fx}/a_file"), 2, ("a_file",)),
    Case("quickstart-out-a-file", ("quickstart", "--out", "{fx}/a_file"), 2, ("a_file",)),
    Case("sweep-out-a-file", ("sweep", "--out", "{fx}/a_file"), 2, ("a_file",)),
    Case("convert-out-a-file", ("convert-official", "{fx}/a_file", "--recipe", "quickstart", "--out",
                                "{fx}/a_file/x"), 2, ("a_file",)),
    Case("prepare-root-a-file", ("data", "prepare", "cifar10", "--root", "{fx}/a_file"), 2, ("--root", "a_file")),
    Case("train-out-under-a-file", (*Q, "--out", "{fx}/a_file/sub"), 2, ("a_file/sub", "is a file, not a folder")),
    Case("train-out-a-file", (*Q, "--out", "{fx}/a_file"), 2, ("a_file", "is a file")),
    Case("train-out-unwritable", (*Q, "--out", "/proc/run"), 2, ("/proc/run",)),
    Case("train-out-empty", (*Q, "--out", ""), 2, ("--out ''",)),
    Case("train-out-not-empty", (*Q, "--out", "mine"), 2, ("--out mine", "notes.txt"), setup=files("mine/notes.txt")),
]

RUN_FILES = [
    Case("evaluate-zero-byte-checkpoint", ("evaluate", "{fx}/empty.pt"), 2, ("empty.pt",)),
    Case("evaluate-junk-checkpoint", ("evaluate", "{fx}/junk.pt"), 2, ("junk.pt", "not a readable")),
    Case("evaluate-dev-null", ("evaluate", "/dev/null"), 2, ("/dev/null", "not a regular file")),
    Case("evaluate-missing", ("evaluate", "{fx}/missing.pt"), 2, ("missing.pt", "does not exist")),
    Case("resume-zero-byte-resume-pt", ("train", "--resume", "copy"), 2, ("resume.pt", "empty"),
         setup=copy_run(_zero_resume)),
    Case("resume-config-not-yaml", ("train", "--resume", "copy"), 2, ("copy/config.yaml:2:",),
         setup=copy_run(_write("config.yaml", "backbone: {name: x\ndata: [\n"))),
    Case("resume-config-duplicate-key", ("train", "--resume", "copy"), 2, ("copy/config.yaml:2:1", "duplicate key"),
         setup=copy_run(_write("config.yaml", "output_dir: runs\noutput_dir: other\n"))),
    Case("resume-config-not-utf8", ("train", "--resume", "copy"), 2, ("config.yaml", "UTF-8"),
         setup=copy_run(_write("config.yaml", b"\xff\xfe\x00"))),
    Case("resume-finished-other-method", ("train", "--resume", "copy", "--set", "method.name=linear"), 2,
         ("method.name",), setup=copy_run()),
    Case("resume-finished-without-more-epochs", ("train", "--resume", "copy"), 2, ("train.epochs",),
         setup=copy_run()),
    Case("resume-finished-other-batch", ("train", "--resume", "copy", "--set", "data.batch_size=7"), 2,
         ("data.batch_size",), setup=copy_run()),
    Case("resume-a-file", ("train", "--resume", "{fx}/a_file"), 2, ("a_file", "not a run folder")),
    Case("resume-with-recipe", ("train", "--resume", "{run}", "--recipe", "quickstart"), 2, ("--recipe",)),
    Case("plot-not-a-run", ("plot", "{fx}/imgs"), 2, ("imgs", "not a run folder")),
    Case("plot-no-epoch", ("plot", "copy", "--out", "c.png"), 2, ("copy", "no finished epoch"),
         setup=copy_run(_write("metrics.jsonl", ""))),
    Case("params-plot-no-runs", ("params", "--plot", "{fx}/imgs"), 2, ("no finished run",)),
    Case("report-no-runs", ("report", "--runs", "{fx}/imgs"), 2, ("no finished run",)),
    Case("evaluate-other-backbone-width", ("evaluate", CKPT, "--set", "backbone.kwargs.embed_dim=192"), 2,
         ("checkpoint",)),
    Case("evaluate-pickle-protocol-4", ("evaluate", "{fx}/protocol4.pt"), 2, ("protocol4.pt", "not a readable")),
    Case("evaluate-weights-of-another-size", ("evaluate", CKPT, "--set", "backbone.weights="
                                              "asset:quickstart-vit-mnist04.safetensors"), 2,
         ("backbone.weights", "size mismatch")),
]

YAML = [
    Case("recipe-duplicate-key", ("train", "--recipe", "{fx}/dup.yaml"), 2, ("dup.yaml:3:3", "duplicate key 'epochs'",
                                                                            "line 2")),
    Case("recipe-not-yaml", ("train", "--recipe", "{fx}/bad.yaml"), 2, ("bad.yaml:3:1",)),
    Case("recipe-a-list", ("train", "--recipe", "{fx}/list.yaml"), 2, ("list.yaml", "mapping")),
    Case("recipe-not-utf8", ("train", "--recipe", "{fx}/latin1.yaml"), 2, ("latin1.yaml", "UTF-8")),
    Case("recipe-tag", ("train", "--recipe", "{fx}/tag.yaml"), 2, ("tag.yaml:1:",)),
    Case("recipe-empty-name", ("train", "--recipe", ""), 2, ("--recipe ''",)),
    Case("recipe-device", ("train", "--recipe", "/dev/zero"), 2, ("/dev/zero", "not a regular file")),
    Case("recipe-a-folder", ("train", "--recipe", "{fx}/imgs"), 2, ("imgs", "is a folder")),
    Case("recipe-unknown", ("train", "--recipe", "nosuchrecipe"), 2, ("nosuchrecipe", "does not exist")),
    # a data folder named like the shipped recipe: the recipe is taken (its value then fails at once)
    Case("recipe-shipped-beside-a-folder", ("train", "--recipe", "vtab/dtd", "--set", "train.epochs=0"), 2,
         ("train.epochs",), setup=folders("vtab/dtd")),
    Case("set-duplicate-key", ("train", "--set", "train={epochs: 1, epochs: 2}"), 2, ("--set", "duplicate key")),
    Case("set-not-yaml", ("train", "--set", "train.lr=[1"), 2, ("--set 'train.lr=[1'", "not valid YAML")),
    Case("grid-not-yaml", ("sweep", "--out", "s", "--grid", "train.lr=[0.1"), 2, ("--grid",)),
    Case("grid-duplicate-key", ("sweep", "--out", "s", "--grid", "train.lr=[{a: 1, a: 2}]"), 2, ("--grid",)),
    Case("compare-recipe-duplicate", ("compare", "--recipe", "{fx}/dup.yaml"), 2, ("dup.yaml:3:3",)),
    Case("sweep-recipe-duplicate", ("sweep", "--out", "s", "--recipe", "{fx}/dup.yaml"), 2, ("dup.yaml:3:3",)),
    Case("params-recipe-invalid", ("params", "--recipe", "{fx}/bad.yaml"), 2, ("bad.yaml:3:1",)),
    Case("check-recipe-duplicate", ("data", "check", "vtab", "--recipe", "{fx}/dup.yaml"), 2, ("dup.yaml:3:3",)),
    Case("hierarchy-duplicate", (*Q, *_sets("method.name=transhp", "data.hierarchy={fx}/hier.yaml")), 2,
         ("hier.yaml:2:1", "duplicate key")),
    Case("hierarchy-not-yaml", (*Q, *_sets("method.name=transhp", "data.hierarchy={fx}/bad.yaml")), 2,
         ("bad.yaml:3:1",)),
    Case("sources-duplicate", ("data", "prepare", "cifar10", "--sources", "{fx}/dup.yaml", "--dry-run"), 2,
         ("--sources", "dup.yaml:3:3")),
    Case("sources-not-yaml", ("data", "prepare", "cifar10", "--sources", "{fx}/bad.yaml", "--dry-run"), 2,
         ("--sources", "bad.yaml:3:1")),
]

SETS = [
    Case("compare-owns-method", ("compare", "--recipe", "quickstart", "--set", "method.name=vpt"), 2,
         ("method.name", "--methods")),
    Case("compare-owns-method-as-mapping", ("compare", "--recipe", "quickstart", "--set", "method={name: vpt}"), 2,
         ("method={name: vpt}", "--methods")),
    Case("quickstart-owns-method", ("quickstart", "--set", "method.name=nosuch"), 2, ("method.name",)),
    Case("reproduce-gpus-dry-run", ("reproduce", "table1", "--data-root", "d", "--gpus", "a,b", "--dry-run"), 2,
         ("--gpus",)),
    Case("reproduce-gpus-twice-dry-run", ("reproduce", "table1", "--data-root", "d", "--gpus", "0,0", "--dry-run"),
         2, ("--gpus",)),
    Case("set-merge-keeps-group", ("train", "--set", "train.epochs=0", "--set", "train={lr: 0.1}"), 2,
         ("train.epochs",)),
    Case("set-value-as-group", ("train", "--set", "train.epochs.x=1"), 2, ("train.epochs",)),
    Case("set-no-key", ("train", "--set", "=1"), 2, ("--set '=1'",)),
    Case("set-no-value", ("train", "--set", "novalue"), 2, ("--set 'novalue'",)),
    Case("set-unknown-key", ("train", "--set", "train.lrr=1"), 2, ("train.lrr",)),
    Case("set-unknown-method", ("train", "--set", "method.name=nosuch"), 2, ("method.name", "nosuch")),
    Case("set-bad-device", ("train", "--set", "train.device=tpu"), 2, ("train.device",)),
    Case("set-bad-choice", ("train", "--set", "data.resize=stretch"), 2, ("data.resize",)),
    Case("sweep-range-reversed", ("sweep", "--out", "s", "--range", "train.lr=1:0", "--sampler", "tpe", "--trials",
                                  "2"), 2, ("train.lr",)),
    Case("sweep-tpe-without-trials", ("sweep", "--out", "s", "--sampler", "tpe"), 2, ("--trials",)),
    Case("sweep-range-out-of-bounds", ("sweep", "--out", "s", "--range", "train.lr=1:1e9", "--sampler", "tpe",
                                       "--trials", "2"), 2, ("train.lr",)),
]

ENVIRONMENT = [
    Case("recipes-stdout-closed", ("recipes",), 1, ("stdout is closed",), shell="closed"),
    Case("evaluate-stdout-closed", ("evaluate", CKPT), 1, ("stdout is closed",), shell="closed"),
    Case("train-stdout-closed", Q, 1, ("stdout is closed",), shell="closed"),
    Case("recipes-disk-full", ("recipes",), 1, ("no space left on device (stdout)",), shell="full"),
    Case("data-list-disk-full", ("data", "list"), 1, ("no space left on device (stdout)",), shell="full"),
    Case("checkpoint-disk-full", ("train", *_sets(*tiny_run("linear", 1)), "--out", "{here}/run"), 1,
         ("no space left on device", "run/best.pt"), env={"INSVP_TEST_FULL_DISK": "1"}, writes=True),
]

COMMANDS = [
    Case("gradcam-device-cuda", ("gradcam", CKPT, IMG, "--device", "cuda"), 2, ("--device",)),
    Case("gradcam-missing-checkpoint", ("gradcam", "{fx}/missing.pt", IMG), 2, ("missing.pt",)),
    Case("tsne-nothing-named", ("tsne",), 2, ("--dataset",)),
    Case("predict-missing-input", ("predict", CKPT, "{fx}/missing"), 2, ("missing",)),
    Case("predict-pattern-matches-nothing", ("predict", CKPT, "{fx}/*.nothing"), 2, ("*.nothing",)),
    Case("predict-missing-checkpoint", ("predict", "{fx}/missing.pt", IMG), 2, ("missing.pt",)),
    Case("export-missing-checkpoint", ("export", "{fx}/missing.pt"), 2, ("missing.pt",)),
    Case("evaluate-no-checkpoint", ("evaluate",), 2, ("CKPT",)),
    Case("check-unknown-dataset", ("data", "check", "nosuch"), 2, ("nosuch",)),
    Case("check-root-missing", ("data", "check", "vtab", "--root", "{fx}/missing"), 2, ("missing",)),
    Case("prepare-unknown-dataset", ("data", "prepare", "nosuch"), 2, ("nosuch",)),
    Case("prepare-bad-mirror", ("data", "prepare", "cifar10", "--mirror", "ftp://x"), 2, ("--mirror",)),
    Case("prepare-missing-sources", ("data", "prepare", "cifar10", "--sources", "{fx}/missing.yaml"), 2,
         ("missing.yaml",)),
    Case("convert-missing-state-dict", ("convert-official", "{fx}/missing.pth", "--recipe", "quickstart", "--out",
                                        "o"), 2, ("missing.pth",)),
    Case("params-unknown-method", ("params", "--method", "nosuch"), 2, ("nosuch",)),
    Case("params-compare-with-method", ("params", "--compare", "--method", "vpt"), 2, ("--compare",)),
    Case("params-out-without-plot", ("params", "--out", "x.png"), 2, ("--out",)),
    Case("report-unknown-table", ("report", "--table", "nosuch"), 2, ("nosuch",)),
    Case("reproduce-unknown-table", ("reproduce", "nosuch", "--data-root", "d"), 2, ("nosuch",)),
    Case("reproduce-missing-data", ("reproduce", "table2", "--data-root", "{fx}/missing", "--methods", "linear"), 2,
         ("missing",)),
    Case("reproduce-unknown-method", ("reproduce", "table1", "--data-root", "d", "--methods", "nosuch"), 2,
         ("nosuch",)),
    Case("compare-no-methods", ("compare", "--methods", ","), 2, ("--methods",)),
    Case("compare-unknown-method", ("compare", "--methods", "nosuch"), 2, ("nosuch",)),
    Case("sweep-no-out", ("sweep",), 2, ("--out",)),
    Case("unknown-command", ("nosuchcommand",), 2, ("nosuchcommand",)),
    Case("unknown-option", ("recipes", "--bogus"), 2, ("--bogus",)),
    Case("train-loggers-unknown", ("train", "--set", "train.loggers=[wandb]"), 2, ("train.loggers",)),
    Case("train-milestones-unsorted", ("train", *_sets("train.schedule=multistep", "train.milestones=[0.7, 0.5]")),
         2, ("train.milestones",)),
    Case("train-min-lr-above-lr", ("train", "--set", "train.min_lr=1"), 2, ("train.min_lr",)),
]

CASES = [*RANGES, *OUTPUTS, *RUN_FILES, *YAML, *SETS, *ENVIRONMENT, *COMMANDS]

def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots``: its kind and, for a file, a digest of its contents."""
    seen = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            seen[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    return seen


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished one-epoch InsVP run of a tiny ViT on digits."""
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.train.loop import fit

    run = tmp_path_factory.mktemp("trained") / "run"
    fit(resolve_config(None, tiny_run("insvp", 1)), run)
    return run


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    """Files that the cases read and never change."""
    fx = tmp_path_factory.mktemp("fixtures")
    (fx / "imgs").mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(fx / "imgs" / "a.png")
    (fx / "a_file").write_text("a file, not a folder\n")
    (fx / "empty.pt").write_bytes(b"")
    (fx / "junk.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    (fx / "dup.yaml").write_text("train:\n  epochs: 1\n  epochs: 2\n")
    (fx / "bad.yaml").write_text("train:\n  epochs: [1\n")
    (fx / "list.yaml").write_text("- train\n- data\n")
    (fx / "latin1.yaml").write_bytes("train: {lr: 0.1}  # caf\xe9\n".encode("latin-1"))
    (fx / "tag.yaml").write_text("!!python/object/apply:os.system [echo owned]\n")
    (fx / "hier.yaml").write_text("even: [0, 2, 4]\neven: [6, 8]\n")
    torch.save({"format_version": 2, "state_dict": {}}, fx / "protocol4.pt", pickle_protocol=4)
    return fx


def fill(text: str, fx: Path, run: Path, here: Path) -> str:
    return text.replace("{fx}", str(fx)).replace("{run}", str(run)).replace("{here}", str(here))


def run_case(case: Case, here: Path, fx: Path, run: Path) -> str | None:
    """Run ``case`` in ``here``; ``None`` when it behaves, else what went wrong."""
    here.mkdir()
    if case.setup is not None:
        case.setup(here, run)
    args = [fill(a, fx, run, here) for a in case.args]
    before = snapshot(here)
    env = fault_env(here.parent / f"{case.id}-site", **case.env) if case.env else {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [str(INSVP), *args]
    if case.shell is not None:
        redirect = {"closed": ">&-", "full": "> /dev/full"}[case.shell]
        command = ["sh", "-c", f'exec "$0" "$@" {redirect}', *command]
    proc = subprocess.run(command, cwd=here, env=env, stdout=subprocess.PIPE if case.shell is None else None,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    err = proc.stderr or ""
    lines = err.strip().splitlines()
    if case.writes:  # a run that started shows its progress first; the error is then its last line
        err = "\n".join(lines[-1:])
    problems = []
    if proc.returncode != case.code:
        problems.append(f"exit code {proc.returncode}, expected {case.code}")
    if len(err.splitlines()) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    if "Traceback" in err or "Warning" in err or "unexpected" in err:
        problems.append("a traceback, a library warning or an unexpected error")
    problems += [f"{needle!r} not named" for needle in case.needles if fill(needle, fx, run, here) not in err]
    if case.writes:
        problems += [f"temp file left: {p}" for p in here.rglob("*.tmp")]
    elif snapshot(here) != before:
        problems.append(f"wrote {sorted(set(snapshot(here)) ^ set(before)) or 'into existing files'}")
    if not problems:
        return None
    return f"{case.id}: {'; '.join(problems)}\n  insvp {' '.join(args)}\n  stderr: {err.strip()!r}"


def test_the_table_has_every_kind_and_enough_cases():
    assert len(CASES) >= 120
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.args[0] for c in CASES}
    assert commands >= {"train", "evaluate", "predict", "export", "compare", "quickstart", "sweep", "reproduce",
                        "report", "params", "gradcam", "tsne", "plot", "data", "convert-official", "recipes"}


def test_every_bad_input_is_one_honest_line_and_writes_nothing(trained, fixtures, tmp_path):
    shared = snapshot(trained, fixtures)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda c: run_case(c, tmp_path / c.id, fixtures, trained), CASES))
    failures = [f for f in found if f is not None]
    assert not failures, f"{len(failures)} of {len(CASES)} cases misbehave:\n" + "\n".join(failures)
    assert snapshot(trained, fixtures) == shared


def test_workers_beyond_the_cpus_are_capped_with_one_note(trained, fixtures):
    proc = insvp("predict", trained / "best.pt", fixtures / "imgs", "--workers", "500")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: --workers: 500 worker processes capped at"), proc.stderr
    assert "Warning" not in proc.stderr


def test_a_damaged_summary_is_skipped_with_one_warning_line(trained, tmp_path):
    for name in ("good", "damaged"):
        shutil.copytree(trained, tmp_path / "runs" / name)
    (tmp_path / "runs" / "damaged" / "summary.json").write_text('{"method": "insvp", "test_acc": ')
    proc = insvp("params", "--plot", tmp_path / "runs", "--out", tmp_path / "p.png")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (f"warning: skipped: {tmp_path / 'runs' / 'damaged' / 'summary.json'} cannot be "
                                   "read (JSONDecodeError); the run folder is damaged")
    assert (tmp_path / "p.png").stat().st_size > 0 and "1 runs" in proc.stdout


def test_plot_draws_what_is_there_of_damaged_metrics_with_a_warning_per_line(trained, tmp_path):
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    with (run / "metrics.jsonl").open("ab") as f:  # the damaged rows, each on its own line
        f.write(b'{"epoch": 2, "lr": NaN, "train_loss": Infinity}\n[1, 2]\n\xff\xfe\n{"epoch": 3}\n{"epoch": 4, "tr')
    proc = insvp("plot", run, "--out", tmp_path / "c.png")
    assert proc.returncode == 0, proc.stderr
    metrics = run / "metrics.jsonl"
    assert proc.stderr.splitlines() == [f"warning: {metrics}:3: skipped: the line is not an epoch's row (an object "
                                        "with an integer epoch)",
                                        f"warning: {metrics}:4: skipped: the line is not UTF-8 text",
                                        f"warning: {metrics}:6: skipped: the line is not JSON (a torn or edited line)"]
    assert (tmp_path / "c.png").stat().st_size > 0


def test_a_label_the_font_cannot_draw_is_no_warning(trained, tmp_path):
    run = shutil.copytree(trained, tmp_path / "运行")  # matplotlib's default font has no CJK glyphs
    proc = insvp("plot", run, "--out", tmp_path / "c.png")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_a_run_with_more_workers_than_cpus_notes_it_once_and_no_loader_warning(tmp_path):
    proc = insvp("train", *_sets(*tiny_run("linear", 1, "data.num_workers=64")), "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: data.num_workers: 64 worker processes capped at")
    assert "Warning" not in proc.stderr
