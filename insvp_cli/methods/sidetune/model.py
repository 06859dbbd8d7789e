"""The ``sidetune`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import AlexNet_Weights, alexnet

from ...backbone import data_config
from ...backbone.weights import read_state_dict, resolve_weights_path
from ...common.errors import ConfigError, UsageError, first_sentence
from ..base import Method, TrainingData
from .config import MIN_SIDE_SIZE, SidetuneConfig

# what torchvision's pretrained AlexNet expects (ImageNet statistics)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """``(size_out, size_in)``: the weights of ``F.interpolate(mode="bilinear", align_corners=False)`` along one axis.

    Resizing with these constants (two matrix products) gives PyTorch's bilinear values in every runtime: an
    exported ``Resize`` operator computes its own coordinates, and ONNX Runtime's differ by about 1e-5.
    """
    # (1, n_in, n_in) identity rows, each interpolated to n_out: (1, n_in, n_out) -> (n_out, n_in)
    return F.interpolate(torch.eye(size_in)[None], size=size_out, mode="linear", align_corners=False)[0].T


class SideNetwork(nn.Module):
    """AlexNet's ``features`` and ``avgpool`` -> ``(B, 9216)`` -> projection (no bias) -> ``(B, D)``; and ``alpha``.

    Args:
        dim: the backbone's feature width ``D``.
        mean, std: the backbone's input normalisation, undone before ImageNet's is applied.
        input_size: the ``(H, W)`` of the images it is given.
        image_size: the side network's input size (``None``: as given).
    """

    def __init__(self, dim: int, mean: tuple[float, ...], std: tuple[float, ...], input_size: tuple[int, int],
                 image_size: int | None):
        super().__init__()
        net = alexnet(weights=None)
        self.features, self.avgpool = net.features, net.avgpool
        self.projection = nn.Linear(256 * 6 * 6, dim, bias=False)
        self.alpha = nn.Parameter(torch.tensor(0.0))
        self.image_size = image_size
        # x_side = (x * std_b + mean_b - mean_in) / std_in = x * scale + shift, per channel
        scale = torch.tensor(std) / torch.tensor(_IMAGENET_STD)
        shift = (torch.tensor(mean) - torch.tensor(_IMAGENET_MEAN)) / torch.tensor(_IMAGENET_STD)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.resize = image_size is not None and tuple(input_size) != (image_size, image_size)
        if self.resize:
            self.register_buffer("rows", resize_matrix(input_size[0], image_size), persistent=False)
            self.register_buffer("cols", resize_matrix(input_size[1], image_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale + self.shift  # the backbone's normalisation -> ImageNet's
        if self.resize:
            # (S, H) x (B, C, H, W) x (S, W) -> (B, C, S, S): bilinear resize as two matrix products
            x = torch.einsum("oh,bchw,pw->bcop", self.rows, x, self.cols)
        # (B, 256, 6, 6) -> (B, 9216)
        return self.projection(self.avgpool(self.features(x)).flatten(1))

    def load_pretrained(self, weights: str) -> None:
        """Load AlexNet's convolutional weights: torchvision's ImageNet weights or a local state dict.

        Raises:
            UsageError: no network and no cached copy, or a file that is not an AlexNet state dict.
        """
        if weights == "torchvision":
            try:
                state = AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            except Exception as exc:  # URLError offline, HTTP errors, a truncated download: one message
                raise UsageError(
                    f"method.side_weights=torchvision: could not get torchvision's ImageNet AlexNet "
                    f"({first_sentence(exc)}); pass a local file instead: --set method.side_weights=PATH "
                    f"(a torchvision AlexNet state dict, .pth/.pt/.safetensors), or none for random init"
                ) from None
        else:
            state = read_state_dict(resolve_weights_path(weights), "method.side_weights")
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        try:
            self.features.load_state_dict(features)
        except RuntimeError as exc:
            raise UsageError(f"method.side_weights: {weights} is not a torchvision AlexNet state dict "
                             f"({first_sentence(exc)})") from None


class Sidetune(Method):
    """``a * f(x) + (1 - a) * W s(x)`` into the head, ``f`` the frozen backbone's pooled features."""

    prefix = "sidetune"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: SidetuneConfig):
        super().__init__(backbone, num_classes, cfg)
        preprocessing = data_config(backbone)
        height, width = preprocessing["input_size"][1:]
        if cfg.side_image_size is None and min(height, width) < MIN_SIDE_SIZE:
            raise ConfigError(f"method.side_image_size: null feeds AlexNet the {height}x{width} input, smaller than "
                              f"its minimum {MIN_SIDE_SIZE} px; set a size (224 is AlexNet's)")
        self.sidetune = SideNetwork(backbone.num_features, tuple(preprocessing["mean"]), tuple(preprocessing["std"]),
                                    (height, width), cfg.side_image_size)

    def prepare(self, data: TrainingData) -> None:
        """Start the side network from its pretrained weights (``side_weights``) before the first epoch."""
        if self.cfg.side_weights != "none":
            self.sidetune.load_pretrained(self.cfg.side_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(self.sidetune.alpha)
        return a * super().forward_features(x) + (1 - a) * self.sidetune(x)
