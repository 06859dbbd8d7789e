"""What a run would allocate, estimated from its config before anything is built, against what the machine has.

Sizes that multiply (a batch size, tokens per image, a backbone's width and depth) can ask for terabytes that no
machine holds: PyTorch then fails deep inside a step with an allocator message, or the kernel kills the process
without a word. Two estimates are checked first, each a lower bound of what the work allocates, so a run is refused
only when it cannot fit:

- :func:`check_parameters`: a backbone of user-given ``backbone.kwargs`` is first built on the ``meta`` device (no
  memory), and its parameters' bytes are checked against the host's memory, where it is built.
- :func:`check_batch`: a training step holds at least the input batch and, in the widest block, the activations of
  its MLP (``B x T x 4D`` before and after the GELU) in float32; checked against the device's memory.

Where the estimate passes and the allocation still fails, the command line reports it in one line (out of memory,
with the keys to lower).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

# a cgroup's memory limit (a container's, a batch scheduler's): what the process may use, below the machine's RAM
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def human_bytes(n: float) -> str:
    """``9.7 TB``, ``512 MB``: a byte count in decimal units."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def host_memory() -> int | None:
    """Bytes of memory this process may use on the host: the RAM, or a smaller cgroup limit (``None``: unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for limit in _CGROUP_LIMITS:
        try:
            text = limit.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory of ``device``: a GPU's total, the host's for the CPU (``None``: unknown, e.g. MPS)."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    return host_memory() if device.type == "cpu" else None


def _refuse(need: int, have: int | None, where: str, what: str) -> None:
    if have is not None and need > have:
        raise UsageError(f"{what} needs at least {human_bytes(need)}, more than the {human_bytes(have)} of {where}")


def check_parameters(model: nn.Module, what: str) -> None:
    """A model built on the ``meta`` device: its parameters and buffers fit in the host's memory.

    Raises:
        UsageError: they do not; the message names ``what`` (the keys that sized it).
    """
    need = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    _refuse(need, host_memory(), "this machine", what)


def check_batch(batch_size: int, image_size: tuple[int, int], tokens: int, width: int, device: torch.device) -> None:
    """A training step of ``batch_size`` images of ``image_size`` with ``tokens`` tokens of ``width`` per image fits
    on ``device`` (the lower bound of the module docstring).

    Raises:
        UsageError: it cannot; the message names ``data.batch_size`` and what else sizes the step.
    """
    images = batch_size * 3 * image_size[0] * image_size[1] * 4
    mlp = 2 * batch_size * tokens * 4 * width * 4
    _refuse(images + mlp, device_memory(device), f"device {device}",
            f"a training step of data.batch_size={batch_size} images ({image_size[0]}x{image_size[1]} px, "
            f"{tokens} tokens of width {width}; prompt lengths add tokens)")
