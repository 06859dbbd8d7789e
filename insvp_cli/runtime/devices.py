"""Devices by name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (``mps`` where torch has it)."""

from __future__ import annotations

import torch

from ..common.errors import UsageError
from .distributed import DistInfo


def resolve_device(name: str, dist_info: DistInfo | None = None, option: str = "train.device") -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` as a device; errors name ``option``."""
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
        if dist_info is not None and dist_info.enabled:
            return torch.device("cuda", dist_info.local_rank)
    return device
