"""The ``damvp`` method's model (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ...backbone.vit import pool
from ...common.errors import UsageError
from ..base import ImagePrompts, Method, TrainingData
from ..vp.model import PadPrompt, frame_width
from .config import DamVPConfig
from .prototypes import nearest_prototype


class ClusterPrompts(nn.Module):
    """One padding prompt per cluster and the clusters' prototypes.

    Attributes:
        frames: the ``num_clusters`` prompts (:class:`~insvp_cli.methods.vp.model.PadPrompt` strips), all
            starting from one standard-normal draw, as DAM-VP copies one prompter to every cluster.
        prototypes: buffer ``(num_clusters, D)``, the mean frozen feature of each cluster (zeros until
            :meth:`DamVP.prepare` clusters the training set: every image then takes cluster 0).
    """

    def __init__(self, num_clusters: int, height: int, width: int, pad: int, dim: int):
        super().__init__()
        self.frames = PadPrompt(height, width, pad, count=num_clusters)
        with torch.no_grad():
            for strips in self.frames.parameters():
                strips.copy_(strips[:1].expand_as(strips))
        self.register_buffer("prototypes", torch.zeros(num_clusters, dim))

    def assign(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(B, D)`` -> the index of the nearest prototype, ``(B,)``."""
        return nearest_prototype(features, self.prototypes)


class DamVP(Method):
    """``x + prompt[nearest prototype of f(x)]`` into the frozen backbone, then the head."""

    prefix = "damvp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: DamVPConfig):
        super().__init__(backbone, num_classes, cfg)
        height, width = backbone.patch_embed.img_size
        self.damvp = ClusterPrompts(cfg.num_clusters, height, width, frame_width(cfg.pad, height, width),
                                    backbone.num_features)

    def no_weight_decay(self) -> set[str]:
        """The prompts are inputs, not weights: no decay, as for VP's prompt."""
        return {f"damvp.{name}" for name, _ in self.damvp.named_parameters()}

    @torch.no_grad()
    def frozen_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's pooled features of the unprompted images, ``(B, D)``: what clusters them."""
        return pool(self.backbone, self.backbone.forward_features(x))

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        """Each image's cluster prompt ``(B, 3, H, W)`` and the prompted images."""
        # (n, 3, H, W)[cluster of each image] -> (B, 3, H, W)
        prompt = self.damvp.frames()[self.damvp.assign(self.frozen_features(x))].to(x.dtype)
        return ImagePrompts(image=x, prompt=prompt, prompted=x + prompt)

    def prepare(self, data: TrainingData) -> None:
        """Cluster the training set into the prototypes; meta-train the shared starting prompt if asked.

        The images are clustered as training sees them, augmented, as DAM-VP clusters the batches of its training
        loader (the evaluation transform where no augmenting loader is given)."""
        loader = data.loader if data.augmented_loader is None else data.augmented_loader
        self.damvp.prototypes.copy_(self.cluster(self.features_of(loader(), data)).to(data.device))
        if self.cfg.meta_data:
            from .meta import meta_train

            meta_train(self, self.cfg.meta_datasets(), data)

    def features_of(self, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], data: TrainingData) -> torch.Tensor:
        """The frozen features ``(N, D)`` (float32, on the CPU) of the images of ``loader``, a part of a split under
        ``torchrun``: every process gets the whole split's, in its order."""
        with data.autocast():
            features = [self.frozen_features(images.to(data.device)).float() for images, _ in loader]
        own = torch.cat(features) if features else torch.zeros(0, self.backbone.num_features, device=data.device)
        return data.gather(own).cpu()

    def cluster(self, features: torch.Tensor) -> torch.Tensor:
        """Prototypes ``(num_clusters, D)`` of (a seeded sample of) ``features`` ``(N, D)``.

        DAM-VP's clustering: agglomerative, average linkage, on at most ``cluster_samples`` features; here
        cut at ``num_clusters`` clusters. Clusters are ordered by their first sampled image, so the result
        does not depend on scikit-learn's label numbering.

        Raises:
            UsageError: fewer images than clusters.
        """
        from sklearn.cluster import AgglomerativeClustering

        k = self.cfg.num_clusters
        if len(features) < k:
            raise UsageError(f"method.num_clusters: {k} clusters need at least {k} training images; "
                             f"the training split has {len(features)}")
        sample = features[torch.randperm(len(features))[: self.cfg.cluster_samples]]
        labels = AgglomerativeClustering(n_clusters=k, linkage="average").fit(sample.numpy()).labels_
        _, first = np.unique(labels, return_index=True)
        order = labels[np.sort(first)]  # cluster labels in order of first appearance
        return torch.stack([sample[torch.from_numpy(labels == c)].mean(dim=0) for c in order])
