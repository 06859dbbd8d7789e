"""How the arithmetic of a training run is carried out: TF32 and cuDNN's benchmark mode on CUDA (``train.tf32``), or
deterministic algorithms (``train.deterministic``), set for the run and put back after it.

What "exact" means (README, "Exact resume"): on the CPU a run, its resumed copy and a copy with other loader workers
give the same numbers bit for bit. On CUDA the default (fast) kernels may add in a different order from one call to the
next (atomic additions in some backward passes, cuDNN's benchmark choosing among algorithms), so two runs agree only
to float rounding, which grows over the epochs; ``train.deterministic: true`` gives up that speed for bit-identical
runs there too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# what cuBLAS needs for deterministic results (a fixed workspace; see the CUDA documentation of cuBLAS)
_CUBLAS_WORKSPACE = ":4096:8"


@contextmanager
def run_backends(device: torch.device, *, tf32: bool, deterministic: bool) -> Iterator[None]:
    """The run's settings for the duration of the ``with`` block; the previous ones are restored after it.

    Args:
        device: where the run trains; TF32 and the benchmark mode apply on CUDA only.
        tf32: TF32 products and convolutions and cuDNN's benchmark mode (on CUDA; off under ``deterministic``).
        deterministic: deterministic algorithms on every device; an operation without one raises.
    """
    cudnn = torch.backends.cudnn
    saved = (torch.get_float32_matmul_precision(), cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled())
    try:
        if device.type == "cuda":
            torch.set_float32_matmul_precision("high" if tf32 else "highest")
            cudnn.allow_tf32 = tf32
            cudnn.benchmark = tf32 and not deterministic
            cudnn.deterministic = deterministic
        if deterministic:
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)
            torch.use_deterministic_algorithms(True)
        yield
    finally:
        precision, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic, determined = saved
        torch.set_float32_matmul_precision(precision)
        torch.use_deterministic_algorithms(determined)
