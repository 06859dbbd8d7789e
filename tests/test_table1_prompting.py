"""Table 1's other prompting methods on tiny ViTs: ILM-VP, AutoVP, Yoo et al., TransHP and LION.

Shapes, trainability and checkpoints of every method are also covered by the registry tests
(``test_methods.py``) and their ViT-B/16 counts by ``test_baselines.py``; here: what each method does, its
parameter formulas, the label mappings and hierarchies they read from the training split, and the run
folders that carry them.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import insvp_cli
from insvp_cli.backbone import create_backbone
from insvp_cli.common.errors import ConfigError, UsageError
from insvp_cli.config.schema import BackboneConfig
from insvp_cli.data.hierarchy import BUILTIN, hierarchy_file, read_hierarchy
from insvp_cli.experiments.sweep.plan import plan_sweep
from insvp_cli.methods.base import TrainingData
from insvp_cli.methods.build import build_model
from insvp_cli.methods.label_mapping import frequency_mapping
from insvp_cli.methods.params import count_parameters
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.resolve.needs import MissingNeed, bind_requirements
from insvp_cli.runs.checkpoint import Checkpoint
from insvp_cli.runs.trained import build_trained_model
from insvp_cli.train.loop import fit
from insvp_cli.use.evaluate import evaluate_checkpoint
from tests.conftest import TINY_VITS, insvp, one_line_error, tiny_model, tiny_overrides

METHODS = ("ilmvp", "autovp", "yoo", "transhp", "lion")
K = 5
# CIFAR-100 (its name only: no data is read) gives TransHP its 20 superclasses
CIFAR = {"classes": K, "dataset": "cifar100"}


def images(model, batch: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, *model.backbone.patch_embed.img_size, generator=torch.Generator().manual_seed(seed))


def training_data(batches: list[tuple[torch.Tensor, torch.Tensor]], coarse: list[int] | None = None) -> TrainingData:
    return TrainingData(lambda: iter(batches), [str(c) for c in range(K)], torch.device("cpu"), coarse)


# ---- what trains, parameter formulas -------------------------------------------------------------


def trained(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("vit", sorted(TINY_VITS))
def test_parameter_formulas(vit):
    kw = TINY_VITS[vit]
    d, depth, h = kw["embed_dim"], kw["depth"], kw["img_size"]
    canvas = 3 * h * h
    source = 1000  # the default head of the architecture, kept at random init (weights: none)
    expected = {
        ("ilmvp",): (canvas, 0),
        ("autovp",): (canvas, source * K + K),
        ("autovp", "method.mapping=frequency"): (canvas, 0),
        ("yoo",): (100 * d + (depth - 1) + depth, d * K + K),
        ("yoo", "method.num_tokens=3", "method.temperature=false"): (3 * d + depth - 1, d * K + K),
        ("transhp",): (2 * 20 * d, d * K + K),
        ("lion",): ((9 * 64 + 31 * 8 + 3) + (2 * d * 64 + 64**2 + 64 + d), d * K + K),
        ("lion", "method.image_channels=2", "method.feature_width=5"): ((36 + 62 + 3) + (10 * d + 25 + 5 + d),
                                                                         d * K + K),
    }
    for (method, *sets), (extra, head) in expected.items():
        report = count_parameters(tiny_model(method, *sets, vit=vit, **CIFAR), method, "tiny")
        assert (report.trainable_without_head, report.trainable - report.trainable_without_head) == (extra, head)


@pytest.mark.parametrize(("method", "sets", "names"), [
    ("ilmvp", (), {"ilmvp.prompt.delta"}),
    ("autovp", (), {"autovp.prompt.delta", "head.weight", "head.bias"}),
    ("autovp", ("method.mapping=frequency",), {"autovp.prompt.delta"}),
    ("yoo", (), {"yoo.tokens", "yoo.gate_logits", "yoo.temperature", "head.weight", "head.bias"}),
    ("transhp", (), {"transhp.prototypes", "transhp.vectors", "head.weight", "head.bias"}),
])
def test_exactly_these_train_and_the_backbone_stays_frozen(method, sets, names):
    model = tiny_model(method, *sets, **CIFAR)
    assert trained(model) == names
    assert not model.backbone_trains and not model.backbone.training


def _loss(model, x, y, criterion):
    """The method's training loss of one forward (auxiliary outputs included)."""
    logits, aux = model(x, with_aux=True)
    return model.loss(logits, y, criterion, **aux)


