"""Devices by name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) and the CUDA GPUs a process sees.

Nothing here imports torch until a device is resolved, so planning commands (``insvp reproduce --dry-run``) count
the GPUs without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.errors import UsageError

if TYPE_CHECKING:
    import torch

    from .distributed import DistInfo

# one folder per GPU that the NVIDIA driver manages (Linux)
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def resolve_device(name: str, dist_info: DistInfo | None = None, option: str = "train.device") -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` as a device; errors name ``option``."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"{option}: {name!r} is not a device; valid: auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{option}: {name!r} but no CUDA device is available; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"{option}: {name!r} but only {torch.cuda.device_count()} CUDA devices are visible")
        if dist_info is not None and dist_info.enabled:  # the GPU init_distributed bound
            return torch.device("cuda", torch.cuda.current_device())
    return device


def visible_gpus() -> int:
    """The CUDA GPUs this process sees, counted without torch: the GPUs the NVIDIA driver manages, limited to the
    entries of ``CUDA_VISIBLE_DEVICES`` when it is set (CUDA stops at the first invalid entry, such as ``-1``)."""
    installed = len(list(NVIDIA_GPUS.iterdir())) if NVIDIA_GPUS.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not installed:
        return installed
    entries = [entry.strip() for entry in visible.split(",")]
    count = next((i for i, entry in enumerate(entries) if not entry or entry.startswith("-")), len(entries))
    return min(count, installed)
