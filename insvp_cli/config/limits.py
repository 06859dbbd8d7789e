"""The upper bounds that every number of the configuration shares, in one place.

Every numeric config value is declared with its range (:func:`~insvp_cli.config.coerce.bounded`) beside it, in
:mod:`.schema` and in each method's ``config.py``; the upper ends come from here. They are generous (no published
protocol comes near them) and they are what a model, a generator or an index can hold, so a value past them is
refused as a usage error naming the key before anything is built, instead of failing an hour later in an overflow,
a 10 TB allocation or a C++ assertion:

- ``SEED_MAX``: NumPy's and scikit-learn's generators take 32-bit seeds.
- ``MAX_EPOCHS``: epochs, and every count of steps or iterations.
- ``MAX_BATCH``: images per step in one process (2**16: 39 GB of 224 px float32 input alone).
- ``MAX_WORKERS``: loader processes (each run also caps them at the CPUs it may use).
- ``MAX_IMAGE_SIZE``: an image side in pixels.
- ``MAX_TOKENS``: prompt tokens added to a block (VPT's largest grid value is 200; a ViT-B/16 sees 197 tokens).
- ``MAX_BLOCKS``: a count or index of transformer blocks or layers.
- ``MAX_WIDTH``: channels, hidden widths and segment counts.
- ``MAX_KERNEL``: a convolution's kernel size or dilation.
- ``MAX_CLASSES``: class ids, class counts and clusters.
- ``MAX_COUNT``: counts of images (what a 32-bit index holds).
- ``MAX_FACTOR``: unitless positive scales (learning rates, weight decays, Mixup/CutMix alphas, loss weights).
- ``MAX_SEEDS``: seeds of one run (``--seeds N``: ``train.seed``, ``+1``, ...).
- ``MAX_TRIALS``: trials of a sweep.
- ``MAX_CACHE_GB``: gigabytes of decoded images a run may keep in memory (``data.cache_gb``).
"""

SEED_MAX = 2**32 - 1
MAX_EPOCHS = 100_000
MAX_BATCH = 2**16
MAX_WORKERS = 1_024
MAX_IMAGE_SIZE = 4_096
MAX_TOKENS = 1_024
MAX_BLOCKS = 1_024
MAX_WIDTH = 2**16
MAX_KERNEL = 255
MAX_CLASSES = 1_000_000
MAX_COUNT = 2**31 - 1
MAX_FACTOR = 1e6
MAX_SEEDS = 1_000
MAX_TRIALS = 100_000
MAX_CACHE_GB = 65_536.0