@pytest.mark.parametrize("method", METHODS)
def test_a_step_lowers_the_loss_on_a_fixed_batch(method):
    model = tiny_model(method, *(("method.mapping=frequency",) if method == "autovp" else ()), **CIFAR)
    x, y = images(model, 8), torch.arange(8) % K
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    model.eval()  # no dropout: the same function before and after
    loss = _loss(model, x, y, criterion)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = _loss(model, x, y, criterion).item()
    assert after < loss.item() - 1e-5, (method, loss.item(), after)


@pytest.mark.parametrize("method", ["yoo", "lion"])
def test_checkpoint_round_trip_gives_the_same_logits(method):
    model = tiny_model(method, **CIFAR).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))  # away from the initialisation, which a rebuild would repeat
    cfg = bind_requirements(resolve_config(None, [*tiny_overrides("p8_d48_32px", method), "data.name=cifar100"]))
    ckpt = Checkpoint.of(model, cfg, [str(c) for c in range(K)], {}, 1)
    x = images(model)
    with torch.no_grad():
        assert torch.equal(build_trained_model(ckpt)(x), model(x))


# ---- the source label space and the label mappings (ILM-VP, AutoVP) --------------------------------


def reference_mapping(counts: np.ndarray, per_class: int) -> list[list[int]]:
    """ILM-VP's own procedure, literally: repeated argmax over the flattened matrix, striking used rows/columns."""
    dist = counts.astype(float).copy()
    chosen = [[] for _ in range(dist.shape[1])]
    for _ in range(per_class * dist.shape[1]):
        s, k = divmod(int(dist.argmax()), dist.shape[1])
        chosen[k].append(s)
        dist[s] = -1
        if len(chosen[k]) == per_class:
            dist[:, k] = -1
    return chosen


@pytest.mark.parametrize("per_class", [1, 3])
@pytest.mark.parametrize("seed", range(5))
def test_frequency_mapping_is_ilmvp_greedy_procedure(per_class, seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, (40, 6)) * (rng.random((40, 6)) < 0.3)  # many zeros and ties
    mapping = frequency_mapping(torch.from_numpy(counts), per_class)
    assert mapping.shape == (6, per_class)
    assert mapping.tolist() == reference_mapping(counts, per_class)
    assert len(set(mapping.flatten().tolist())) == 6 * per_class  # one-to-one


def test_frequency_mapping_small_example():
    counts = torch.tensor([[0, 5], [9, 7], [3, 0], [0, 0]])
    assert frequency_mapping(counts, 1).tolist() == [[1], [0]]  # 9 -> target 0 takes source 1; 5 -> target 1
    assert frequency_mapping(counts, 2).tolist() == [[1, 2], [0, 3]]  # 0 then 3 fill up in order


def test_source_label_space_is_the_kept_classifier_or_a_seeded_projection(tmp_path):
    # weights none: the architecture's head at random init is kept (1000 classes)
    model = tiny_model("ilmvp", **CIFAR).eval()
    x = images(model)
    with torch.no_grad():
        features = model.forward_features(x)
        assert torch.equal(model.source_logits(x), model.backbone.get_classifier()(features))
    assert model.ilmvp.source.classes == 1000 and "ilmvp.source.projection" not in model.trainable_state_dict()
    # a headless backbone: a fixed random projection, in the checkpoint, the same for the same seed
    headless = tiny_model(
        "ilmvp", "backbone.kwargs={patch_size: 8, embed_dim: 48, depth: 2, num_heads: 2, num_classes: 0}",
        "method.source_classes=30", **CIFAR)
    again = tiny_model(
        "ilmvp", "backbone.kwargs={patch_size: 8, embed_dim: 48, depth: 2, num_heads: 2, num_classes: 0}",
        "method.source_classes=30", **CIFAR)
    projection = headless.trainable_state_dict()["ilmvp.source.projection"]
    assert projection.shape == (30, 48) and torch.equal(projection, again.ilmvp.source.projection)
    with torch.no_grad():
        assert headless.source_logits(x).shape == (4, 30)


