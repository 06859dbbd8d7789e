"""Fidelity to the paper, the authors' release and the cited works: each test pins one behaviour that a
review found wrong (issue 13), and fails on the code before its fix."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from insvp_cli.cli import app
from insvp_cli.experiments.reproduce.tables import TABLES
from insvp_cli.methods.base import TrainingData
from insvp_cli.methods.build import build_model
from insvp_cli.methods.e2vpt.model import prune_masks
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.train.engine import build_optimizer
from insvp_cli.train.loop import fit
from tests.conftest import tiny_model, tiny_overrides, tiny_run, tiny_swin_overrides
from tests.test_table1_prompting import images, training_data

ONLY_COMMON = ["method.patch_prompter=false", "method.global_prompter=false", "method.specific_prompter=false"]


def _build(method: str, *sets: str, vit: str = "p8_d48_32px"):
    return build_model(resolve_config(None, [*tiny_overrides(vit, method), *sets]), 5)


def _block_inputs(model, x: torch.Tensor) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    hooks = [b.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
             for b in model.backbone.blocks]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


# ---- InsVP ---------------------------------------------------------------------------------------


def test_common_prompt_dropout_mask_is_drawn_per_image():
    """The release drops out p_c after expanding it to the batch (as our VPT does): one mask per image."""
    model = _build("insvp", *ONLY_COMMON, "method.prompt_len=4", "method.dropout=0.5").train()
    x = torch.randn(1, 3, 32, 32).expand(4, -1, -1, -1)  # four copies of one image
    prompts = _block_inputs(model, x)[0][:, 1:5]  # (B, L_p, D) right after the class token
    assert not torch.equal(prompts[0], prompts[1]), "every image of the batch got the same dropout mask"
    model.eval()
    prompts = _block_inputs(model, x)[0][:, 1:5]
    assert torch.equal(prompts[0], prompts[3])  # no dropout in eval mode


def _decay_groups(model, weight_decay: float) -> list[tuple[float, set[int]]]:
    cfg = resolve_config(None, [f"train.weight_decay={weight_decay}"]).train
    return [(g["weight_decay"], {id(p) for p in g["params"]}) for g in build_optimizer(model, cfg).param_groups]


def test_release_preset_decays_every_trainable_tensor_in_one_group():
    """The release builds AdamW(learnable_parameters(), weight_decay=wd): p_c and biases decay too."""
    release = _build("insvp", "method.preset=release", "method.prompt_len=2")
    assert release.cfg.decay_all is True
    trainable = {id(p) for p in release.parameters() if p.requires_grad}
    assert _decay_groups(release, 0.05) == [(0.05, trainable)]
    paper = _build("insvp", "method.preset=paper", "method.prompt_len=2")
    assert paper.cfg.decay_all is False
    groups = dict((wd, ids) for wd, ids in _decay_groups(paper, 0.05))
    assert id(paper.insvp.common_prompt) in groups[0.0] and id(paper.head.bias) in groups[0.0]
    assert id(paper.head.weight) in groups[0.05]


def test_specific_prompter_per_block_draws_new_dropout_masks_in_training():
    """The release recomputes G_s in every block with new dropout masks; ``specific_per_block`` does too."""
    sets = ["method.patch_prompter=false", "method.global_prompter=false", "method.common_prompt=false",
            "method.prompt_len=3", "method.dropout=0.5"]
    x = torch.randn(2, 3, 32, 32)
    per_block = _build("insvp", *sets, "method.specific_per_block=true").train()
    calls = []
    per_block.insvp.specific_prompter.register_forward_hook(lambda *_: calls.append(1))
    inputs = _block_inputs(per_block, x)
    assert len(calls) == len(per_block.backbone.blocks)
    assert not torch.equal(inputs[0][:, 1:4], inputs[1][:, 1:4])  # blocks 0 and 1: other masks inside G_s
    once = _build("insvp", *sets).train()
    shared = _block_inputs(once, x)
    assert torch.equal(shared[0][:, 1:4], shared[1][:, 1:4])  # once per forward: one p_s for every block
    per_block.eval()
    calls.clear()
    assert torch.equal(per_block(x), once.eval()(x)) and len(calls) == 1  # eval: once, and identical


@pytest.mark.parametrize(("sets", "per_block"), [
    (["method.preset=release"], True),  # the release draws G_s's dropout masks anew in every block
    (["method.preset=paper"], False),
    (["method.preset=release", "method.specific_per_block=false"], False),
])
def test_release_preset_recomputes_the_specific_prompter_per_block(sets, per_block):
    assert resolve_config(None, ["method.name=insvp", *sets]).method.specific_per_block is per_block


# ---- the comparison methods ----------------------------------------------------------------------


def test_adapter_starts_as_vpts_adapter_baseline():
    """VPT's Adapter zero-initialises both projections, so only the up-projection bias ever learns."""
    model = _build("adapter").train()
    adapters = {n: p for n, p in model.named_parameters() if n.startswith("adapter.")}
    assert adapters and all(torch.count_nonzero(p) == 0 for p in adapters.values())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
        opt.step()
    learned = {n for n, p in adapters.items() if torch.count_nonzero(p)}
    assert learned == {n for n in adapters if n.endswith(".up.bias")}


