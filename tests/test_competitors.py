"""The paper's strongest competitors: E2VPT, DAM-VP and Side-tuning. Parameter counts by formula on
ViT-B/16, behaviour on tiny ViTs, and the multi-stage schedule E2VPT's pruning needs."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import alexnet

from insvp_cli.backbone import create_backbone
from insvp_cli.backbone.vit import blocks_with_prompts, embed_tokens, pool
from insvp_cli.common.errors import ConfigError, RunInterrupted, UsageError
from insvp_cli.config.schema import BackboneConfig
from insvp_cli.experiments.reproduce.tables import TABLES
from insvp_cli.methods.base import TrainingData
from insvp_cli.methods.build import build_model
from insvp_cli.methods.e2vpt.model import attention_with_kv, prune_masks
from insvp_cli.methods.params import count_parameters
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.checkpoint import Checkpoint
from insvp_cli.runs.trained import build_trained_model
from insvp_cli.train.engine import Schedule
from insvp_cli.train.loop import fit
from tests.conftest import one_line_error, tiny_model, tiny_overrides, tiny_run

VIT_B = "vit_base_patch16_224"
D, DEPTH, HEADS, K = 768, 12, 12, 100
VP_FRAME = 2 * 3 * 30 * 224 + 2 * 3 * (224 - 60) * 30  # 69,840: VP's padding prompt at 224 px
# AlexNet's five convolutions (weights + biases), torchvision's layout
ALEXNET_FEATURES = sum(o * i * k * k + o for o, i, k in [(64, 3, 11), (192, 64, 5), (384, 192, 3), (256, 384, 3),
                                                         (256, 256, 3)])
NEW_METHODS = ("e2vpt", "damvp", "sidetune")


@pytest.fixture(scope="module")
def vit_b() -> torch.nn.Module:
    return create_backbone(BackboneConfig(name=VIT_B, weights="none"))


def _vit_b(vit_b, method: str, *sets: str):
    cfg = resolve_config(None, [f"method.name={method}", f"backbone.name={VIT_B}", "backbone.weights=none", *sets])
    return count_parameters(build_model(cfg, K, backbone=copy.deepcopy(vit_b)), method, VIT_B)


def _data(batches: int = 3, batch: int = 8, size: int = 32, classes: int = 5, seed: int = 0) -> TrainingData:
    g = torch.Generator().manual_seed(seed)
    fixed = [(torch.randn(batch, 3, size, size, generator=g), torch.randint(0, classes, (batch,), generator=g))
             for _ in range(batches)]
    return TrainingData(lambda: iter(fixed), [str(c) for c in range(classes)], torch.device("cpu"))


# ---- counts by formula on ViT-B/16 ---------------------------------------------------------------


@pytest.mark.parametrize(("sets", "expected"), [
    ((), DEPTH * 10 * D + DEPTH * 5 * D),  # deep visual prompts + one shared key-value tensor per block
    (("method.share_kv=false",), DEPTH * 10 * D + 2 * DEPTH * 5 * D),
    (("method.deep=false", "method.visual_tokens=100"), 100 * D + DEPTH * 5 * D),
    (("method.prune=true",), DEPTH * 10 * D + DEPTH * 5 * D),  # masks are buffers, not parameters
])
def test_e2vpt_counts(vit_b, sets, expected):
    report = _vit_b(vit_b, "e2vpt", *sets)
    assert report.trainable_without_head == expected
    assert report.components["keys"] == DEPTH * HEADS * 5 * (D // HEADS)


@pytest.mark.parametrize("clusters", [1, 10, 32])
def test_damvp_counts(vit_b, clusters):
    report = _vit_b(vit_b, "damvp", f"method.num_clusters={clusters}")
    assert report.trainable_without_head == clusters * VP_FRAME


def test_sidetune_counts(vit_b):
    report = _vit_b(vit_b, "sidetune")
    assert ALEXNET_FEATURES == 2_469_696
    assert report.components["features"] == ALEXNET_FEATURES
    assert report.components["projection"] == 256 * 6 * 6 * D  # no bias
    assert report.trainable_without_head == ALEXNET_FEATURES + 256 * 6 * 6 * D + 1 == 9_547_585


# ---- every new method: learns on a fixed batch, checkpoints round-trip ---------------------------


@pytest.mark.parametrize("method", NEW_METHODS)
def test_a_step_lowers_the_loss_on_a_fixed_batch(method):
    sets = ("method.side_image_size=64",) if method == "sidetune" else ()
    model = tiny_model(method, *sets).train()
    if method == "damvp":
        model.prepare(_data())
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 5
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.eval()  # the loss compared without dropout
    before = F.cross_entropy(model(x), y).item()
    for _ in range(3):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    assert F.cross_entropy(model(x), y).item() < before


@pytest.mark.parametrize("method", NEW_METHODS)
def test_checkpoint_round_trip_gives_the_same_logits(method, tmp_path):
    sets = {"sidetune": ("method.side_image_size=64",), "e2vpt": ("method.prune=true", "method.segments=4")}
    cfg = resolve_config(None, [*tiny_overrides("p8_d48_32px", method), *sets.get(method, ())])
    model = build_model(cfg, 5)
    if method == "damvp":
        model.prepare(_data())
    if method == "e2vpt":
        model.prune(_data())
    with torch.no_grad():  # move every trainable tensor away from its initialisation
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    Checkpoint.of(model, cfg, [str(c) for c in range(5)], {}, 1).save(tmp_path / "best.pt")
    restored = build_trained_model(Checkpoint.read(tmp_path / "best.pt"))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), restored(x))


# ---- E2VPT ---------------------------------------------------------------------------------------


def test_key_value_attention_without_prompts_is_timms_attention():
    model = tiny_model("e2vpt").eval()
    attn = model.backbone.blocks[0].attn
    x = torch.randn(2, 17, 48)
    empty = torch.zeros(2, attn.num_heads, 0, attn.head_dim)
    torch.testing.assert_close(attention_with_kv(attn, x, empty, empty), attn(x))


def test_key_value_prompts_extend_the_keys_and_values_of_every_head():
    model = tiny_model("e2vpt", "method.kv_tokens=3").eval()
    attn = model.backbone.blocks[0].attn
    x = torch.randn(2, 17, 48)
    keys, values = torch.randn(2, attn.num_heads, 3, attn.head_dim), torch.randn(2, attn.num_heads, 3, attn.head_dim)
    q, k, v = attn.qkv(x).reshape(2, 17, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    weights = ((q @ torch.cat([keys, k], 2).transpose(-2, -1)) * attn.head_dim**-0.5).softmax(-1)
    expected = attn.proj((weights @ torch.cat([values, v], 2)).transpose(1, 2).reshape(2, 17, 48))
    torch.testing.assert_close(attention_with_kv(attn, x, keys, values), expected)


def test_e2vpt_visual_prompts_enter_every_block_and_kv_prompts_change_the_output():
    model = tiny_model("e2vpt", "method.visual_tokens=4").eval()
    seen, run = [], model.block
    model.block = lambda j, block, tokens: (seen.append(tokens), run(j, block, tokens))[1]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model.forward_features(x)
        assert len(seen) == len(model.backbone.blocks)
        for j, tokens in enumerate(seen):  # a fresh set of visual prompts after the class token of every block
            assert torch.equal(tokens[:, 1:5], model.e2vpt.prompts[j].expand(2, -1, -1))
        # the same visual prompts through timm's own blocks, without key-value prompts, give other features
        tokens = blocks_with_prompts(model.backbone, embed_tokens(model.backbone, x), model.e2vpt.visual(2))
        assert not torch.allclose(ours, pool(model.backbone, tokens))
    assert model.e2vpt.values is None  # shared: one tensor serves the keys and the values


def test_prune_masks_respect_the_shares_and_minimums():
    cfg = resolve_config(None, ["method.name=e2vpt", "method.visual_tokens=4", "method.prune_tokens=0.5",
                                "method.prune_segments=0.5", "method.segments=4", "method.min_segments=3"]).method
    token_score = torch.tensor([0.4, 0.1, 0.3, 0.2])
    segment_score = torch.arange(16.0).view(4, 4).flip(1)  # the last segment of each token is the least important
    token_mask, segment_mask = prune_masks(token_score, segment_score, cfg)
    assert token_mask.tolist() == [1, 0, 1, 0]  # the two least important tokens
    # budget 0.5 * 2 kept tokens * 4 = 4 segments, but each kept token keeps 3 of its 4: one each
    assert segment_mask[[0, 2]].tolist() == [[1, 1, 1, 0], [1, 1, 1, 0]]
    assert segment_mask[[1, 3]].sum() == 8  # pruned tokens' segments are left alone
    few = resolve_config(None, ["method.name=e2vpt", "method.visual_tokens=2", "method.prune_tokens=0.9"]).method
    assert prune_masks(torch.rand(2), torch.rand(2, 16), few)[0].sum() == 1  # min_tokens 1 stays


def test_e2vpt_prunes_then_rewinds_every_trainable_tensor():
    model = tiny_model("e2vpt", "method.prune=true", "method.prune_epoch=1", "method.visual_tokens=4",
                  "method.segments=4", "method.min_segments=1", "method.prune_tokens=0.25",
                  "method.prune_segments=0.25")
    initial = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    model.on_epoch_start(0, _data())  # not the pruning epoch: nothing happens
    assert model.e2vpt.token_mask.sum() == 4
    model.on_epoch_start(1, _data())
    assert model.e2vpt.token_mask.tolist().count(0) == 1 and (model.e2vpt.segment_mask == 0).sum() == 3
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, initial[name]), f"{name} was not rewound"
    pruned = model.e2vpt.token_mask.tolist().index(0)
    assert all(torch.count_nonzero(p[:, pruned]) == 0 for p in model.e2vpt.visual(2))  # the token is gone
    assert model.restart_epochs() == (1,)


def test_e2vpt_segments_must_divide_the_width():
    with pytest.raises(ConfigError, match="method.segments: 5 does not divide the token width 48"):
        tiny_model("e2vpt", "method.prune=true", "method.segments=5")


def test_a_restart_runs_the_whole_schedule_again():
    cfg = resolve_config(None, ["train.epochs=4", "train.lr=1", "train.min_lr=0", "train.warmup_fraction=0.5"]).train
    once = Schedule(cfg, steps_per_epoch=2)
    twice = Schedule(cfg, steps_per_epoch=2, restarts=(2,))
    assert [once.factor(s) for s in range(8)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.8535534, 0.5, 0.1464466])
    assert [twice.factor(s) for s in range(8)] == pytest.approx([0.5, 1.0, 1.0, 0.5] * 2)


def test_pruning_in_a_run_restarts_training_and_selects_in_the_last_stage(tmp_path):
    sets = ("method.prune=true", "method.prune_epoch=1", "method.segments=4", "method.visual_tokens=4",
            "data.classes=[0, 1]", "data.batch_size=64")
    summary = fit(resolve_config(None, tiny_run("e2vpt", 2, *sets)), tmp_path / "run")
    assert summary["best_epoch"] == 2  # epoch 1 belongs to the search stage
    best = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert best["e2vpt.token_mask"].tolist().count(0) == 2
    # a run stopped after epoch 1 resumes into the pruning epoch and ends exactly as the uninterrupted one
    stopped = tmp_path / "stopped"

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        fit(resolve_config(None, tiny_run("e2vpt", 2, *sets)), stopped, on_epoch=stop)
    assert fit(resolve_config(None, tiny_run("e2vpt", 2, *sets)), stopped) == summary


def test_a_stage_beyond_the_run_is_a_config_error(tmp_path):
    cfg = resolve_config(None, tiny_run("e2vpt", 2, "method.prune=true", "method.prune_epoch=5"))
    with pytest.raises(ConfigError, match="training stage at epoch 6, which a run of train.epochs=2 never reaches"):
        fit(cfg, tmp_path / "run")


# ---- DAM-VP --------------------------------------------------------------------------------------


def test_damvp_clusters_the_training_set_and_prompts_each_image_by_its_nearest_prototype():
    model = tiny_model("damvp", "method.num_clusters=3").eval()
    assert all(torch.equal(p[0], p[2]) for p in model.damvp.frames.parameters())  # one starting prompt
    data = _data(batches=4)
    model.prepare(data)
    features = torch.cat([model.frozen_features(x) for x, _ in data.loader()])
    prototypes = model.damvp.prototypes
    assert prototypes.shape == (3, 48)
    labels = torch.cdist(features, prototypes).argmin(1)
    for c in range(3):  # every prototype is the mean of the images nearest to it (agglomerative, average)
        members = features[labels == c]
        assert len(members) and torch.allclose(members.mean(0), prototypes[c], atol=1e-5)
    with torch.no_grad():
        for strips in model.damvp.frames.parameters():
            strips.copy_(torch.arange(3.0).view(3, 1, 1, 1).expand_as(strips))  # prompt c is all c on the frame
    x = torch.cat([x for x, _ in data.loader()])[:8]
    prompts = model.image_prompts(x).prompt
    assert torch.equal(prompts[:, 0, 0, 0], model.damvp.assign(model.frozen_features(x)).float())
    assert torch.equal(prompts[:, :, 8:-8, 8:-8], torch.zeros(8, 3, 16, 16))  # the centre is untouched


def test_damvp_needs_enough_images_for_its_clusters():
    with pytest.raises(UsageError, match="method.num_clusters: 30 clusters need at least 30 training images"):
        tiny_model("damvp", "method.num_clusters=30").prepare(_data(batches=2))
    with pytest.raises(ConfigError, match="method.num_clusters: 20 clusters from method.cluster_samples=10"):
        resolve_config(None, ["method.name=damvp", "method.num_clusters=20", "method.cluster_samples=10"])


def test_damvp_meta_data_is_validated_when_the_config_is():
    with pytest.raises(ConfigError, match=r"unknown key method.meta_data\[0\].nme"):
        resolve_config(None, ["method.name=damvp", "method.meta_data=[{nme: digits}]"])


def test_damvp_meta_training_moves_the_shared_starting_prompt():
    meta = "method.meta_data=[{name: digits, classes: [3, 4], batch_size: 64, num_workers: 0}]"
    sets = ("method.num_clusters=2", "method.meta_epochs=1", "method.meta_inner_steps=2", meta)
    plain, metad = tiny_model("damvp", "method.num_clusters=2"), tiny_model("damvp", *sets)
    metad.prepare(_data())
    for before, after in zip(plain.damvp.frames.parameters(), metad.damvp.frames.parameters(), strict=True):
        assert not torch.equal(before, after)  # moved by the meta steps
        assert torch.equal(after[0], after[1])  # and still one prompt, copied to every cluster


# ---- Side-tuning ---------------------------------------------------------------------------------


def test_sidetune_blends_the_backbone_and_the_side_network_half_and_half_at_first():
    model = tiny_model("sidetune", "method.side_image_size=64").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        frozen = model.backbone.forward_head(model.backbone.forward_features(x), pre_logits=True)
        torch.testing.assert_close(model.forward_features(x), 0.5 * frozen + 0.5 * model.sidetune(x))
    assert model.sidetune.alpha.item() == 0.0
    assert torch.equal(model.head.bias, torch.full((5,), -math.log(99)))  # VPT's head, as VPT compared it


def test_sidetune_feeds_alexnet_imagenet_normalised_images():
    model = tiny_model("sidetune", "method.side_image_size=64")
    # the tiny ViT normalises with 0.5 / 0.5; a raw image r becomes (r - 0.5) / 0.5 for it
    raw = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close((raw - 0.5) / 0.5 * model.sidetune.scale + model.sidetune.shift, (raw - mean) / std)


def test_sidetune_loads_its_side_weights_when_a_run_starts(tmp_path, monkeypatch):
    reference = alexnet(weights=None)
    torch.save(reference.state_dict(), tmp_path / "alexnet.pth")
    model = tiny_model("sidetune", "method.side_image_size=64", f"method.side_weights={tmp_path / 'alexnet.pth'}")
    assert not torch.equal(model.sidetune.features[0].weight, reference.features[0].weight)  # not at build
    model.prepare(_data())
    assert all(torch.equal(a, b) for a, b in zip(model.sidetune.features.state_dict().values(),
                                                 reference.features.state_dict().values(), strict=True))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UsageError, match="is not a torchvision AlexNet state dict"):
        tiny_model("sidetune", f"method.side_weights={tmp_path / 'other.pth'}").prepare(_data())

    def offline(*_args, **_kwargs):
        raise OSError("no network")

    monkeypatch.setattr("torchvision.models.AlexNet_Weights.get_state_dict", offline)
    with pytest.raises(UsageError, match="pass a local file instead: --set method.side_weights=PATH"):
        tiny_model("sidetune").prepare(_data())


def test_e2vpt_table_runs_follow_its_two_stages_and_the_recipes_token_counts():
    spec = next(r for r in TABLES.get("table1").runs(["e2vpt"]) if r.name.endswith("/cub/e2vpt"))
    cfg = resolve_config(spec.recipe, spec.overrides)
    assert (cfg.train.epochs, cfg.method.prune, cfg.method.prune_epoch) == (200, True, 100)
    assert (cfg.method.visual_tokens, cfg.method.kv_tokens) == (5, 5)  # E2VPT's CUB command (its package's table)


@pytest.mark.parametrize(("sets", "message"), [
    (["method.name=damvp", "method.num_clusters=20", "method.cluster_samples=10"],
     "error: method.num_clusters: 20 clusters from method.cluster_samples=10 images"),
    (["method.name=e2vpt", "method.min_tokens=20"],
     "error: method.min_tokens: 20 is more than method.visual_tokens=10"),
    (["method.name=sidetune", "method.side_image_size=32"], "error: method.side_image_size: 32 is not in [63, 4096]"),
    (["method.name=transhp", "method.revision=current", "method.block=1"],
     "error: method.block: 1 applies to method.revision=first only"),
])
def test_bad_new_method_values_exit_2_with_one_line(sets, message, cli):
    code, output = cli("params", *(a for s in sets for a in ("--set", s)))
    one_line_error(output, code, 2)
    assert output.startswith(message), output
