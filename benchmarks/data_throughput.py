"""Images/s of the training loader alone, for a shipped recipe, against the model's training images/s on the same
device: does the data pipeline keep the accelerator busy?

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). The recipe's data settings (resize,
crop, flip, batch) and backbone (input size, normalisation, interpolation) are used as they are; its images are
fabricated: ``--images`` JPEGs of ``--size`` pixels (CUB-200's typical 500x375) in an ``imagefolder``. Rows:

- ``files``: every image decoded (PIL) and resized every epoch, ``data.num_workers`` workers (default: what
  ``data.num_workers: null`` gives this machine), as with ``data.cache_gb: 0``;
- ``cache build``: decoding and resizing the split once into uint8 tensors (:mod:`insvp_cli.data.cache`);
- ``from the cache``: an epoch read from that cache (crop, flip and normalisation only), the default for splits that
  fit ``data.cache_gb``;
- ``model``: the recipe's method training on synthetic batches on ``--device`` (``train_speed.py``'s measurement).

Each loader row times a whole epoch after a first, untimed one (workers started, files in the page cache). Run from
the repository root::

    python benchmarks/data_throughput.py                          # recipe cub, CPU
    python benchmarks/data_throughput.py --device cuda --images 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from train_speed import Row, measure  # (through _models: this checkout's insvp_cli first on sys.path)

from insvp_cli.backbone import create_backbone, data_config
from insvp_cli.config.overrides import flatten, format_override
from insvp_cli.data.cache import cache_split
from insvp_cli.data.loaders import ImageLoader
from insvp_cli.data.splits import build_splits
from insvp_cli.data.transforms import input_size
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runtime.cpus import loader_workers

CLASSES = 10
DISTINCT = 16  # distinct encoded images (decoding cost does not depend on repeats; writing stays fast)


def fabricate(root: Path, images: int, size: tuple[int, int]) -> None:
    """An ``imagefolder`` of ``images`` training JPEGs (and a few test ones) of ``size`` (W, H): smooth colour fields
    with noise, about the file size of a photograph."""
    rng = np.random.default_rng(0)
    width, height = size
    encoded = []
    for _ in range(DISTINCT):
        coarse = Image.fromarray(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8))
        noise = rng.integers(-12, 13, (height, width, 3))
        pixels = np.asarray(coarse.resize(size, Image.BICUBIC), dtype=np.int16) + noise
        path = root / "encoded.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        encoded.append(path.read_bytes())
    for split, count in (("train", images), ("test", CLASSES)):
        for i in range(count):
            folder = root / split / f"class{i % CLASSES}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:06d}.jpg").write_bytes(encoded[i % DISTINCT])
    (root / "encoded.jpg").unlink()


def epoch_rate(loader: ImageLoader) -> float:
    """Images/s of the second of two epochs over ``loader``."""
    for _ in loader:
        pass
    start, seen = time.perf_counter(), 0
    for images, _ in loader:
        seen += images.shape[0]
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--recipe", default="cub", help="a shipped recipe (default cub)")
    parser.add_argument("--images", type=int, default=512, help="training images to fabricate (default 512)")
    parser.add_argument("--size", default="500x375", help="their width x height (default 500x375, CUB's typical)")
    parser.add_argument("--workers", type=int, help="loader workers (default: data.num_workers: null on this machine)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model-batch", type=int, help="the model's batch (default: the recipe's on CUDA, 4 on CPU)")
    parser.add_argument("--model-steps", type=int, help="timed model steps (default 10 on CUDA, 1 on CPU)")
    opts = parser.parse_args(argv)
    size = tuple(int(s) for s in opts.size.lower().split("x"))
    workers = loader_workers(opts.workers)
    cuda = opts.device.startswith("cuda")
    with tempfile.TemporaryDirectory(prefix="insvp-data-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        fabricate(root, opts.images, size)
        made = time.perf_counter() - start
        cfg = resolve_config(opts.recipe, ["data.name=imagefolder", f"data.root={root}", "data.split_dir=null",
                                           "backbone.weights=none", f"data.num_workers={workers}"])
        backbone_data = data_config(create_backbone(cfg.backbone))
        splits = build_splits(cfg.data, backbone_data)
        batch = cfg.data.batch_size
        files = ImageLoader(splits.train, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=True)
        rate_files = epoch_rate(files)
        start = time.perf_counter()
        cached = cache_split(splits.train, workers, "error")
        rate_build = len(splits.train) / (time.perf_counter() - start)
        from_cache = ImageLoader(cached, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=True)
        rate_cache = epoch_rate(from_cache)
    model_batch = opts.model_batch or (batch if cuda else 4)
    steps = opts.model_steps or (10 if cuda else 1)
    method = tuple(format_override(k, v) for k, v in flatten(cfg.to_dict()).items() if k.startswith("method."))
    model_row = Row(f"{cfg.method.name} ({opts.recipe})", method)
    model = measure(model_row, argparse.Namespace(
        device=opts.device, backbone=cfg.backbone.name, img_size=input_size(cfg.data, backbone_data)[0], kwargs="{}",
        precision="bf16" if cuda else "fp32", batch=model_batch, warmup=1, steps=steps))["images/s"]
    print(f"recipe {opts.recipe}: {len(splits.train)} training images of {size[0]}x{size[1]} (made in {made:.1f} s), "
          f"batch {batch}, {workers} workers on {os.cpu_count()} CPUs; model on {opts.device}, batch {model_batch}; "
          f"torch {torch.__version__}")
    print(f"{'pipeline':<36} {'images/s':>10} {'/ model':>8}")
    for label, rate in ((f"files ({workers} workers)", rate_files), (f"cache build ({workers} workers)", rate_build),
                        (f"from the cache ({workers} workers)", rate_cache), (f"model: {model_row.label}", model)):
        print(f"{label:<36} {rate:>10.1f} {rate / model:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