def test_backbone_keeps_the_classifier_of_a_local_file_or_none(tmp_path):
    from safetensors.torch import save_file

    kw = dict(TINY_VITS["p8_d48_32px"])
    img = kw.pop("img_size")
    source = create_backbone(BackboneConfig("vit_tiny_patch16_224", "none", img, dict(kw, num_classes=7)),
                             keep_classifier=True)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, tmp_path / "with-head.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("head.")}, tmp_path / "headless.safetensors")
    with_head = create_backbone(BackboneConfig("vit_tiny_patch16_224", str(tmp_path / "with-head.safetensors"), img,
                                               kw), keep_classifier=True)
    assert with_head.num_classes == 7 and torch.equal(with_head.head.weight, source.head.weight)
    for path, keep in (("with-head", False), ("headless", True)):
        model = create_backbone(BackboneConfig("vit_tiny_patch16_224", str(tmp_path / f"{path}.safetensors"), img, kw),
                                keep_classifier=keep)
        assert model.num_classes == 0 and isinstance(model.get_classifier(), nn.Identity)
    # the quickstart's backbone is headless: the label-mapping methods fall back to the projection
    quick = build_model(resolve_config("quickstart", ["method.name=ilmvp"]), 5)
    assert quick.backbone.num_classes == 0 and not quick.ilmvp.source.pretrained and quick.ilmvp.source.classes == 1000


def test_expansive_prompt_shrinks_the_image_into_a_grey_frame():
    model = tiny_model("ilmvp", "method.image_fraction=0.5", **CIFAR).eval()
    prompt = model.ilmvp.prompt
    x = images(model, 2)
    parts = prompt(x)
    assert prompt.inner == (16, 16) and (prompt.top, prompt.left) == (8, 8)
    pixels = parts.prompted * prompt.std + prompt.mean
    inside = (slice(None), slice(None), slice(8, 24), slice(8, 24))
    expected = torch.nn.functional.interpolate(x * prompt.std + prompt.mean, size=(16, 16), mode="bilinear",
                                               antialias=True)
    assert torch.allclose(pixels[inside], expected, atol=1e-5)
    frame = torch.ones(32, 32, dtype=torch.bool)
    frame[8:24, 8:24] = False
    assert torch.allclose(pixels[..., frame], torch.full_like(pixels[..., frame], 0.5))  # black + sigmoid(0)
    # only the frame receives a gradient
    model(x).sum().backward()
    grad = model.ilmvp.prompt.delta.grad
    assert grad[:, 8:24, 8:24].abs().sum() == 0 and grad[:, frame].abs().sum() > 0


def test_mapping_from_the_training_split_and_when_it_is_recomputed(monkeypatch):
    model = tiny_model("ilmvp", "method.remap_every=2", **CIFAR).eval()
    batches = [(images(model, 6, seed=s), torch.tensor([0, 1, 2, 3, 4, 0])) for s in range(3)]
    with torch.no_grad():
        counts = torch.zeros(1000, K, dtype=torch.int64)
        for x, y in batches:
            for s, k in zip(model.source_logits(x).argmax(1).tolist(), y.tolist(), strict=True):
                counts[s, k] += 1
    model.on_epoch_start(0, training_data(batches))
    assert torch.equal(model.ilmvp.mapping.index, frequency_mapping(counts, 1))
    calls = []
    monkeypatch.setattr(model, "remap", lambda data: calls.append(data))
    for epoch in range(1, 5):
        model.on_epoch_start(epoch, training_data(batches))
    model.prepare(training_data(batches))
    assert len(calls) == 2  # epochs 2 and 4; prepare leaves it to the epochs
    autovp = tiny_model("autovp", "method.mapping=frequency", **CIFAR)  # FreqMap: once, before the first epoch
    monkeypatch.setattr(autovp, "remap", lambda data: calls.append(data))
    autovp.prepare(training_data(batches))
    autovp.on_epoch_start(0, training_data(batches))
    assert len(calls) == 3


