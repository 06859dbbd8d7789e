"""Registry-driven tests: every registered method is checked the day it is registered."""

from __future__ import annotations

import copy

import pytest
import torch

from insvp_cli.methods import METHODS
from insvp_cli.methods.build import build_model
from tests.conftest import TINY_VITS, tiny_config, tiny_overrides

NUM_CLASSES = 5


def _build(method: str, vit: str = "p8_d48_32px", extra: tuple[str, ...] = ()):
    cfg = tiny_config([*tiny_overrides(vit, method), *extra])
    return build_model(cfg, NUM_CLASSES), cfg


def _images(model, batch: int = 3) -> torch.Tensor:
    h, w = model.backbone.patch_embed.img_size
    return torch.randn(batch, 3, h, w)


@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.parametrize("vit", sorted(TINY_VITS))
def test_shapes(method, vit):
    model, _ = _build(method, vit)
    x = _images(model)
    assert model.forward_features(x).shape == (3, model.backbone.num_features)
    assert model(x).shape == (3, NUM_CLASSES)


# VPT's zero-initialised adapters (the adapter's default) train only the up-projections' biases by
# construction (tests/test_baselines.py checks exactly that); here every weight must be wired in.
LEARN_SETS = {"adapter": ("method.init=houlsby",)}


@pytest.mark.parametrize("method", METHODS.names())
def test_only_trainable_parameters_learn(method):
    model, _ = _build(method, extra=LEARN_SETS.get(method, ()))
    backbone_before = copy.deepcopy(model.backbone.state_dict())
    params_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "a method must train something"
    assert all(n.startswith((f"{model.prefix}.", "head.", "backbone.")) for n in trainable)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(2):
        opt.zero_grad()
        # the method's own loss: auxiliary terms (TransHP's coarse loss) train parameters of their own
        logits, aux = model(_images(model), with_aux=True)
        model.loss(logits, torch.arange(3), torch.nn.CrossEntropyLoss(), **aux).backward()
        # both directions: every trainable parameter gets a gradient, and no frozen one does
        with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
        assert with_grad == trainable, (sorted(trainable - with_grad)[:4], sorted(with_grad - trainable)[:4])
        opt.step()
    unchanged = [n for n in trainable if torch.equal(dict(model.named_parameters())[n], params_before[n])]
    assert not unchanged, f"trainable parameters that did not learn: {unchanged}"
    # a backbone that trains (full, partial, bias) follows train mode; a frozen one stays in eval mode
    assert model.backbone.training == model.backbone_trains, "backbone mode"
    for key, value in model.backbone.state_dict().items():
        if f"backbone.{key}" not in trainable:
            assert torch.equal(value, backbone_before[key]), f"frozen backbone weight {key} changed"
    assert set(model.trainable_state_dict()) >= trainable


@pytest.mark.parametrize("method", METHODS.names())
def test_build_is_seeded(method):
    a, _ = _build(method)
    b, _ = _build(method)
    for (name, pa), pb in zip(a.trainable_state_dict().items(), b.trainable_state_dict().values(), strict=True):
        if not name.startswith("backbone."):
            assert torch.equal(pa, pb), name


@pytest.mark.parametrize("method", METHODS.names())
def test_no_weight_decay_names_exist(method):
    model, _ = _build(method)
    names = dict(model.named_parameters())
    assert model.no_weight_decay() <= set(names)
