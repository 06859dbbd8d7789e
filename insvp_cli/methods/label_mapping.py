"""Visual prompting through the source model's own classifier: the machinery ILM-VP and AutoVP share.

The frozen model keeps its pretrained classifier; the image is shrunk into the centre of a canvas with a
learnable frame around it (:class:`ExpansivePrompt`), and the *source* logits that come out are mapped to
the target classes, by a frequency mapping computed from the training split (:class:`FrequencyMapping`) or
by a trained linear layer (AutoVP's FullyMap).

The source label space (:class:`SourceLabels`). Our backbones are built without their classifier; a method
whose config sets ``keep_backbone_classifier`` gets the backbone with the classifier its weights come with
(:func:`insvp_cli.methods.build.build_backbone`), and its logits are the source label space: 21,843
ImageNet-21k classes for ``vit_base_patch16_224.augreg_in21k``. A headless backbone (a pretrained tag or a
weights file without a classifier, such as the quickstart's) has no label space to map from; it gets a
fixed random Gaussian projection of its features to ``source_classes`` pseudo-classes instead, drawn with
the model's seed and kept in a buffer so that checkpoints carry it.

Every mapping is computed from the training split only (``TrainingData``, evaluation transform) and lives
in buffers under the method's prefix; its shape depends on the config and the class count alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbone import data_config
from ..common.errors import ConfigError
from .base import ImagePrompts, Method, TrainingData, make_head
from .label_mapping_config import LabelMappingConfig


class ExpansivePrompt(nn.Module):
    """The image shrunk into the centre of a canvas of the input size, with a learnable frame around it.

    In pixel space (``[0, 1]``, before normalisation, as in ILM-VP's and AutoVP's code):
    ``x~ = pad(resize(x, s)) + sigmoid(delta) * mask``, with black padding and ``mask`` 1 outside the
    centred ``s x s`` image; the backbone sees ``x~`` normalised again. ``delta`` ``(3, H, W)`` starts at zero
    (both codes), so the frame starts mid-grey. It holds ``3 H W`` parameters, the whole canvas as in both
    codes; the masked centre never receives a gradient.

    Args:
        size: the input ``(H, W)``.
        fraction: ``s / H`` (and ``s / W``).
        mean: the backbone's normalisation mean, per channel.
        std: its standard deviation, per channel.
    """

    def __init__(self, size: tuple[int, int], fraction: float, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        height, width = size
        self.inner = (max(1, round(height * fraction)), max(1, round(width * fraction)))
        # the extra pixel of an odd margin goes before the image, as ILM-VP's l_pad = int((out - in + 1) / 2)
        self.top, self.left = (height - self.inner[0] + 1) // 2, (width - self.inner[1] + 1) // 2
        self.pads = (self.left, width - self.inner[1] - self.left, self.top, height - self.inner[0] - self.top)
        self.delta = nn.Parameter(torch.zeros(3, height, width))
        mask = torch.ones(1, 1, height, width)
        mask[..., self.top : self.top + self.inner[0], self.left : self.left + self.inner[1]] = 0
        # derived from the config and the backbone: not saved in checkpoints
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> ImagePrompts:
        """Normalised images ``(B, 3, H, W)`` -> the shrunk image, the frame and their sum, all normalised."""
        pixels = x * self.std + self.mean
        small = F.interpolate(pixels, size=self.inner, mode="bilinear", align_corners=False, antialias=True)
        # (B, 3, s, s) -> (B, 3, H, W), black around the image
        image = (F.pad(small, self.pads) - self.mean) / self.std
        prompt = (torch.sigmoid(self.delta) * self.mask / self.std).to(x.dtype)
        return ImagePrompts(image=image, prompt=prompt.expand_as(image), prompted=image + prompt)


class SourceLabels(nn.Module):
    """Pooled features ``(B, D)`` -> logits ``(B, S)`` of the source label space (see the module docstring).

    Args:
        backbone: the frozen backbone, with or without its pretrained classifier.
        fallback: ``S`` of the random projection that stands in for a headless backbone's label space.
    """

    def __init__(self, backbone: nn.Module, fallback: int):
        super().__init__()
        classifier = backbone.get_classifier() if getattr(backbone, "num_classes", 0) else None
        self.pretrained = isinstance(classifier, nn.Linear)
        if self.pretrained:
            self.classes = classifier.out_features
            self.projection = None
        else:
            self.classes = fallback
            dim = backbone.num_features
            # unit-variance logits for features of norm sqrt(D), the scale of a LayerNorm output
            self.register_buffer("projection", torch.randn(fallback, dim) / math.sqrt(dim))

    def forward(self, backbone: nn.Module, features: torch.Tensor) -> torch.Tensor:
        if self.projection is None:
            return backbone.get_classifier()(features)
        return features @ self.projection.to(features.dtype).t()


def frequency_mapping(counts: torch.Tensor, per_class: int) -> torch.Tensor:
    """The frequency label mapping of ILM-VP (``per_class`` 1) and AutoVP's FreqMap (several).

    Greedy over ``counts`` from the largest: source class ``s`` goes to target ``k`` while ``s`` is unused and
    ``k`` has fewer than ``per_class``; ties go to the smaller ``s``, then the smaller ``k`` (the order of
    ILM-VP's argmax over the flattened matrix). Targets still short once the non-zero counts are used take the
    unused source classes in order (AutoVP's rule; ILM-VP's loop picks the same ones among the zeros).

    Args:
        counts: ``(S, K)``: how often the source model predicted ``s`` for a training image of target ``k``.
        per_class: source classes per target; ``K * per_class <= S``.

    Returns:
        ``(K, per_class)`` source class indices, int64.
    """
    sources, targets = counts.shape
    flat = counts.flatten().cpu().numpy()
    nonzero = np.flatnonzero(flat)
    chosen: list[list[int]] = [[] for _ in range(targets)]
    used = np.zeros(sources, dtype=bool)
    remaining = targets * per_class
    for position in nonzero[np.argsort(-flat[nonzero], kind="stable")]:
        source, target = divmod(int(position), targets)
        if not used[source] and len(chosen[target]) < per_class:
            chosen[target].append(source)
            used[source] = True
            remaining -= 1
            if not remaining:
                break
    free = iter(np.flatnonzero(~used).tolist())
    for picks in chosen:
        picks.extend(next(free) for _ in range(per_class - len(picks)))
    return torch.tensor(chosen, dtype=torch.int64)


class FrequencyMapping(nn.Module):
    """Source logits ``(B, S)`` -> target logits ``(B, K)``: each target's logit is the mean of its source classes'.

    The buffer ``index`` ``(K, m)`` starts as the first ``K m`` source classes in order and is replaced by
    :meth:`update`.
    """

    def __init__(self, num_classes: int, per_class: int, source_classes: int):
        super().__init__()
        if num_classes * per_class > source_classes:
            raise ConfigError(f"method.per_class: {per_class} source classes for each of {num_classes} classes need "
                              f"{num_classes * per_class}; the source label space has {source_classes}")
        self.per_class = per_class
        self.register_buffer("index", torch.arange(num_classes * per_class).view(num_classes, per_class))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        # (B, S) -> (B, K, m) -> (B, K)
        return logits[:, self.index].mean(dim=-1)

    def update(self, counts: torch.Tensor) -> None:
        self.index.copy_(frequency_mapping(counts, self.per_class))


class LabelMappedMethod(Method):
    """An expansive input prompt, the frozen source classifier, an output mapping to the target classes.

    Under the prefix: ``prompt`` (:class:`ExpansivePrompt`), ``source`` (:class:`SourceLabels`) and, for a
    frequency mapping, ``mapping`` (:class:`FrequencyMapping`). ``head`` is the trained output mapping when
    the config has one (AutoVP's FullyMap, a linear layer on the source logits), else it has no parameters.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: LabelMappingConfig):
        super().__init__(backbone, num_classes, cfg)
        dcfg = data_config(backbone)
        parts = nn.Module()
        parts.prompt = ExpansivePrompt(tuple(backbone.patch_embed.img_size), cfg.image_fraction, dcfg["mean"],
                                       dcfg["std"])
        parts.source = SourceLabels(backbone, cfg.source_classes)
        learned = cfg.learned_mapping()
        parts.mapping = None if learned else FrequencyMapping(num_classes, cfg.per_class, parts.source.classes)
        setattr(self, self.prefix, parts)
        self.head = make_head(parts.source.classes, num_classes, cfg) if learned else nn.Identity()

    @property
    def parts(self) -> nn.Module:
        return getattr(self, self.prefix)

    def no_weight_decay(self) -> set[str]:
        """The frame is an input, not a weight (ILM-VP's Adam and AutoVP's default use no weight decay); a trained
        output mapping (AutoVP's FullyMap, the head) decays only when ``mapping_weight_decay`` asks, since AutoVP's
        optimizer gives it none."""
        frame = {f"{self.prefix}.prompt.delta"}
        if self.cfg.learned_mapping() and not self.cfg.mapping_weight_decay:
            return frame | {name for name, _ in self.head.named_parameters(prefix="head")}
        return frame

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        return self.parts.prompt(x)

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` -> the source model's logits ``(B, S)`` on the prompted images."""
        return self.parts.source(self.backbone, self.forward_features(x))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Features of the prompted images -> the source model's logits -> the target classes (the mapping)."""
        logits = self.parts.source(self.backbone, features)
        return self.head(logits) if self.parts.mapping is None else self.parts.mapping(logits)

    def prepare(self, data: TrainingData) -> None:
        if self.parts.mapping is not None and self.cfg.remap_every is None:
            self.remap(data)

    def on_epoch_start(self, epoch: int, data: TrainingData) -> None:
        if self.parts.mapping is not None and self.cfg.remap_every is not None and epoch % self.cfg.remap_every == 0:
            self.remap(data)

    @torch.no_grad()
    def remap(self, data: TrainingData) -> None:
        """Recompute the frequency mapping from the source model's predictions on the prompted training split."""
        was_training = self.training
        self.eval()
        sources, targets = self.parts.source.classes, self.num_classes
        counts = torch.zeros(sources * targets, dtype=torch.int64, device=data.device)
        for images, labels in data.loader():
            with data.autocast():
                predicted = self.source_logits(images.to(data.device)).argmax(dim=1)
            counts += torch.bincount(predicted * targets + labels.to(data.device), minlength=sources * targets)
        # integer counts of every process's part of the split: the same mapping on every process
        self.parts.mapping.update(data.sum(counts).view(sources, targets))
        self.train(was_training)