def test_autovp_frequency_mapping_averages_its_source_classes():
    model = tiny_model("autovp", "method.mapping=frequency", "method.per_class=3", **CIFAR).eval()
    x = images(model)
    with torch.no_grad():
        source = model.source_logits(x)
        index = model.autovp.mapping.index
        assert index.shape == (K, 3)
        assert torch.allclose(model(x), source[:, index].mean(-1))
    with pytest.raises(ConfigError, match="method.per_class: 300 source classes for each of 5 classes need 1500"):
        tiny_model("autovp", "method.mapping=frequency", "method.per_class=300", **CIFAR)
    with pytest.raises(ConfigError, match="method.remap_every: 2, but a fully_connected mapping is trained"):
        resolve_config(None, ["method.name=autovp", "method.remap_every=2"])


# ---- Yoo et al. -----------------------------------------------------------------------------------


def test_yoo_open_gates_at_temperature_one_are_vpt_shallow_and_closed_gates_keep_the_prompts():
    yoo = tiny_model("yoo", "method.num_tokens=3", vit="p4_d96_32px", **CIFAR).eval()
    vpt = tiny_model("vpt", "method.num_tokens=3", "method.deep=false", vit="p4_d96_32px", **CIFAR).eval()
    vpt.backbone.load_state_dict(yoo.backbone.state_dict())
    x = images(yoo, 2)
    with torch.no_grad():
        vpt.vpt.tokens[0].copy_(yoo.yoo.tokens)
        yoo.yoo.gate_logits.fill_(1e4)  # gates 1: every block updates the prompts, as in VPT
        assert torch.allclose(yoo.forward_features(x), vpt.forward_features(x), atol=1e-5)
        yoo.yoo.gate_logits.fill_(-1e4)  # gates 0: the prompts reach every block unchanged
        seen = []
        hooks = [b.norm1.register_forward_pre_hook(lambda _m, a: seen.append(a[0][:, 1:4].clone()))
                 for b in yoo.backbone.blocks]
        yoo.forward_features(x)
        for hook in hooks:
            hook.remove()
        assert all(torch.allclose(s, yoo.yoo.tokens.expand(2, -1, -1)) for s in seen)


def test_yoo_temperature_divides_the_attention_logits():
    from insvp_cli.methods.yoo.model import attention

    model = tiny_model("yoo", **CIFAR).eval()
    attn, x = model.backbone.blocks[0].attn, torch.randn(2, 7, 48)
    with torch.no_grad():
        assert torch.allclose(attention(attn, x, torch.tensor(1.0)), attn(x), atol=1e-5)
        hot = attention(attn, x, torch.tensor(1e5))  # uniform attention: every token gets the mean of the values
        _, _, v = attn.qkv(x).reshape(2, 7, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        mean = v.mean(dim=2, keepdim=True).expand_as(v).transpose(1, 2).reshape(2, 7, 48)
        assert torch.allclose(hot, attn.proj(mean), atol=1e-3)
    assert model.yoo.gate_logits.tolist() == [-5.0]  # one gate for two blocks: none for the last


def test_yoo_temperature_needs_plain_blocks_its_gates_do_not():
    import timm
    from timm.models.vision_transformer import ResPostBlock

    kw = dict(TINY_VITS["p8_d48_32px"])
    post = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, block_fn=ResPostBlock, **kw)
    cfg = resolve_config(None, tiny_overrides("p8_d48_32px", "yoo"))
    with pytest.raises(UsageError, match="ResPostBlock"):
        build_model(cfg, K, backbone=copy.deepcopy(post))
    gated = build_model(resolve_config(None, [*tiny_overrides("p8_d48_32px", "yoo"), "method.temperature=false"]), K,
                        backbone=post)
    assert gated(torch.randn(2, 3, 32, 32)).shape == (2, K)


# ---- TransHP ---------------------------------------------------------------------------------------


