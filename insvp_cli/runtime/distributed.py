"""Multi-process training under ``torchrun`` (NCCL on CUDA, gloo on CPU); a no-op in a single process.

Each process binds its GPU before anything touches CUDA (``torch.cuda.set_device``, and ``device_id`` for NCCL), so
its loader's pin-memory thread and NCCL's communicator use that GPU rather than GPU 0. Processes that share a GPU
(more processes on a node than GPUs, e.g. a 2-process check on one GPU) communicate through gloo, which NCCL does not
allow. The reductions here are exact where they count: integer counts are summed as integers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any; on CUDA, bind this process's
    GPU (``local_rank``, modulo the GPUs it sees) first."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device_type == "cuda":
            device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
            shared = torch.cuda.device_count() < int(os.environ.get("LOCAL_WORLD_SIZE", world))
            if shared:  # NCCL refuses two ranks on one GPU
                dist.init_process_group(backend="gloo")
            else:
                dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
    return info


def shutdown_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sum_over_ranks(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """``tensor`` summed over all processes, in place (integers stay exact); itself in a single process."""
    if info.enabled:
        dist.all_reduce(tensor)
    return tensor


def gather_rows(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Every rank's ``(n_r, ...)`` rows, concatenated in rank order (the ranks' parts of a split in split order,
    see :func:`insvp_cli.data.loaders.shard`); ``tensor`` itself in a single process.

    Built from sums alone (each rank adds its rows at its offset into zeros), which every backend offers on every
    device (gloo has no ``all_gather`` of CUDA tensors); adding zeros changes no value.
    """
    if not info.enabled:
        return tensor
    counts = torch.zeros(info.world_size, dtype=torch.int64, device=tensor.device)
    counts[info.rank] = tensor.shape[0]
    offsets = [0, *torch.cumsum(sum_over_ranks(counts, info), 0).tolist()]
    rows = tensor.new_zeros((offsets[-1], *tensor.shape[1:]))
    rows[offsets[info.rank]:offsets[info.rank + 1]] = tensor
    return sum_over_ranks(rows, info)
