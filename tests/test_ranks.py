"""Per-process randomness under ``torchrun --nproc_per_node 2`` (gloo, CPU), through the package's command line: the
two processes draw their own Mixup/CutMix parameters and augment their own images, and the run is repeatable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from insvp_cli.runtime.distributed import DistInfo, gather_rows, sum_over_ranks
from tests.conftest import REPO, tiny_run

# imported by every Python process: records, per process, the parameters of every Mixup/CutMix draw and a checksum of
# every augmented batch the loader hands over, written at exit to INSVP_TEST_RECORD/rank<RANK>.json
HOOK = """
import atexit, json, os
if os.environ.get("INSVP_TEST_RECORD") and "RANK" in os.environ:
    import timm.data
    import insvp_cli.data.loaders as loaders
    record = {"mixup": [], "batches": []}
    params = timm.data.Mixup._params_per_batch
    def recorded_params(self):
        lam, cutmix = params(self)
        record["mixup"].append([float(lam), bool(cutmix)])
        return lam, cutmix
    timm.data.Mixup._params_per_batch = recorded_params
    iterate = loaders.ImageLoader.__iter__
    def recorded_iter(self):
        for images, labels in iterate(self):
            if isinstance(self.sampler, loaders.EpochSampler):
                record["batches"].append([images.double().sum().item(), labels.tolist()])
            yield images, labels
    loaders.ImageLoader.__iter__ = recorded_iter
    def write():
        path = os.path.join(os.environ["INSVP_TEST_RECORD"], f"rank{os.environ['RANK']}.json")
        with open(path, "w") as f:
            json.dump(record, f)
    atexit.register(write)
"""


def _torchrun(run: Path, records: Path, hook: Path) -> dict[str, dict]:
    records.mkdir()
    sets = tiny_run("insvp", 2, "data.augment=true", "data.shots=16", "train.mixup=0.8", "train.cutmix=1.0",
                    "train.mix_prob=1.0", "method.dropout=0.2", "data.classes=[0, 1, 2, 3]", batch_size=8)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]), "INSVP_TEST_RECORD": str(records),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "insvp_cli", "train", *(x for s in sets for x in ("--set", s)), "--out", str(run)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {rank: json.loads((records / f"{rank}.json").read_text()) for rank in ("rank0", "rank1")}


def test_two_processes_draw_their_own_mixup_and_augmentation_and_the_run_repeats(tmp_path):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    first = _torchrun(tmp_path / "a", tmp_path / "records-a", tmp_path / "hook")
    ranks = first["rank0"], first["rank1"]
    # 64 images over 2 processes in batches of 8: 4 steps each per epoch, 2 epochs
    assert all(len(r["mixup"]) == len(r["batches"]) == 8 for r in ranks)
    assert ranks[0]["mixup"] != ranks[1]["mixup"]  # each process its own lambdas (and Mixup / CutMix choices)
    assert all(a != b for a, b in zip(ranks[0]["batches"], ranks[1]["batches"], strict=True))  # other images
    # both epochs drew anew
    assert ranks[0]["mixup"][:4] != ranks[0]["mixup"][4:]
    again = _torchrun(tmp_path / "b", tmp_path / "records-b", tmp_path / "hook")
    assert again == first
    assert (tmp_path / "a" / "metrics.jsonl").read_text().count("\n") == 2
    for name in ("last.pt", "best.pt"):
        a, b = (torch.load(tmp_path / run / name, weights_only=True)["state_dict"] for run in ("a", "b"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [[{k: v for k, v in json.loads(line).items() if "seconds" not in k and "per_s" not in k}
             for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("a", "b")]
    assert rows[0] == rows[1]


def _rows(rank: int) -> torch.Tensor:
    """Rank 0's 3 rows, rank 1's 2 rows: parts of unequal sizes, as the last part of a split may be."""
    return 10.0 * rank + torch.arange(3 - rank, dtype=torch.float64)[:, None] + torch.tensor([[0.0, 0.1]])


def _combine(rank: int, folder: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder / 'store'}", rank=rank, world_size=2)
    try:
        info = DistInfo(rank, 2, rank)
        rows = _rows(rank)
        counts = torch.tensor([rank + 1, 2**53 - 1 if rank else 0], dtype=torch.int64)
        torch.save({"rows": gather_rows(rows, info), "counts": sum_over_ranks(counts, info)}, folder / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_the_parts_of_two_processes_combine_exactly_in_order(tmp_path):
    mp.spawn(_combine, args=(tmp_path,), nprocs=2)
    results = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in (0, 1)]
    expected = torch.cat([_rows(0), _rows(1)])
    for result in results:  # every process gets the whole, rank 0's rows first
        assert torch.equal(result["rows"], expected)
        assert result["counts"].tolist() == [3, 2**53 - 1]  # integers summed as integers