def test_transhp_prompts_enter_one_block_and_give_coarse_logits():
    model = tiny_model("transhp", vit="p32_d192_64px", **CIFAR).eval()  # 4 blocks: the prompts enter block 2
    lengths = []
    hooks = [b.register_forward_pre_hook(lambda _m, a: lengths.append(a[0].shape[1])) for b in model.backbone.blocks]
    x = images(model, 3)
    with torch.no_grad():
        assert model(x).shape == (3, K)
        logits, aux = model(x, with_aux=True)
    for hook in hooks:
        hook.remove()
    assert lengths == [5, 5, 5 + 20, 5] * 2  # class token + 4 patches; + 20 superclass prompts in block 2
    assert aux["coarse_logits"].shape == (1, 3, 20) and torch.equal(logits, model(x))
    assert not hasattr(model, "_coarse_logits")  # nothing of a forward is kept on the model
    with pytest.raises(ConfigError, match="method.block: 4 is not a block"):
        tiny_model("transhp", "method.block=4", vit="p32_d192_64px", **CIFAR)


def test_transhp_coarse_loss_maps_soft_targets_through_the_hierarchy():
    model = tiny_model("transhp", "method.coarse_weight=0.5", **CIFAR).eval()
    model.prepare(training_data([], coarse=[3, 3, 7, 0, 7]))
    assert model.transhp.coarse_of.tolist() == [3, 3, 7, 0, 7]
    x = images(model, 2)
    fine = nn.CrossEntropyLoss()
    soft = torch.tensor([[0.5, 0.3, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.6, 0.4]])
    with torch.no_grad():
        logits, aux = model(x, with_aux=True)
        coarse = torch.log_softmax(aux["coarse_logits"][0], -1)
        loss = model.loss(logits, soft, fine, **aux)
        expected = fine(logits, soft) - 0.5 * ((0.8 * coarse[0, 3] + 0.2 * coarse[0, 7])
                                               + (0.6 * coarse[1, 0] + 0.4 * coarse[1, 7])) / 2
        assert torch.allclose(loss, expected)
        hard = model.loss(logits, torch.tensor([2, 3]), fine, **aux)
        assert torch.allclose(hard, fine(logits, torch.tensor([2, 3])) - 0.5 * (coarse[0, 7] + coarse[1, 0]) / 2)


def test_transhp_needs_coarse_classes():
    cfg = resolve_config(None, tiny_overrides("p8_d48_32px", "transhp"), bind=False)
    with pytest.raises(UsageError, match="method transhp needs method.coarse_classes"):
        build_model(cfg, K)


# ---- LION ------------------------------------------------------------------------------------------


def test_lion_starts_as_the_backbone_and_solves_its_fixed_points():
    model = tiny_model("lion", **CIFAR).eval()
    x = images(model)
    with torch.no_grad():
        frozen = model.backbone.forward_head(model.backbone.forward_features(x), pre_logits=True)
        assert torch.equal(model.forward_features(x), frozen)  # zero read-outs
        for layer, inputs in ((model.lion.image, x), (model.lion.features, frozen)):
            assert layer.step_scale() * math.sqrt(math.prod(layer.recur.weight.shape[2:])) * layer.recur.weight.norm() \
                <= model.cfg.contraction + 1e-6
            z = layer(inputs)
            again = torch.tanh(layer.step_scale() * layer.recur(z) + layer.inject(inputs))
            assert (again - z).norm() <= 1e-3 * z.norm()  # a fixed point


def test_lion_pruning_penalty():
    model = tiny_model("lion", "method.prune_threshold=0.05", "method.prune_weight=2.0", **CIFAR)
    plain = tiny_model("lion", **CIFAR)
    x, y = images(model), torch.arange(4) % K
    ce = nn.CrossEntropyLoss()
    weights = [p for n, p in model.lion.named_parameters() if n.endswith("weight")]
    small = sum((w.abs() * (w.abs() < 0.05)).sum() for w in weights)
    with torch.no_grad():
        logits = model(x)
        assert torch.allclose(model.loss(logits, y, ce), ce(logits, y) + 2.0 * small)
        assert torch.equal(plain.loss(logits, y, ce), ce(logits, y))


