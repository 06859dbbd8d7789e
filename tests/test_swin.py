"""VPT's Swin prompting (docs/method.md §3) and InsVP on tiny timm Swin Transformers."""

from __future__ import annotations

import copy
import json

import pytest
import timm
import torch
from typer.testing import CliRunner

from insvp_cli.backbone.swin import block_with_prompts, swin_features_with_prompts
from insvp_cli.cli import app
from insvp_cli.common.errors import UsageError
from insvp_cli.methods.build import build_model
from insvp_cli.resolve.layers import resolve_config
from tests.conftest import TINY_SWINS, tiny_swin_overrides

NUM_CLASSES = 5
ALL_OFF = ["method.patch_prompter=false", "method.global_prompter=false", "method.common_prompt=false",
           "method.specific_prompter=false"]


def _build(*extra: str, swin: str = "w4_d24_32px", method: str = "insvp"):
    cfg = resolve_config(None, [*tiny_swin_overrides(swin, method), *extra])
    return build_model(cfg, NUM_CLASSES)


def _images(model, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, *model.backbone.patch_embed.img_size)


def _blocks(backbone):
    """(input feature map, block) of every block, from one plain forward."""
    out, x = [], backbone.patch_embed(torch.randn(2, 3, *backbone.patch_embed.img_size))
    for stage in backbone.layers:
        x = stage.downsample(x)
        for block in stage.blocks:
            out.append((x, block))
            x = block(x)
    return out


@pytest.mark.parametrize("swin", sorted(TINY_SWINS))
def test_shapes_and_per_stage_prompts(swin):
    model = _build("method.prompt_len=3", swin=swin)
    widths = [s.blocks[0].dim for s in model.backbone.layers]
    depths = [len(s.blocks) for s in model.backbone.layers]
    assert [tuple(p.shape) for p in model.insvp.common_prompt] == [(d, 3, w) for d, w in zip(depths, widths,
                                                                                              strict=True)]
    assert isinstance(model.insvp.specific_projections[0], torch.nn.Identity)
    assert model.insvp.specific_projections[1].weight.shape == (widths[1], widths[0])
    prompts = model.feature_prompts(model.specific_prompt(model.image_prompts(_images(model))), 2)
    assert [tuple(p.shape) for p in prompts] == [(2, 3, w) for w, d in zip(widths, depths, strict=True)
                                                 for _ in range(d)]
    x = _images(model)
    assert model.forward_features(x).shape == (2, model.backbone.num_features)
    assert model(x).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("swin", sorted(TINY_SWINS))
def test_all_components_off_equals_timm(swin):
    model = _build(*ALL_OFF, swin=swin).eval()
    reference = timm.create_model("swin_tiny_patch4_window7_224", num_classes=NUM_CLASSES, **TINY_SWINS[swin])
    head = {f"head.fc.{k}": v for k, v in model.head.state_dict().items()}
    reference.load_state_dict({**model.backbone.state_dict(), **head})
    x = _images(model)
    assert torch.equal(model(x), reference.eval()(x))
    assert model.trainable_state_dict().keys() == {"head.weight", "head.bias"}


@pytest.mark.parametrize("fused", [True, False])
def test_zero_prompts_reproduce_every_timm_block(fused):
    model = _build()
    for x, block in _blocks(model.backbone):
        block.attn.fused_attn = fused
        out, p = block_with_prompts(block, x, x.new_zeros(2, 0, x.shape[-1]))
        torch.testing.assert_close(out, block(x), rtol=1e-5, atol=1e-6)
        assert p.shape == (2, 0, x.shape[-1])


