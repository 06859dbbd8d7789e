"""`insvp convert-official`: the release's state dict -> our checkpoint, with the release's logits."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import insvp_cli
from insvp_cli.cli import app
from insvp_cli.common.errors import UsageError
from insvp_cli.methods.build import build_model
from insvp_cli.methods.insvp.layers import simam
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.use.convert import RELEASE_TO_OURS, convert_official, ours_to_release, rename
from tests.conftest import tiny_overrides

runner = CliRunner()


class _ReleaseModel(nn.Module):
    """The release's model as docs/method.md §2 lists it (224 px, width 768), under the release's attribute names.

    Its state dict therefore has the release's keys; its forward (eval mode: dropouts are identities) is the
    reference the converted checkpoint must reproduce. ``depth`` blocks keep the test fast.
    """

    def __init__(self, num_classes: int, prompt_len: int, depth: int):
        super().__init__()
        self.prompt_len = prompt_len
        self.backbone = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=num_classes,
                                          depth=depth)
        self.prompts = nn.Parameter(torch.empty(depth, prompt_len, 768).uniform_(-1, 1))
        self.meta_net = nn.Sequential(nn.Linear(768, 16), nn.ReLU(), nn.Linear(16, 768))
        self.meta_net_2 = nn.Sequential(nn.Conv2d(3, 6, 11, padding=5), nn.ReLU(), nn.Conv2d(6, 3, 25, padding=12))
        self.TokenPrompt = nn.Module()
        self.TokenPrompt.conv1 = nn.Conv2d(3, prompt_len, 7, padding=3)
        self.TokenPrompt.conv2 = nn.Conv2d(prompt_len, 3 * prompt_len, 9, padding=4)
        self.TokenPrompt.conv3 = nn.Conv2d(3 * prompt_len, 3 * prompt_len, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, tp, bk = x.shape[0], self.TokenPrompt, self.backbone
        x = simam(x)
        patches = x.reshape(b, 3, 14, 16, 14, 16).permute(0, 2, 4, 1, 3, 5).reshape(b * 196, 768)
        p_l = self.meta_net(patches).reshape(b, 14, 14, 3, 16, 16).permute(0, 3, 1, 4, 2, 5).reshape(b, 3, 224, 224)
        x = x + (p_l + 2 * self.meta_net_2(x))
        s = F.max_pool2d(F.leaky_relu(tp.conv1(x))[:, :, 8:216, 8:216], 4)
        s = F.max_pool2d(F.leaky_relu(tp.conv2(s))[:, :, 2:50, 2:50], 3)
        p_s = tp.conv3(s).reshape(b, self.prompt_len, 768)
        t = bk.norm_pre(bk._pos_embed(bk.patch_embed(x)))
        for i, block in enumerate(bk.blocks):
            rest = t[:, 1:] if i == 0 else t[:, 1 + self.prompt_len :]
            t = block(torch.cat([t[:, :1], self.prompts[i].expand(b, -1, -1) + p_s, rest], dim=1))
        return bk.head(bk.fc_norm(bk.norm(t)[:, 0]))


def test_converted_release_state_dict_gives_the_release_logits(tmp_path):
    release = _ReleaseModel(num_classes=7, prompt_len=4, depth=2).eval()
    path = tmp_path / "best_model.pth"
    torch.save(release.state_dict(), path)
    recipe = tmp_path / "release.yaml"
    recipe.write_text("backbone: {name: vit_base_patch16_224, weights: none, kwargs: {depth: 2}}\n"
                      "method: {name: insvp, preset: release, prompt_len: 4, simam: true}\n")
    result = convert_official(path, recipe, tmp_path / "converted")
    assert result.num_classes == 7
    model = insvp_cli.load_model(result.checkpoint)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = release(x), model(x)
    assert (got - expected).abs().max().item() < 1e-4


def _tiny_release(tmp_path, prompt_len: int = 3):
    """Our tiny generalised model, saved as the release would save it (names through the inverse table)."""
    cfg = resolve_config(None, [*tiny_overrides(), "method.preset=release", f"method.prompt_len={prompt_len}"])
    model = build_model(cfg, 5).eval()
    with torch.no_grad():  # a backbone that random init could not reproduce
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    state = {f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}
    state.update(ours_to_release(model.trainable_state_dict()))
    path = tmp_path / "best_model.pth"
    torch.save(state, path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"method: {{name: insvp, preset: release, prompt_len: {prompt_len}}}\n")
    return model, state, path, recipe


def test_mapping_covers_every_trainable_tensor_of_the_release_preset(tmp_path):
    model, state, _, _ = _tiny_release(tmp_path)
    release_keys = {k for k in state if not k.startswith("backbone.") or k.startswith("backbone.head.")}
    assert release_keys == {"prompts", "backbone.head.weight", "backbone.head.bias",
                            *(f"{m}.{i}.{p}" for m in ("meta_net", "meta_net_2") for i in (0, 2)
                              for p in ("weight", "bias")),
                            *(f"TokenPrompt.conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))}
    assert {rename(k, RELEASE_TO_OURS) for k in release_keys} == set(model.trainable_state_dict())


def test_cli_converts_and_load_model_reproduces_the_logits(tmp_path):
    model, _, path, recipe = _tiny_release(tmp_path)
    out = tmp_path / "run"
    # the release never trained G_s; the converted checkpoint stores its values all the same
    args = ["convert-official", str(path), "--recipe", str(recipe), "--out", str(out), "--set",
            "method.freeze_specific_prompter=true"]
    for item in tiny_overrides():
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["backbone.safetensors", "best.pt", "config.yaml"]
    loaded = insvp_cli.load_model(out / "best.pt")
    assert loaded.cfg.freeze_specific_prompter is False
    assert loaded.cfg.preset == "release"
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert (loaded(x) - model(x)).abs().max().item() < 1e-4
    again = runner.invoke(app, args)
    assert isinstance(again.exception, UsageError) and "already holds best.pt" in str(again.exception)


def test_shape_mismatch_names_the_first_key_and_both_shapes(tmp_path):
    _, _, path, recipe = _tiny_release(tmp_path, prompt_len=3)
    overrides = [*tiny_overrides(), "method.prompt_len=4"]
    message = r"prompts has shape \(2, 3, 48\) but recipe .* expects \(2, 4, 48\) \(insvp\.common_prompt\)"
    with pytest.raises(UsageError, match=message):
        convert_official(path, recipe, tmp_path / "out", overrides)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "override", "message"),
    [
        ("none", "method.preset=paper", "needs method.name=insvp and method.preset=release"),
        ("extra", None, "stray.weight is not a key of the release's model"),
        ("drop_block", None, r"lacks backbone\.blocks\.1\.norm1\.weight"),
        ("none", "method.common_prompt=false", r"prompts \(shape \(2, 3, 48\)\) has no place"),
    ],
)
def test_rejected_state_dicts_and_recipes(tmp_path, change, override, message):
    _, state, path, recipe = _tiny_release(tmp_path)
    if change == "extra":
        state["stray.weight"] = torch.zeros(1)
    elif change == "drop_block":
        del state["backbone.blocks.1.norm1.weight"]
    torch.save(state, path)
    overrides = [*tiny_overrides(), *([override] if override else [])]
    with pytest.raises(UsageError, match=message):
        convert_official(path, recipe, tmp_path / "out", overrides)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "best_model.pth"
    torch.save({"prompts": torch.zeros(1), "args": object()}, path)
    with pytest.raises(UsageError, match="not a readable torch weights file"):
        convert_official(path, tmp_path / "absent.yaml", tmp_path / "out")