# ---- hierarchies and data needs --------------------------------------------------------------------


def test_builtin_cifar100_hierarchy_is_its_twenty_superclasses():
    h = read_hierarchy(BUILTIN / "cifar100.yaml")
    assert len(h.coarse) == 20 and len(h.parent) == 100
    assert all(list(h.parent.values()).count(c) == 5 for c in h.coarse)
    assert h.parent["maple_tree"] == "trees" and h.parent["aquarium_fish"] == "fish"


@pytest.mark.parametrize(("text", "suffix"), [
    ("round: ['0', '6', '8', '9']\nstraight: ['1', '4', '7']\nother: ['2', '3', '5']\n", ".yaml"),
    ('{"0": "round", "1": "straight", "2": "other", "3": "other", "4": "straight", "5": "other", "6": "round", '
     '"7": "straight", "8": "round", "9": "round"}', ".json"),
])
def test_hierarchy_files_in_both_forms(tmp_path, text, suffix):
    path = tmp_path / f"h{suffix}"
    path.write_text(text)
    h = read_hierarchy(path)
    assert h.coarse == ["round", "straight", "other"]
    assert h.coarse_labels(["7", "8", "9"]) == [1, 0, 0]  # by name (digits 7, 8, 9 as labels 0, 1, 2)
    assert h.coarse_labels(["a", "b"]) == [0, 1]  # by label index when the name is unknown
    with pytest.raises(UsageError, match="class 'x' \\(label 10\\) has no coarse label"):
        h.coarse_labels([str(i) for i in range(10)] + ["x"])


@pytest.mark.parametrize(("text", "match"), [
    ("a: [1, 2]\nb: 3\n", "mixes the two forms"),
    ("a: [1, 2]\nb: [2]\n", "class '2' is in two coarse classes"),
    ("[1, 2]", "expected a mapping"),
    ("a: [1\n", r"h.yaml:2:1: expected ',' or '\]'"),
])
def test_bad_hierarchy_files(tmp_path, text, match):
    path = tmp_path / "h.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=match):
        read_hierarchy(path)


def test_where_a_hierarchy_comes_from(tmp_path):
    data = resolve_config(None, ["data.name=cifar100"]).data
    assert hierarchy_file(data) == BUILTIN / "cifar100.yaml"
    (tmp_path / "hierarchy.json").write_text('{"x": "y"}')
    rooted = resolve_config(None, ["data.name=cifar100", f"data.root={tmp_path}"]).data
    assert hierarchy_file(rooted) == tmp_path / "hierarchy.json"
    given = resolve_config(None, ["data.name=cifar100", f"data.root={tmp_path}", "data.hierarchy=/h.yaml"]).data
    assert str(hierarchy_file(given)) == "/h.yaml"
    assert hierarchy_file(resolve_config(None, ["data.name=digits"]).data) is None


def test_bind_requirements():
    plain = resolve_config(None, ["method.name=vpt"])
    assert bind_requirements(plain) is plain
    cfg = bind_requirements(resolve_config(None, ["method.name=transhp", "data.name=cifar100"]))
    assert cfg.method.coarse_classes == 20
    assert bind_requirements(cfg) == cfg
    with pytest.raises(ConfigError, match="method.coarse_classes: 7, but the hierarchy .* has 20 coarse classes"):
        bind_requirements(resolve_config(None, ["method.name=transhp", "data.name=cifar100",
                                                "method.coarse_classes=7"]))
    with pytest.raises(MissingNeed, match="method transhp needs a coarse-label hierarchy, which data.name=digits"):
        bind_requirements(resolve_config(None, ["method.name=transhp", "data.name=digits"]))


# ---- through fit and the command line ---------------------------------------------------------------


def digits_run(method: str, *extra: str) -> list[str]:
    return [*tiny_overrides("p8_d48_32px", method), "data.name=digits", "data.num_workers=0", "data.batch_size=64",
            "data.classes=[0, 1, 2]", "train.epochs=1", "train.lr=0.01", "train.device=cpu", *extra]


