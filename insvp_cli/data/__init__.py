"""Datasets of InsVP (ACM MM 2024, §4.1) in their real on-disk formats, their transforms and loaders.

Use::

    from insvp_cli.data.loaders import build_loaders, pop_bad_images
    from insvp_cli.data.splits import build_splits

    splits = build_splits(cfg.data, backbone.data_config(model))
    loaders = build_loaders(splits, cfg.data, distributed=False, seed=cfg.train.seed, pin_memory=True)
    for epoch in range(epochs):
        if loaders.train_sampler is not None:
            loaders.train_sampler.set_epoch(epoch)
        for images, labels in loaders.train:     # (B, 3, H, W) float normalised, (B,) int64
            ...
        skipped = pop_bad_images(loaders.train)  # paths dropped this epoch (on_bad_image: skip)

``splits.train`` / ``.val`` / ``.test`` are map-style datasets yielding ``(tensor (3, H, W), int label)``;
``splits.classes`` names the labels. Registered datasets (:data:`.registry.DATASETS`): the torchvision-backed
``cifar10``, ``cifar100``, ``svhn``, ``gtsrb``, ``food101``, ``dtd``, ``flowers102``; VPT's FGVC splits
``cub``, ``nabirds``, ``oxford_flowers``, ``stanford_dogs``, ``stanford_cars``; one VTAB-1k task, ``vtab``;
``imagefolder``; and the offline ``mnist5k`` and ``digits``.

Splits: official validation splits are used where they exist (DTD partition 1, Flowers-102, the FGVC
files, VTAB's ``val200``, ``imagefolder/val``); otherwise ``data.val_fraction`` of each class of the official
training set is held out (seeded by ``data.seed``, disjoint from what remains). ``data.classes`` keeps a subset of the
labels (indices into the full class list), renumbered 0..K-1 in the given order. ``data.shots: K`` then keeps K
training images per class (``data.shot_seed`` picks them); validation and test stay whole.

Unreadable images: inside a loader, a file PIL cannot read never raises in a worker process. With
``data.on_bad_image: error`` the loader raises :class:`BadImageError` (a ``UsageError``: exit code 2)
naming the file as soon as its batch arrives. With ``skip`` the sample is left out of its batch (a batch
may be smaller; an entirely unreadable batch is not yielded) and its path is recorded on the loader:
``pop_bad_images(loader)`` (or ``loader.pop_bad_images()``) returns the paths recorded since the last
call and clears them, so call it once after each epoch and report the count. Indexing a dataset
directly (``splits.train[i]``) raises :class:`BadImageError` for an unreadable file in either mode.
"""