def test_mlp_last_layer_starts_as_vpts_mlp_head():
    """VPT's MLP head: Kaiming-normal fan-out weights and the bias at -log(99)."""
    model = build_model(resolve_config(None, ["method.name=mlp", "backbone.name=vit_tiny_patch16_224",
                                              "backbone.weights=none"]), 1000)
    assert torch.equal(model.head.bias, torch.full((1000,), -math.log(99)))
    assert model.head.weight.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)  # fan-out = classes


def test_a_last_training_batch_of_one_image_never_reaches_batchnorm(tmp_path):
    """387 digits in batches of 193 leave one image over; BatchNorm cannot normalise it in training."""
    cfg = resolve_config(None, tiny_run("mlp", 1, "data.batch_size=193", "train.mixup=0", "train.cutmix=0"))
    summary = fit(cfg, tmp_path / "run")
    assert summary["best_epoch"] == 1
    rows = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"train_images": 386' in rows  # two full batches; the lone image is dropped


def test_vpt_runs_on_swin_with_vpts_swin_scheme():
    """VPT goes through the same feature-prompting strategy as InsVP: per-stage prompt widths on Swin."""
    deep = build_model(resolve_config(None, tiny_swin_overrides(method="vpt")), 5)
    assert [tuple(t.shape) for t in deep.vpt.tokens] == [(2, 10, 24), (2, 10, 48)]
    assert deep(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    shallow = build_model(resolve_config(None, [*tiny_swin_overrides(method="vpt"), "method.deep=false"]), 5)
    assert tuple(shallow.vpt.tokens.shape) == (1, 10, 24)
    assert shallow(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_table3_has_its_vpt_row():
    result = CliRunner().invoke(app, ["reproduce", "table3", "--dry-run", "--data-root", "/nonexistent"])
    assert result.exit_code == 0, result.output
    assert "swin-b-in22k/cub/vpt" in result.output and "method.name=vpt" in result.output
    assert "vpt" in TABLES.get("table3").methods()


# ---- the runs that stand for the cited works' numbers --------------------------------------------


def _table1_run(method: str):
    table = TABLES.get("table1")
    spec = next(run for run in table.runs([method]) if run.name.endswith(f"/cub/{method}"))
    return resolve_config(spec.recipe, spec.overrides)


def test_table1_vpt_run_uses_vpts_official_training_values():
    method = _table1_run("vpt").method
    assert (method.dropout, method.prompt_weight_decay, method.head_init) == (0.0, True, "vpt")
    model = _build("vpt", "method.prompt_weight_decay=true")
    decayed = [ids for wd, ids in _decay_groups(model, 0.1) if wd == 0.1]
    assert decayed and id(model.vpt.tokens) in decayed[0]


def test_table1_adaptformer_run_uses_the_authors_input_stream_and_head():
    method = _table1_run("adaptformer").method
    assert (method.adapter_input, method.head_norm, method.head_init) == ("residual", True, "trunc_normal")
    model = _build("adaptformer", "method.head_norm=true").train()
    norm, linear = model.head
    assert isinstance(norm, torch.nn.BatchNorm1d) and not norm.affine and norm.eps == 1e-6
    x = torch.randn(4, 3, 32, 32)
    normed = torch.nn.functional.batch_norm(model.forward_features(x), None, None, training=True, eps=1e-6)
    torch.testing.assert_close(model(x), linear(normed))  # training: the batch's own statistics, no affine


@pytest.mark.parametrize("method", ["full", "linear", "partial", "mlp", "bias", "adapter", "sidetune", "vpt"])
def test_vpt_comparison_rows_use_vpts_head(method):
    assert _table1_run(method).method.head_init == "vpt"


# ---- the comparison with the authors' code (issue 20) --------------------------------------------


def test_yoo_temperature_is_clamped_in_place_and_keeps_its_gradient():
    """The authors clamp the temperature's data: one stepped past a bound returns to it and still learns."""
    model = _build("yoo", "method.num_tokens=2").train()
    with torch.no_grad():
        model.yoo.temperature.copy_(torch.tensor([20.0, 0.001]))  # out of [0.01, 10] at both ends
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert model.yoo.temperature.tolist() == pytest.approx([10.0, 0.01])
    assert torch.all(model.yoo.temperature.grad != 0)  # a clamp in the graph would give 0 here


@pytest.mark.parametrize("method", ["yoo", "e2vpt"])
def test_methods_built_on_vpts_code_use_vpts_head(method):
    """Yoo et al.'s and E2VPT's code are built on VPT's: its MLP head init."""
    assert resolve_config(None, [f"method.name={method}"]).method.head_init == "vpt"
    model = _build(method)
    assert torch.equal(model.head.bias, torch.full((5,), -math.log(99)))


def test_e2vpt_prunes_the_same_number_of_segments_in_every_token():
    """E2VPT's trainer masks each kept token's own least important ``int(R * share)`` segments."""
    cfg = resolve_config(None, ["method.name=e2vpt", "method.visual_tokens=2", "method.prune_tokens=0",
                                "method.segments=4", "method.min_segments=1", "method.prune_segments=0.5"]).method
    segment_score = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.7, 0.6]])  # token 0's all below token 1's
    _, segment_mask = prune_masks(torch.ones(2), segment_score, cfg)
    assert segment_mask.tolist() == [[0, 0, 1, 1], [1, 1, 0, 0]]  # a global ranking would take 3 from token 0