@pytest.mark.parametrize(("method", "extra", "buffer"), [
    ("ilmvp", ("backbone.kwargs={patch_size: 8, embed_dim: 48, depth: 2, num_heads: 2, num_classes: 0}",
               "method.source_classes=50"), "ilmvp.mapping.index"),  # headless: the projection's label space
    ("autovp", ("method.mapping=frequency", "method.per_class=2"), "autovp.mapping.index"),
    ("transhp", (), "transhp.coarse_of"),
])
def test_data_dependent_state_is_in_the_checkpoint(tmp_path, method, extra, buffer):
    hierarchy = tmp_path / "digits.yaml"
    hierarchy.write_text("small: ['0', '1']\nlarge: ['2', '9']\n")
    cfg = resolve_config(None, digits_run(method, *extra, f"data.hierarchy={hierarchy}"), bind=True)
    summary = fit(cfg, tmp_path / "run")
    ckpt = Checkpoint.read(tmp_path / "run" / "best.pt")
    state = ckpt.state_dict[buffer]
    if method == "transhp":
        assert ckpt.config.method.coarse_classes == 2 and state.tolist() == [0, 0, 1]
    else:  # computed from the training split: not the initial mapping onto the first source classes
        assert not torch.equal(state, torch.arange(state.numel()).view_as(state))
    assert torch.equal(insvp_cli.load_model(tmp_path / "run" / "best.pt").get_buffer(buffer), state)
    # rebuilt from the checkpoint alone, the model gives the trained model's test logits: the same loss to the bit
    result = evaluate_checkpoint(tmp_path / "run")
    assert (result["acc"], result["loss"]) == (summary["test_acc"], ckpt.metrics["test_loss"])


def test_a_dataset_without_hierarchy_stops_before_training(tmp_path, cli):
    sets = [x for s in digits_run("transhp") for x in ("--set", s)]
    proc = insvp("train", *sets, "--out", tmp_path / "train")
    one_line_error(proc.stderr, proc.returncode, 2)
    assert proc.stderr.strip() == (
        "error: method transhp needs a coarse-label hierarchy, which data.name=digits does not provide: set "
        "data.hierarchy=FILE (a YAML or JSON file mapping class names or label indices to coarse labels) or put "
        "hierarchy.yaml in data.root; cifar100 has one built in")
    assert not (tmp_path / "train").exists()
    # compare checks every method before the first one trains
    sets = [x for s in digits_run("linear") for x in ("--set", s) if not s.startswith("method.name")]
    code, output = cli("compare", "--methods", "linear,transhp", *sets, "--out", tmp_path / "compare")
    one_line_error(output, code, 2, "method transhp needs a coarse-label hierarchy")
    assert not (tmp_path / "compare").exists()
    # and so do sweeps (compare --sweep and reproduce --tune plan one per method or run) before the first trial
    sets = [x for s in digits_run("transhp") for x in ("--set", s) if not s.startswith("train.lr")]
    code, output = cli("sweep", *sets, "--out", tmp_path / "sweep")
    one_line_error(output, code, 2, "method transhp needs a coarse-label hierarchy")
    assert not (tmp_path / "sweep").exists()


def test_a_sweeps_final_run_config_holds_what_follows_from_the_data(tmp_path):
    """As the final run's folder stores it (TransHP's coarse classes), so a rerun finds no difference."""
    hierarchy = tmp_path / "digits.yaml"
    hierarchy.write_text("small: ['0', '1']\nlarge: ['2', '9']\n")
    sets = [s for s in digits_run("transhp", f"data.hierarchy={hierarchy}") if not s.startswith("train.lr")]
    sweep = plan_sweep(None, sets, tmp_path / "sweep")
    assert sweep.final_run({"train.lr": 0.01}).config.method.coarse_classes == 2


def test_a_learned_label_mapping_builds_its_head_as_the_config_asks():
    # FullyMap: a trained head
    model = tiny_model("autovp", "method.head_norm=true", "method.head_init=trunc_normal", **CIFAR)
    norm, linear = model.head
    assert isinstance(norm, nn.BatchNorm1d) and not norm.affine and torch.count_nonzero(linear.bias) == 0
