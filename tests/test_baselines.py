"""The comparison methods: parameter counts by formula on ViT-B/16, and behaviour on tiny ViTs."""

from __future__ import annotations

import copy
import json

import pytest
import timm
import torch
from timm.models.vision_transformer import ResPostBlock
from typer.testing import CliRunner

from insvp_cli.backbone import create_backbone
from insvp_cli.backbone.vit import pool
from insvp_cli.cli import app
from insvp_cli.common.errors import ConfigError, UsageError
from insvp_cli.config.schema import BackboneConfig
from insvp_cli.experiments.params import compare_methods
from insvp_cli.methods import METHODS
from insvp_cli.methods.build import build_model
from insvp_cli.methods.params import count_parameters, shape_only
from insvp_cli.resolve.layers import resolve_config
from tests.conftest import TINY_VITS, tiny_model, tiny_overrides

VIT_B = "vit_base_patch16_224"
D, DEPTH, K = 768, 12, 100
HEAD = D * K + K
VIT_B_PARAMS = 85_798_656
BLOCK = 12 * D * D + 13 * D  # qkv 3d^2+3d, proj d^2+d, fc1 4d^2+4d, fc2 4d^2+d, two LayerNorms 4d


def adapter_params(width: int, dim: int = D) -> int:
    """One bottleneck ``d -> r -> d`` with biases."""
    return 2 * dim * width + width + dim


