"""DAM-VP's assignment of an image to its cluster: the nearest prototype of its frozen features."""

from __future__ import annotations

import torch


def nearest_prototype(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Features ``(B, D)``, prototypes ``(n, D)`` -> index of the nearest prototype by Euclidean distance, ``(B,)``.

    The squared differences are summed directly: ``torch.cdist`` picks a matrix-product formula by the batch
    size, a branch ``torch.export`` cannot trace for every batch (and the product form loses precision).
    """
    # (B, 1, D) - (1, n, D) -> (B, n)
    return (features.float()[:, None] - prototypes.float()[None]).pow(2).sum(-1).argmin(dim=1)