def test_prompts_are_never_masked_and_the_shift_mask_still_separates_regions():
    model = _build()
    x, block = _blocks(model.backbone)[1]  # stage 0, shifted by (2, 2) on a 16 x 16 map, windows of 4
    assert block.shift_size == (2, 2) and x.shape[1:3] == (16, 16)
    x = x.detach().requires_grad_(True)
    p = torch.randn(2, 3, x.shape[-1], requires_grad=True)
    out_x, out_p = block_with_prompts(block, x, p)
    # every prompt output sees every token of every window: a masked window would give a ~e^-100 gradient
    (grad_x,) = torch.autograd.grad(out_p.sum(), x, retain_graph=True)
    assert (grad_x.abs().amax(dim=-1) > 1e-6).all()
    # every token sees the prompts
    (grad_p,) = torch.autograd.grad(out_x[..., 0].sum(), p, retain_graph=True)
    assert (grad_p.abs().amax(dim=-1) > 1e-6).all()
    with torch.no_grad():
        x2 = x.clone()
        x2[:, 0, 0] += torch.randn(x.shape[-1])  # not a constant: norm1 would remove it
        moved = (block_with_prompts(block, x2, p)[0] - out_x).abs().amax(dim=-1)
    # (0, 0) and (14, 14) share a shifted window but lie in different regions of the cyclic shift: masked
    assert moved[:, 14, 14].max() < 1e-6
    # (1, 1) is in the same region as (0, 0)
    assert moved[:, 1, 1].min() > 1e-4


def test_prompts_travel_on_through_patch_merging():
    model = _build("method.prompt_len=2", "method.prompt_blocks=1").eval()
    assert model.insvp.prompted_per_stage == [1, 0]
    assert [tuple(p.shape) for p in model.insvp.common_prompt] == [(1, 2, 24)]
    x = _images(model)
    with torch.no_grad():
        only_stage0 = model(x)
        p = model.feature_prompts(model.specific_prompt(model.image_prompts(x)), 2)
        tokens = swin_features_with_prompts(model.backbone, model.image_prompts(x).prompted, [p])
    torch.testing.assert_close(only_stage0, model.head(model.backbone.forward_head(tokens, pre_logits=True)))
    assert model.insvp.specific_projections is not None and len(model.insvp.specific_projections) == 1


@pytest.mark.parametrize("method", ["insvp", "linear"])
def test_only_trainable_parameters_learn(method):
    model = _build(method=method)
    backbone_before = copy.deepcopy(model.backbone.state_dict())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith((f"{model.prefix}.", "head.")) for n in trainable)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(_images(model)), torch.arange(2)).backward()
        # every trainable tensor gets a gradient: the prompts of every stage are wired in
        assert {n for n, p in model.named_parameters() if p.grad is not None} == trainable
        opt.step()
    assert not model.backbone.training
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), f"backbone weight {key} changed"
    assert set(model.trainable_state_dict()) == trainable
    if method == "insvp":
        assert model.no_weight_decay() == {"insvp.common_prompt.0", "insvp.common_prompt.1"}


def test_freeze_specific_prompter_freezes_its_projections():
    model = _build("method.freeze_specific_prompter=true")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad and not n.startswith("backbone.")}
    assert frozen and all(n.startswith(("insvp.specific_prompter.", "insvp.specific_projections.")) for n in frozen)
    assert all(p.requires_grad for p in model.insvp.common_prompt)


def test_params_for_the_swin_b_recipe():
    result = CliRunner().invoke(app, ["params", "--recipe", "recipes/swin/cub.yaml", "--num-classes", "200",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    components = json.loads(result.output)["components"]
    # L_p = 9 tokens in each of the 2 + 2 + 18 + 2 blocks at widths 128, 256, 512, 1024
    assert components["common_prompt"] == 9 * (2 * 128 + 2 * 256 + 18 * 512 + 2 * 1024)
    assert components["specific_projections"] == 129 * (256 + 512 + 1024)
    assert components["head"] == 1024 * 200 + 200
    assert components["patch_prompter"] == 25_360  # 16 px patches, as on ViT-B/16


def test_other_backbone_families_are_a_usage_error():
    cfg = resolve_config(None, ["backbone.name=resnet18", "backbone.weights=none"])
    with pytest.raises(UsageError, match="a timm ViT with a class token or a timm SwinTransformer; ResNet is neither"):
        build_model(cfg, NUM_CLASSES)