# Extra trainable parameters (without the head) of every method at its defaults on ViT-B/16
EXPECTED_DEFAULTS = {
    "adapter": DEPTH * adapter_params(D // 8),  # Pfeiffer placement, reduction 8
    "adaptformer": DEPTH * adapter_params(64),
    "bias": DEPTH * 11 * D + 2 * D,  # per block qkv 3d, proj d, fc1 4d, fc2 d, norms 2d; patch embed, final norm
    "damvp": 10 * (2 * 3 * 30 * 224 + 2 * 3 * (224 - 60) * 30),  # ten clusters, one VP frame each
    "e2vpt": DEPTH * 10 * D + DEPTH * 5 * D,  # deep visual prompts, shared key-value prompts
    "full": VIT_B_PARAMS,
    "linear": 0,
    "mlp": 2 * (D * D + D + 2 * D),  # two hidden layers of width d, each with BatchNorm
    "partial": BLOCK + 2 * D,  # the last block and the final norm
    "sidetune": 2_469_696 + 256 * 6 * 6 * D + 1,  # AlexNet's convolutions, the projection, alpha
    "vp": 2 * 3 * 30 * 224 + 2 * 3 * (224 - 60) * 30,  # 69,840, as in Bahng et al.
    "vpt": DEPTH * 10 * D,  # VPT-deep, 10 tokens
    "ilmvp": 3 * 224 * 224,  # the frame's canvas; no trained head
    "autovp": 3 * 224 * 224,  # the frame's canvas; FullyMap is the head
    "yoo": 100 * D + (DEPTH - 1) + DEPTH,  # 100 tokens, a gate per block but the last, a temperature per block
    "transhp": 2 * 20 * D,  # a prompt and a vector per CIFAR-100 superclass
    "lion": (9 * 8**2 + 31 * 8 + 3) + (2 * D * 64 + 64**2 + 64 + D),  # implicit layers of 8 channels, 64 units
}
# the label-mapping methods keep the backbone's classifier (ViT-B/16's default tag: 1,000 ImageNet classes): the
# source label space, part of the frozen model; ILM-VP trains no head, AutoVP's FullyMap maps those classes
SOURCE_CLASSIFIER = D * 1000 + 1000
HEADS = {"ilmvp": 0, "autovp": 1000 * K + K}


@pytest.fixture(scope="module")
def vit_b() -> torch.nn.Module:
    """ViT-B/16 on the meta device: every parameter's shape, no memory, no initialisation."""
    with torch.device("meta"):
        return create_backbone(BackboneConfig(name=VIT_B, weights="none"))


def build_vit_b(vit_b, method: str, *sets: str):
    cfg = resolve_config(None, [f"method.name={method}", f"backbone.name={VIT_B}", "backbone.weights=none", *sets])
    return shape_only(cfg, K, backbone=copy.deepcopy(vit_b))


def trained_backbone_names(model) -> set[str]:
    return {n for n, p in model.backbone.named_parameters() if p.requires_grad}


# ---- counts by formula on ViT-B/16 ---------------------------------------------------------------


def test_vit_b_shape(vit_b):
    assert sum(p.numel() for p in vit_b.parameters()) == VIT_B_PARAMS == DEPTH * BLOCK + 2 * D + 197 * D + D + (
        3 * 16 * 16 * D + D
    )


@pytest.mark.parametrize("tokens", [1, 10, 50])
@pytest.mark.parametrize("deep", [True, False])
def test_vpt_counts(vit_b, tokens, deep):
    report = count_parameters(
        build_vit_b(vit_b, "vpt", f"method.num_tokens={tokens}", f"method.deep={str(deep).lower()}"), "vpt", VIT_B
    )
    prompts = (DEPTH if deep else 1) * tokens * D
    assert report.components == {"backbone": VIT_B_PARAMS, "head": HEAD, "tokens": prompts}
    assert (report.trainable_without_head, report.trainable) == (prompts, prompts + HEAD)


def test_bias_counts_every_bias_entry(vit_b):
    model = build_vit_b(vit_b, "bias")
    biases = {n for n, _ in model.backbone.named_parameters() if n.endswith(".bias")}
    assert trained_backbone_names(model) == biases
    report = count_parameters(model, "bias", VIT_B)
    assert report.trainable_without_head == EXPECTED_DEFAULTS["bias"] == 102_912
    assert report.trainable_without_head == sum(p.numel() for n, p in model.backbone.named_parameters() if n in biases)


@pytest.mark.parametrize(("placement", "reduction", "per_block"), [("pfeiffer", 8, 1), ("houlsby", 8, 2),
                                                                   ("pfeiffer", 64, 1)])
def test_adapter_counts(vit_b, placement, reduction, per_block):
    model = build_vit_b(vit_b, "adapter", f"method.placement={placement}", f"method.reduction={reduction}")
    report = count_parameters(model, "adapter", VIT_B)
    assert report.trainable_without_head == DEPTH * per_block * adapter_params(D // reduction)
    assert trained_backbone_names(model) == set()


@pytest.mark.parametrize("bottleneck", [64, 8])
def test_adaptformer_counts(vit_b, bottleneck):
    report = count_parameters(build_vit_b(vit_b, "adaptformer", f"method.bottleneck={bottleneck}"), "adaptformer",
                              VIT_B)
    assert report.trainable_without_head == DEPTH * (2 * D * bottleneck + bottleneck + D)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_partial_counts_last_k_blocks_and_final_norm(vit_b, k):
    model = build_vit_b(vit_b, "partial", f"method.blocks={k}")
    expected = {n for n, _ in model.backbone.named_parameters()
                if n.startswith(tuple(f"blocks.{j}." for j in range(DEPTH - k, DEPTH))) or n.startswith("norm.")}
    assert trained_backbone_names(model) == expected
    assert count_parameters(model, "partial", VIT_B).trainable_without_head == k * BLOCK + 2 * D


@pytest.mark.parametrize(("sets", "hidden_params", "head"), [
    ((), 2 * (D * D + D + 2 * D), HEAD),
    (("method.layers=2", "method.hidden=512"), D * 512 + 512 + 2 * 512, 512 * K + K),
    (("method.layers=4", "method.norm=false"), 3 * (D * D + D), HEAD),
])
def test_mlp_counts(vit_b, sets, hidden_params, head):
    model = build_vit_b(vit_b, "mlp", *sets)
    report = count_parameters(model, "mlp", VIT_B)
    assert (report.trainable_without_head, report.trainable - report.trainable_without_head) == (hidden_params, head)
    assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == K


def test_linear_and_full_counts(vit_b):
    linear = count_parameters(build_vit_b(vit_b, "linear"), "linear", VIT_B)
    assert (linear.trainable, linear.trainable_without_head) == (HEAD, 0)
    model = build_vit_b(vit_b, "full")
    assert trained_backbone_names(model) == {n for n, _ in model.backbone.named_parameters()}
    full = count_parameters(model, "full", VIT_B)
    assert (full.trainable, full.trainable_without_head, full.backbone_trainable) == (
        VIT_B_PARAMS + HEAD, VIT_B_PARAMS, VIT_B_PARAMS)
    assert {"backbone.cls_token", "backbone.pos_embed"} <= model.no_weight_decay()


def test_vp_counts(vit_b):
    report = count_parameters(build_vit_b(vit_b, "vp"), "vp", VIT_B)
    assert report.components == {"backbone": VIT_B_PARAMS, "head": HEAD, "top": 3 * 30 * 224,
                                  "bottom": 3 * 30 * 224, "left": 3 * 164 * 30, "right": 3 * 164 * 30}
    assert report.trainable_without_head == EXPECTED_DEFAULTS["vp"] == 69_840


def test_compare_on_vit_b_lists_every_method_with_formula_counts(vit_b):
    """Acceptance: ``insvp params --compare --backbone vit_base_patch16_224 --num-classes 100``."""
    result = CliRunner().invoke(app, ["params", "--compare", "--backbone", VIT_B, "--num-classes", str(K),
                                      "--format", "json", "--set", "data.name=cifar100"])  # TransHP's hierarchy
    assert result.exit_code == 0, result.output
    reports = {r["method"]: r for r in json.loads(result.output)}
    assert list(reports) == METHODS.names()
    assert set(EXPECTED_DEFAULTS) | {"insvp"} <= set(reports)
    for name, extra in EXPECTED_DEFAULTS.items():
        assert reports[name]["trainable_without_head"] == extra, name
    insvp = count_parameters(build_vit_b(vit_b, "insvp"), "insvp", VIT_B)
    assert reports["insvp"]["trainable_without_head"] == insvp.trainable_without_head
    for report in reports.values():  # every other head is 768 -> 100 (MLP-k's hidden width defaults to 768)
        kept = SOURCE_CLASSIFIER if report["method"] in HEADS else 0
        assert report["backbone_params"] == VIT_B_PARAMS + kept
        assert report["trainable"] - report["trainable_without_head"] == HEADS.get(report["method"], HEAD)


# ---- behaviour on tiny ViTs ----------------------------------------------------------------------


def _frozen_features(model, x: torch.Tensor) -> torch.Tensor:
    return pool(model.backbone, model.backbone.forward_features(x))


@pytest.mark.parametrize("vit", sorted(TINY_VITS))
@pytest.mark.parametrize(("method", "sets"), [
    ("adapter", ("method.placement=pfeiffer",)),
    ("adapter", ("method.placement=houlsby", "method.activation=relu")),
    ("adaptformer", ("method.adapter_input=norm",)),
    ("adaptformer", ("method.adapter_input=residual",)),
])
def test_zero_initialised_bottlenecks_start_as_the_backbone(vit, method, sets):
    model = tiny_model(method, *sets, vit=vit).eval()
    x = torch.randn(2, 3, *model.backbone.patch_embed.img_size)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), _frozen_features(model, x))
        for name, param in model.named_parameters():  # wake the up-projections: the bottlenecks are wired in
            if name.startswith(f"{method}.") and ".up." in name:
                param.normal_()
        assert not torch.allclose(model.forward_features(x), _frozen_features(model, x))


