"""InsVP against docs/method.md §1-2: components, presets, the release's exact geometry and parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from insvp_cli.backbone.vit import blocks_with_prompts, embed_tokens, pool
from insvp_cli.methods.build import build_model
from insvp_cli.methods.insvp.layers import PatchPrompter, SpecificPrompter, simam
from insvp_cli.methods.params import shape_only
from insvp_cli.resolve.layers import resolve_config
from tests.conftest import TINY_VITS, tiny_overrides

ALL_OFF = ["method.patch_prompter=false", "method.global_prompter=false", "method.common_prompt=false",
           "method.specific_prompter=false"]


def _build(*extra: str, vit: str = "p8_d48_32px", classes: int = 4):
    cfg = resolve_config(None, [*tiny_overrides(vit), *extra])
    return build_model(cfg, classes)


@pytest.mark.parametrize("vit", sorted(TINY_VITS))
def test_all_components_off_equals_timm(vit):
    model = _build(*ALL_OFF, vit=vit).eval()
    reference = model.backbone
    x = torch.randn(2, 3, *reference.patch_embed.img_size)
    expected = model.head(reference.forward_head(reference.forward_features(x), pre_logits=True))
    # the same head inside timm's own classifier slot gives timm's own forward
    reference_with_head = type(reference)(**{**TINY_VITS[vit], "num_classes": 4})
    reference_with_head.load_state_dict({**reference.state_dict(), **{f"head.{k}": v for k, v in
                                                                       model.head.state_dict().items()}})
    assert torch.equal(model(x), expected)
    assert torch.equal(model(x), reference_with_head.eval()(x))
    assert model.trainable_state_dict().keys() == {"head.weight", "head.bias"}


def test_specific_prompter_runs_once_and_equals_per_block_recomputation():
    model = _build("method.prompt_len=3").eval()
    calls = []
    model.insvp.specific_prompter.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    ours = model(x)
    assert len(calls) == 1
    # the release: G_s recomputed in front of every block
    image = model.image_prompts(x)
    tokens = embed_tokens(model.backbone, image.prompted)
    cfg, p_c = model.cfg, model.insvp.common_prompt
    per_block = [cfg.common_weight * p_c[j].expand(2, -1, -1) + cfg.specific_weight
                 * model.insvp.specific_prompter(image.image) for j in range(len(model.backbone.blocks))]
    theirs = model.head(pool(model.backbone, blocks_with_prompts(model.backbone, tokens, per_block)))
    assert len(calls) == 1 + len(model.backbone.blocks)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_release_counts_on_vit_base():
    cfg = resolve_config(None, ["backbone.name=vit_base_patch16_224", "backbone.weights=none",
                                "method.preset=release"])
    counts = shape_only(cfg, 47).component_params()
    assert counts["insvp.patch_prompter"] == 25_360
    assert counts["insvp.global_prompter"] == 13_437
    assert counts["insvp.common_prompt"] == 147_456 == 12 * 16 * 768
    assert counts["insvp.specific_prompter"] == 85_408
    assert counts["head"] == 36_143


class _ReleaseSpecificPrompter(nn.Module):
    """The release's G_s written out literally (224 px, width 768), as docs/method.md §2 lists its operations."""

    def forward(self, gs: SpecificPrompter, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(gs.conv1(x))[:, :, 8:216, 8:216]
        x = nn.MaxPool2d(4)(x)
        x = F.leaky_relu(gs.conv2(x))[:, :, 2:50, 2:50]
        x = nn.MaxPool2d(3)(x)
        x = gs.conv3(x)
        return x.reshape(x.shape[0], -1, 768)


def test_generalised_specific_prompter_is_the_release_at_224_and_768():
    gs = SpecificPrompter(16, 768, (224, 224), (7, 9, 3), dropout=0.1).eval()
    assert isinstance(gs.proj, nn.Identity)
    x = torch.randn(2, 3, 224, 224)
    torch.testing.assert_close(gs(x), _ReleaseSpecificPrompter()(gs, x), rtol=0, atol=0)


@pytest.mark.parametrize(("dim", "projects"), [(48, False), (192, False), (768, False), (384, True), (1024, True)])
def test_specific_prompter_widths(dim, projects):
    gs = SpecificPrompter(5, dim, (64, 64), (7, 9, 3), dropout=0.0)
    assert gs(torch.randn(2, 3, 64, 64)).shape == (2, 5, dim)
    assert isinstance(gs.proj, nn.Linear) == projects


def test_patch_prompter_is_per_patch_and_channel_major():
    pp = PatchPrompter(patch=4, hidden=3, dropout=0.0)
    x = torch.randn(1, 3, 8, 8)
    out = pp(x)
    # the prompt of the top-right patch depends on that patch alone
    patch = x[:, :, 0:4, 4:8].reshape(1, 48)  # channel-major flattening (C, h, w)
    expected = pp.fc2(F.relu(pp.fc1(patch))).reshape(1, 3, 4, 4)
    torch.testing.assert_close(out[:, :, 0:4, 4:8], expected)


def test_simam_matches_formula():
    x = torch.randn(2, 3, 5, 7)
    mu = x.mean(dim=(2, 3), keepdim=True)
    d = (x - mu) ** 2
    y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / (5 * 7 - 1) + 1e-3)) + 0.5
    torch.testing.assert_close(simam(x), x * torch.sigmoid(y))


@pytest.mark.parametrize(
    ("switch", "absent"),
    [("patch_prompter", "patch_prompter"), ("global_prompter", "global_prompter"),
     ("common_prompt", "common_prompt"), ("specific_prompter", "specific_prompter")],
)
def test_each_component_switches_off(switch, absent):
    model = _build(f"method.{switch}=false")
    assert getattr(model.insvp, absent) is None
    assert not any(n.startswith(f"insvp.{absent}") for n, _ in model.named_parameters())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_prompt_blocks_and_length():
    model = _build("method.prompt_len=5", "method.prompt_blocks=1", "method.specific_prompter=false")
    assert model.insvp.common_prompt.shape == (1, 5, 48)
    assert len(model.feature_prompts(None, 2)) == 1
    assert _build("method.prompt_len=0").feature_prompts(None, 2) == []


def test_freeze_specific_prompter():
    model = _build("method.freeze_specific_prompter=true")
    assert not any(p.requires_grad for p in model.insvp.specific_prompter.parameters())
    assert model.insvp.common_prompt.requires_grad and model.head.weight.requires_grad
    assert all(p.requires_grad for p in model.insvp.patch_prompter.parameters())


def test_release_fusion_weights():
    model = _build("method.preset=release", "method.patch_prompter=false").eval()
    x = torch.randn(2, 3, 32, 32)
    prompts = model.image_prompts(x)
    torch.testing.assert_close(prompts.prompted, x + 2.0 * model.insvp.global_prompter(x))
    assert model.cfg.specific_input == "prompted"


def test_simam_applies_to_the_input():
    model = _build("method.simam=true", "method.patch_prompter=false", "method.global_prompter=false").eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.image_prompts(x).prompted, simam(x))
