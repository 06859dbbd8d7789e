"""Few-shot training splits: K images per class, picked by a seed (NOAH's FGVC few-shot protocol, Zhang et al. 2022:
1, 2, 4, 8 and 16 shots, seeds 0, 1 and 2; InsVP's datasets are read as they are, only their training split shrinks).
"""

from __future__ import annotations

import numpy as np


def few_shot(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Positions of ``shots`` samples of each label (all of a label with fewer), sorted.

    Each label's samples are shuffled by their own generator seeded with ``(seed, label)``, so a class's pick
    depends only on the seed and on that class's samples (not on which other classes a ``data.classes`` subset
    keeps), and a larger K keeps the images of a smaller one (1-shot's image is among the 2-shot images).
    """
    picked = [np.random.default_rng([seed, int(label)]).permutation(np.flatnonzero(labels == label))[:shots]
              for label in np.unique(labels)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