def test_adapter_methods_reject_other_block_types():
    kw = dict(TINY_VITS["p8_d48_32px"])
    backbone = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, block_fn=ResPostBlock, **kw)
    cfg = resolve_config(None, tiny_overrides("p8_d48_32px", "adapter"))
    with pytest.raises(UsageError, match="ResPostBlock"):
        build_model(cfg, 5, backbone=backbone)


def _block_inputs(model, x: torch.Tensor) -> list[torch.Tensor]:
    """The token sequence entering each block."""
    seen: list[torch.Tensor] = []
    hooks = [b.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
             for b in model.backbone.blocks]
    try:
        with torch.no_grad():
            model.forward_features(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.parametrize("deep", [True, False])
def test_vpt_shallow_and_deep_prompt_placement(deep):
    tokens = 3
    model = tiny_model("vpt", f"method.num_tokens={tokens}", f"method.deep={str(deep).lower()}", vit="p4_d96_32px")
    model.eval()
    depth, patches = len(model.backbone.blocks), (32 // 4) ** 2
    assert model.vpt.tokens.shape == ((depth if deep else 1), tokens, 96)
    inputs = _block_inputs(model, torch.randn(2, 3, 32, 32))
    for j, seq in enumerate(inputs):
        assert seq.shape == (2, 1 + tokens + patches, 96)  # [cls, prompts, patches] in every block
        prompt_slot = seq[:, 1 : 1 + tokens]
        if deep or j == 0:  # a fresh set of prompts (eval mode: no dropout)
            assert torch.equal(prompt_slot, model.vpt.tokens[j if deep else 0].expand(2, -1, -1))
        else:  # shallow: the previous block's outputs at the prompt positions travel on
            assert not torch.allclose(prompt_slot, model.vpt.tokens[0].expand(2, -1, -1))


def test_vpt_shallow_and_deep_differ():
    shallow = tiny_model("vpt", "method.deep=false", vit="p4_d96_32px").eval()
    deep = tiny_model("vpt", "method.deep=true", vit="p4_d96_32px").eval()
    deep.backbone.load_state_dict(shallow.backbone.state_dict())
    with torch.no_grad():
        deep.vpt.tokens[0].copy_(shallow.vpt.tokens[0])
        x = torch.randn(2, 3, 32, 32)
        assert not torch.allclose(shallow.forward_features(x), deep.forward_features(x))
    assert shallow.no_weight_decay() == deep.no_weight_decay() == {"vpt.tokens"}


def test_vpt_init_is_xavier_uniform_over_patch_fans():
    model = tiny_model("vpt", "method.num_tokens=50", vit="p16_d64_64px").eval()
    bound = (6.0 / (3 * 16 * 16 + 64)) ** 0.5
    assert model.vpt.tokens.abs().max() <= bound
    assert model.vpt.tokens.abs().max() > 0.9 * bound  # 50 x 64 x 2 draws fill the interval


@pytest.mark.parametrize(("vit", "sets", "pad"), [("p8_d48_32px", (), 4), ("p16_d64_64px", (), 9),
                                                  ("p8_d48_32px", ("method.pad=2",), 2)])
def test_vp_prompt_touches_only_the_border(vit, sets, pad):
    model = tiny_model("vp", *sets, vit=vit).eval()
    h, w = model.backbone.patch_embed.img_size
    seen: list[torch.Tensor] = []
    hook = model.backbone.patch_embed.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        model.forward_features(x)
    hook.remove()
    prompted = seen[0]
    assert torch.equal(prompted[..., pad : h - pad, pad : w - pad], x[..., pad : h - pad, pad : w - pad])
    border = torch.ones(h, w, dtype=torch.bool)
    border[pad : h - pad, pad : w - pad] = False
    assert (prompted != x)[..., border].all()  # every border pixel gets a (standard-normal) prompt value


def test_vp_pad_must_leave_a_centre():
    with pytest.raises(ConfigError, match="method.pad"):
        tiny_model("vp", "method.pad=16").eval()


def test_partial_needs_enough_blocks():
    with pytest.raises(ConfigError, match="method.blocks: 3 is more than the 2 blocks"):
        tiny_model("partial", "method.blocks=3").eval()


def test_mlp_features_stay_the_backbone_features():
    model = tiny_model("mlp", "method.hidden=32", "method.layers=3").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), _frozen_features(model, x))
        assert model(x).shape == (4, 5)
    assert model.head.in_features == 32
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.mlp.modules()) == 2


