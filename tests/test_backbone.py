"""Backbone loading from local files, key checks, freezing and the offline hub."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from insvp_cli.backbone import create_backbone, data_config
from insvp_cli.backbone.patch_embed import PatchConv2d
from insvp_cli.backbone.weights import from_moco_v3
from insvp_cli.common.errors import UsageError
from insvp_cli.config.schema import BackboneConfig

KW = dict(patch_size=8, embed_dim=48, depth=2, num_heads=2)


def _cfg(weights: str, **kw) -> BackboneConfig:
    return BackboneConfig(name="vit_tiny_patch16_224", weights=weights, img_size=32, kwargs=kw or KW)


@pytest.fixture
def source():
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=10, **KW)


@pytest.mark.parametrize(("suffix", "wrapper"), [(".safetensors", None), (".pth", None), (".pt", "model"),
                                                 (".pth", "state_dict")])
def test_local_files_load(tmp_path, source, suffix, wrapper):
    path = tmp_path / f"w{suffix}"
    state = source.state_dict()
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({wrapper: state} if wrapper else state, path)
    model = create_backbone(_cfg(str(path)))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training


def test_missing_and_unexpected_keys_are_named(tmp_path, source):
    state = source.state_dict()
    del state["blocks.1.mlp.fc2.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(UsageError, match=r"missing keys blocks\.1\.mlp\.fc2\.weight; unexpected keys extra\.weight"):
        create_backbone(_cfg(str(path)))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "obj": object()}, path)
    with pytest.raises(UsageError, match="not a readable torch weights file"):
        create_backbone(_cfg(str(path)))


def test_bad_paths_and_names(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        create_backbone(_cfg(str(tmp_path / "absent.pth")))
    with pytest.raises(UsageError, match="unknown suffix"):
        create_backbone(_cfg(str(tmp_path / "w.ckpt")))
    with pytest.raises(UsageError, match="is not a timm model"):
        create_backbone(BackboneConfig(name="vit_nonexistent_patch3", weights="none"))


def test_offline_hub_fails_fast_and_names_the_local_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"backbone\.weights=PATH"):
        create_backbone(BackboneConfig(name="vit_tiny_patch16_224.augreg_in21k", weights="timm"))
    assert time.monotonic() - start < 15


def test_data_config_comes_from_the_pretrained_cfg():
    model = create_backbone(BackboneConfig(name="vit_base_patch16_224.augreg_in21k", weights="none", img_size=32,
                                           kwargs=KW))
    cfg = data_config(model)
    assert cfg["input_size"] == (3, 32, 32)
    assert cfg["mean"] == (0.5, 0.5, 0.5)


def _moco_v3_checkpoint(vit: torch.nn.Module) -> tuple[dict, set[str]]:
    """A MoCo v3 pre-training checkpoint for ``vit``, in the official key layout, and the keys a loader must drop.

    MoCo v3 replaces the base encoder's head by a 3-layer projection MLP (the last BatchNorm without affine),
    keeps a momentum copy of the whole encoder and adds a 2-layer predictor.
    """
    dim, hidden, out = vit.embed_dim, 32, 16

    def mlp(layers: int, d_in: int) -> torch.nn.Sequential:
        mods: list[torch.nn.Module] = []
        for i in range(layers):
            last = i == layers - 1
            d_out = out if last else hidden
            mods += [torch.nn.Linear(d_in if i == 0 else hidden, d_out, bias=False),
                     torch.nn.BatchNorm1d(d_out, affine=not last)]
            if not last:
                mods.append(torch.nn.ReLU())
        return torch.nn.Sequential(*mods)

    encoder = {k: v for k, v in vit.state_dict().items() if not k.startswith("head.")}
    projector = {f"head.{k}": v for k, v in mlp(3, dim).state_dict().items()}
    state = {f"module.base_encoder.{k}": v for k, v in {**encoder, **projector}.items()}
    momentum = {f"module.momentum_encoder.{k}": v.clone() for k, v in {**encoder, **projector}.items()}
    predictor = {f"module.predictor.{k}": v for k, v in mlp(2, out).state_dict().items()}
    state.update(momentum)
    state.update(predictor)
    dropped = {*momentum, *predictor, *(f"module.base_encoder.{k}" for k in projector)}
    return state, dropped


def test_moco_v3_dropped_keys_are_exactly_the_heads_and_the_momentum_encoder(source):
    state, dropped = _moco_v3_checkpoint(source)
    kept, got = from_moco_v3(state)
    assert set(got) == dropped
    assert "module.base_encoder.head.1.running_mean" in got  # the projector's BatchNorm
    assert set(kept) == {k for k in source.state_dict() if not k.startswith("head.")}
    # anything else stays, so that loading names it as an unexpected key
    assert "module.extra.weight" in from_moco_v3({**state, "module.extra.weight": torch.zeros(1)})[0]


@pytest.mark.parametrize("wrapped", [True, False])
def test_moco_v3_checkpoint_loads_into_a_timm_vit(tmp_path, source, wrapped):
    state, _ = _moco_v3_checkpoint(source)
    # the official files are {"epoch", "arch", "state_dict", "optimizer", "scaler"} saved as .pth.tar
    ckpt = {"epoch": 300, "arch": "vit_base", "state_dict": state,
            "optimizer": {"state": {}, "param_groups": [{"lr": 1.5e-4, "params": [0]}]}} if wrapped else state
    path = tmp_path / "vit-b-300ep.pth.tar"
    torch.save(ckpt, path)
    model = create_backbone(_cfg(str(path)))
    reference = source.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key


def _google_npz(vit: torch.nn.Module) -> dict[str, np.ndarray]:
    """``vit``'s weights in the key layout and array shapes of Google's ``imagenet21k/ViT-B_16.npz``.

    Flax stores dense kernels as (in, out), convolutions as (h, w, in, out) and attention kernels per head:
    query/key/value (D, heads, head_dim), out (heads, head_dim, D).
    """
    sd = {k: v.detach().numpy() for k, v in vit.state_dict().items()}
    dim, heads = vit.embed_dim, vit.blocks[0].attn.num_heads
    w = {
        "embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),  # (D, C, p, p) -> (p, p, C, D)
        "embedding/bias": sd["patch_embed.proj.bias"],
        "cls": sd["cls_token"],
        "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
        "Transformer/encoder_norm/scale": sd["norm.weight"],
        "Transformer/encoder_norm/bias": sd["norm.bias"],
        # the in21k files also hold the representation layer and the 21k head; a headless ViT ignores both
        "pre_logits/kernel": np.zeros((dim, dim), np.float32),
        "pre_logits/bias": np.zeros(dim, np.float32),
        "head/kernel": sd["head.weight"].T,
        "head/bias": sd["head.bias"],
    }
    for i in range(len(vit.blocks)):
        b, g = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        for ours, theirs in (("norm1", "LayerNorm_0"), ("norm2", "LayerNorm_2")):
            w[f"{g}{theirs}/scale"], w[f"{g}{theirs}/bias"] = sd[f"{b}{ours}.weight"], sd[f"{b}{ours}.bias"]
        qkv_w = np.split(sd[f"{b}attn.qkv.weight"], 3)  # 3 x (D_out, D_in)
        qkv_b = np.split(sd[f"{b}attn.qkv.bias"], 3)
        for name, kernel, bias in zip(("query", "key", "value"), qkv_w, qkv_b, strict=True):
            # (D_out, D_in) -> (D_in, heads, head_dim)
            w[f"{g}MultiHeadDotProductAttention_1/{name}/kernel"] = kernel.T.reshape(dim, heads, -1)
            w[f"{g}MultiHeadDotProductAttention_1/{name}/bias"] = bias.reshape(heads, -1)
        # (D_out, D_in) -> (heads, head_dim, D_out)
        w[f"{g}MultiHeadDotProductAttention_1/out/kernel"] = sd[f"{b}attn.proj.weight"].T.reshape(heads, -1, dim)
        w[f"{g}MultiHeadDotProductAttention_1/out/bias"] = sd[f"{b}attn.proj.bias"]
        for r in range(2):
            w[f"{g}MlpBlock_3/Dense_{r}/kernel"] = sd[f"{b}mlp.fc{r + 1}.weight"].T
            w[f"{g}MlpBlock_3/Dense_{r}/bias"] = sd[f"{b}mlp.fc{r + 1}.bias"]
    return w


def test_google_npz_round_trip(tmp_path, source):
    path = tmp_path / "ViT-B_16.npz"
    np.savez(path, **_google_npz(source))
    model = create_backbone(_cfg(str(path)))
    reference = source.state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=0, msg=key)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), source.forward_head(source.forward_features(x), pre_logits=True))


def test_npz_in_another_layout_is_a_usage_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3, np.float32))
    with pytest.raises(UsageError, match="not a Google ViT .npz checkpoint"):
        create_backbone(_cfg(str(path)))


def _input_grad(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_()
    out = model(x)
    (grad,) = torch.autograd.grad(out, x, torch.linspace(-1, 1, out.numel()).view_as(out))
    return out, grad


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "swin_tiny_patch4_window7_224"])
def test_the_patch_embedding_computes_the_input_gradient_as_one_product(name):
    kwargs = KW if name.startswith("vit") else dict(embed_dim=24, depths=(1, 1), num_heads=(1, 2), window_size=4)
    model = create_backbone(BackboneConfig(name=name, weights="none", img_size=32, kwargs=kwargs))
    assert isinstance(model.patch_embed.proj, PatchConv2d)
    timm_model = timm.create_model(name, img_size=32, num_classes=0, **kwargs)
    assert model.state_dict().keys() == timm_model.state_dict().keys()
    x = torch.randn(2, 3, 32, 32)
    out, grad = _input_grad(model, x)
    model.patch_embed.proj.__class__ = torch.nn.Conv2d  # timm's own convolution and its backward
    plain_out, plain_grad = _input_grad(model, x)
    assert torch.equal(out, plain_out)  # the same forward
    torch.testing.assert_close(grad, plain_grad, rtol=1e-4, atol=1e-6)


def test_the_patch_embedding_product_covers_odd_sizes_autocast_and_trainable_weights():
    conv = torch.nn.Conv2d(3, 16, 8, stride=8)
    conv.requires_grad_(False)
    fast = copy.deepcopy(conv)
    fast.__class__ = PatchConv2d
    x = torch.randn(2, 3, 30, 27, requires_grad=True)  # rows and columns beyond the last whole patch
    g = torch.randn(2, 16, 3, 3)
    (want,) = torch.autograd.grad(conv(x), x, g)
    (got,) = torch.autograd.grad(fast(x), x, g)
    torch.testing.assert_close(got, want)
    assert not got[..., 24:, :].any() and not got[..., 24:].any()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (low,) = torch.autograd.grad(fast(x).float().sum(), x)
    assert low.dtype == torch.float32
    fast.requires_grad_(True)  # trainable weights: nn.Conv2d's own backward, weight gradients included
    fast(x).sum().backward()
    assert fast.weight.grad is not None and fast.bias.grad is not None