@pytest.mark.parametrize(("sets", "tokens"), [
    (["data.name=nabirds", "data.root=x"], (5, 5)),  # FGVC: 5 visual tokens in every command
    (["data.name=stanford_dogs", "data.root=x"], (5, 5)),
    (["data.name=vtab", "data.root=data/vtab-1k/caltech101"], (32, 5)),  # VTAB: per task
    (["data.name=vtab", "data.root=data/vtab-1k/oxford_flowers102"], (1, 1)),
    (["data.name=vtab", "data.root=data/vtab-1k/patch_camelyon"], (10, 10)),
    (["data.name=nabirds", "data.root=x", "method.visual_tokens=7"], (7, 5)),  # --set wins
    (["data.name=mnist5k"], (10, 5)),  # nothing published: the defaults
])
def test_e2vpt_token_counts_follow_its_published_commands_per_dataset(sets, tokens):
    method = resolve_config(None, ["method.name=e2vpt", *sets]).method
    assert (method.visual_tokens, method.kv_tokens) == tokens


def test_a_recipes_method_delta_wins_over_the_published_token_counts():
    recipe = {"data": {"name": "cub", "root": "x"}, "methods": {"e2vpt": {"visual_tokens": 3}}}
    assert resolve_config(recipe, ["method.name=e2vpt"]).method.visual_tokens == 3