@pytest.mark.parametrize(("method", "frozen"), [("bias", ".weight"), ("partial", "blocks.0."), ("full", None)])
def test_backbone_tuning_methods_train_in_train_mode(method, frozen):
    model = tiny_model(method).train()
    assert model.backbone.training
    names = trained_backbone_names(model)
    assert names
    if frozen is not None:
        assert not any(frozen in n for n in names)


# ---- params --compare ----------------------------------------------------------------------------

TINY = ["--backbone", "vit_tiny_patch16_224", "--set", "backbone.img_size=32",
        "--set", "backbone.kwargs={patch_size: 8, embed_dim: 48, depth: 2, num_heads: 2}"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_compare_formats_list_every_method(fmt):
    result = CliRunner().invoke(app, ["params", "--compare", *TINY, "--num-classes", "5", "--format", fmt,
                                      "--set", "data.name=cifar100"])  # a dataset with a hierarchy: TransHP too
    assert result.exit_code == 0, result.output
    for name in METHODS.names():
        assert name in result.output
    if fmt == "csv":
        lines = result.output.strip().splitlines()
        assert lines[0].startswith("method,") and len(lines) == 1 + len(METHODS.names())
        assert "linear,0,245," in result.output  # head 48 x 5 + 5
    if fmt == "markdown":
        assert result.output.count("\n") == 2 + len(METHODS.names())


def test_compare_method_keys_apply_where_they_exist(tmp_path):
    tiny = dict(TINY_VITS["p8_d48_32px"])
    img = tiny.pop("img_size")
    backbone = {"name": "vit_tiny_patch16_224", "img_size": img, "kwargs": tiny}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"backbone": backbone, "method": {"name": "vpt", "deep": False},
                                  "methods": {"adapter": {"reduction": 4}}}))
    reports = {r.method: r for r in compare_methods(None, 5, ["method.num_tokens=3"], recipe=recipe)}
    assert reports["vpt"].trainable_without_head == 3 * 48  # recipe's method group + override, shallow
    assert reports["adapter"].trainable_without_head == 2 * adapter_params(48 // 4, dim=48)  # per-method delta
    assert reports["adaptformer"].trainable_without_head == 2 * adapter_params(64, dim=48)  # untouched defaults


@pytest.mark.parametrize(("sets", "match"), [(["method.name=vpt"], "leave method.name out"),
                                             (["method.nope=1"], "unknown key method.nope")])
def test_compare_rejects_bad_method_keys(sets, match):
    with pytest.raises(ConfigError, match=match):
        compare_methods("vit_tiny_patch16_224", 5, sets)
