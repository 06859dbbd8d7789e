"""A bounded load on ``insvp serve`` over loopback, with batching on and off: requests/s and latency, every answer
checked.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). Three tasks (InsVP, VPT, the linear
probe) share one random-init backbone (CPU default: ViT-S/16 at 224 px). The reference answers are
``insvp_cli.predict``'s (what ``insvp predict`` runs) on the same image files. For each mode a fresh server is started
through the installed script and warmed up (two requests per task), then ``--clients`` threads, each with its own
keep-alive connection, send ``--requests`` requests of one image each (tasks and images in turn) and stop. Every
answer must be a 200 whose classes are the reference's and whose probabilities are within 1e-5 of them.

- batching on: ``--max-batch 32 --batch-wait 5`` (the defaults): concurrent requests to a task share a forward;
- batching off: ``--max-batch 1``: every image has a forward of its own.

Run from the repository root::

    python benchmarks/serve_load.py                      # 400 requests from 16 clients per mode

The clients run on the same machine as the server (on a small CPU they take a share of it). The exit status is 1 when
any request failed or any answer was wrong.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from _serving import write_checkpoints, write_images

import insvp_cli
from insvp_cli.serve.process import ServerProcess

METHODS = ["insvp", "vpt", "linear"]
MODES = {"batching on": ["--max-batch", "32", "--batch-wait", "5"], "batching off": ["--max-batch", "1"]}
TOLERANCE = 1e-5


def load(server: ServerProcess, jobs: list[tuple[str, Path]], clients: int,
         reference: dict[tuple[str, str], tuple[list[str], list[float]]]) -> tuple[float, list[float], int, int]:
    """Send ``jobs`` from ``clients`` threads; wall seconds, latencies, failed requests and wrong answers."""
    latencies: list[float] = []
    failures, wrong, lock, queue = [0], [0], threading.Lock(), iter(jobs)

    def client() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    job = next(queue, None)
                if job is None:
                    return
                task, image = job
                started = time.perf_counter()
                try:
                    answer = session.post(f"{server.url}/tasks/{task}/predict", params={"top_k": 5}, timeout=300,
                                          files=[("files", (image.name, image.read_bytes(), "image/png"))])
                except requests.RequestException:
                    answer = None
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if answer is None or answer.status_code != 200:
                        failures[0] += 1
                        continue
                    row = answer.json()["predictions"][0]
                    classes, probabilities = reference[(task, image.name)]
                    if row["classes"] != classes or not np.allclose(row["probabilities"], probabilities, rtol=0,
                                                                    atol=TOLERANCE):
                        wrong[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures[0], wrong[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="vit_small_patch16_224", help="timm model (random init)")
    parser.add_argument("--requests", type=int, default=400, help="requests per mode")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--images", type=int, default=8, help="distinct images sent in turn")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_checkpoints(Path(tmp), args.backbone, METHODS)
        images = write_images(Path(tmp) / "images", args.images)
        reference = {}
        for task, checkpoint in files.items():
            for row in insvp_cli.predict(checkpoint, images, top_k=5, device="cpu", workers=0).rows:
                reference[(task, Path(row.path).name)] = (row.classes, row.probabilities)
        jobs = [(METHODS[i % len(METHODS)], images[i % len(images)]) for i in range(args.requests)]
        rows, ok = [], True
        for mode, options in MODES.items():
            print(f"{mode}: {args.requests} requests from {args.clients} clients", file=sys.stderr)
            with ServerProcess([*(f"{m}={f}" for m, f in files.items()), *options]) as server:
                load(server, [(m, images[0]) for m in METHODS for _ in range(2)], 1, reference)  # warm-up
                seconds, latencies, failures, wrong = load(server, jobs, args.clients, reference)
                server.stop()
                forwards = int(re.search(r"answered in (\d+) forward", server.output).group(1))
            p50, p99 = np.percentile(np.asarray(latencies) * 1000, [50, 99])
            rows.append((mode, options[1], len(latencies), failures, wrong, len(latencies) / seconds, p50, p99,
                         forwards - len(METHODS) * 2))
            ok = ok and failures == 0 and wrong == 0 and len(latencies) == args.requests
    print(f"insvp serve under load: {args.backbone} @ 224 px, random init, CPU; {len(METHODS)} tasks sharing it, "
          f"{args.clients} clients on loopback, one image per request")
    print(f"{'mode':<13} {'max batch':>9} {'requests':>8} {'failed':>6} {'wrong':>5} {'req/s':>6} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'forwards':>8}")
    for mode, batch, count, failures, wrong, rate, p50, p99, forwards in rows:
        print(f"{mode:<13} {batch:>9} {count:>8} {failures:>6} {wrong:>5} {rate:6.1f} {p50:7.0f} {p99:7.0f} "
              f"{forwards:>8}")
    on, off = rows[0][5], rows[1][5]
    print(f"batching on / off: {on / off:.2f}x requests/s; every answer checked against insvp predict (1e-5): "
          f"{'all correct' if ok else 'FAILURES'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