def test_transhp_smooths_the_coarse_labels_as_the_fine_ones():
    """TransHP's code gives every level's loss the same label smoothing (its LabelSmoothingCrossEntropy)."""
    model = tiny_model("transhp", dataset="cifar100").eval()
    model.prepare(training_data([], coarse=[3, 3, 7, 0, 7]))
    fine, targets = torch.nn.CrossEntropyLoss(label_smoothing=0.1), torch.tensor([2, 3])
    with torch.no_grad():
        logits, aux = model(images(model, 2), with_aux=True)
        coarse_logits = aux["coarse_logits"][0]
        expected = fine(logits, targets) + F.cross_entropy(coarse_logits, torch.tensor([7, 0]), label_smoothing=0.1)
        torch.testing.assert_close(model.loss(logits, targets, fine, **aux), expected)


def test_transhp_current_revision_prompts_every_block_but_the_last():
    """The authors' repository now prompts blocks 0 to 10 of 12 (its first upload: block 10 only)."""
    model = tiny_model("transhp", "method.revision=current", vit="p32_d192_64px", dataset="cifar100").eval()  # 4 blocks
    model.prepare(training_data([], coarse=[3, 3, 7, 0, 7]))
    lengths = []
    hooks = [b.register_forward_pre_hook(lambda _m, a: lengths.append(a[0].shape[1])) for b in model.backbone.blocks]
    with torch.no_grad():
        logits, aux = model(images(model, 2), with_aux=True)
    for hook in hooks:
        hook.remove()
    assert lengths == [5 + 20, 5 + 20, 5 + 20, 5]
    coarse = aux["coarse_logits"]
    assert tuple(model.transhp.prototypes.shape) == (3, 20, 192) and coarse.shape == (3, 2, 20)
    fine = torch.nn.CrossEntropyLoss()
    expected = fine(logits, torch.tensor([2, 3])) + sum(F.cross_entropy(c, torch.tensor([7, 0])) for c in coarse) / 3
    torch.testing.assert_close(model.loss(logits, torch.tensor([2, 3]), fine, **aux), expected)


def test_damvp_clusters_the_training_images_as_training_sees_them():
    """DAM-VP clusters the batches of its training loader: augmented images, not the evaluation view."""
    model = _build("damvp", "method.num_clusters=1").eval()
    plain, augmented = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    labels = torch.zeros(4, dtype=torch.int64)
    data = TrainingData(lambda: iter([(plain, labels)]), ["a"], torch.device("cpu"),
                        augmented_loader=lambda: iter([(augmented, labels)]))
    model.prepare(data)
    torch.testing.assert_close(model.damvp.prototypes[0], model.frozen_features(augmented).mean(dim=0))


def test_damvp_meta_training_defaults_are_its_vit_b22k_command():
    """README: main_ht.py --pretrained_model vit-b-22k --meta_lr 1.0 --update_step 4 --meta_step_size 0.5."""
    cfg = resolve_config(None, ["method.name=damvp"]).method
    assert (cfg.meta_lr, cfg.meta_inner_steps, cfg.meta_step_size, cfg.meta_weight_decay) == (1.0, 4, 0.5, 1e-4)


def test_adaptformer_feeds_its_bottleneck_the_residual_stream_by_default():
    """The authors' code (``ffn_adapter_layernorm_option="none"``): the bottleneck reads x', not LN(x')."""
    model = _build("adaptformer").eval()
    seen = {}
    model.backbone.blocks[0].norm2.register_forward_pre_hook(lambda _m, a: seen.setdefault("stream", a[0]))
    model.adaptformer.bottlenecks[0].register_forward_pre_hook(lambda _m, a: seen.setdefault("bottleneck", a[0]))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert model.cfg.adapter_input == "residual" and torch.equal(seen["bottleneck"], seen["stream"])
