"""Resident memory of ``insvp serve`` with one task and with eight tasks on one ViT-B/16-sized frozen backbone.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). Eight methods that leave the backbone
frozen (InsVP, VPT, the linear probe, adapters, AdaptFormer, VP, E2VPT, the MLP head) are saved as checkpoints of a
random-init ``vit_base_patch16_224`` (86 M parameters, 330 MiB in float32). The server is started as a user starts
it, first with the InsVP task alone, then with all eight; each task answers one request (so the forward's working
memory is counted too) before the server's resident set size is read from ``/proc``. Tasks that share the backbone
add only their own weights: the target is at most 1.2 times the memory of one task.

Run from the repository root (CPU, about two minutes)::

    python benchmarks/serve_memory.py

The exit status is 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import requests
from _serving import write_checkpoints, write_images

from insvp_cli.serve.process import ServerProcess

METHODS = ["insvp", "vpt", "linear", "adapter", "adaptformer", "vp", "e2vpt", "mlp"]
TARGET = 1.2
MIB = 2**20


def resident(files: dict[str, Path], image: Path) -> int:
    """The server's resident set size (bytes) with ``files`` loaded, after one request to each task."""
    with ServerProcess([f"{m}={f}" for m, f in files.items()]) as server:
        for method in files:
            answer = requests.post(f"{server.url}/tasks/{method}/predict", timeout=600,
                                   files=[("files", (image.name, image.read_bytes(), "image/png"))])
            answer.raise_for_status()
        return server.rss_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="vit_base_patch16_224", help="timm model (random init)")
    parser.add_argument("--tasks", type=int, default=len(METHODS),
                        help=f"tasks of the second server (at most {len(METHODS)})")
    args = parser.parse_args(argv)
    methods = METHODS[: args.tasks]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing {len(methods)} checkpoints on a random-init {args.backbone}", file=sys.stderr)
        files = write_checkpoints(Path(tmp), args.backbone, methods)
        image = write_images(Path(tmp) / "images", 1)[0]
        sizes = {m: f.stat().st_size / MIB for m, f in files.items()}
        one = resident({methods[0]: files[methods[0]]}, image)
        many = resident(files, image)
    ratio = many / one
    print(f"insvp serve, resident memory after one request per task; {args.backbone}, random init, CPU")
    print(f"{'tasks':>5}  {'RSS MiB':>8}  methods (checkpoint MiB)")
    print(f"{1:>5}  {one / MIB:8.0f}  {methods[0]} ({sizes[methods[0]]:.2f})")
    print(f"{len(methods):>5}  {many / MIB:8.0f}  {', '.join(f'{m} ({sizes[m]:.2f})' for m in methods)}")
    met = ratio <= TARGET
    print(f"ratio {len(methods)} tasks / 1 task = {ratio:.3f} (target <= {TARGET}): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
