"""Training protocols (config.protocols): every method's published protocol, the table of docs/protocols.md, the
optimizers and schedules they need, and the layering of protocol, recipe and ``--set``."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from insvp_cli.config.schema import TrainConfig
from insvp_cli.methods import METHODS
from insvp_cli.methods.build import build_model
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.train.engine import Schedule, build_optimizer
from insvp_cli.train.loop import fit
from tests.conftest import INSVP, REPO, tiny_config, tiny_overrides, tiny_run

DOC = REPO / "docs" / "protocols.md"
# side-tuning's AlexNet without its ImageNet download, at AlexNet's smallest sensible input
OFFLINE = {"sidetune": ("method.side_weights=none", "method.side_image_size=64")}
COLUMNS = ("method", "optimizer", "lr", "weight decay", "schedule", "epochs", "warm-up epochs", "batch", "mixing",
           "head", "no weight decay on", "source")


def published(method: str, *sets: str):
    """``method``'s config under its published protocol, on the defaults (no recipe)."""
    return resolve_config(None, [f"method.name={method}", "method.protocol=published", *sets], bind=False)


def protocol_row(method: str) -> tuple[str, ...]:
    """The row of docs/protocols.md that ``method``'s published protocol resolves to."""
    cfg = published(method)
    train, protocol = cfg.train, cfg.method.published
    schedule = ("cosine" if train.schedule == "cosine"
                else f"x{train.gamma:g} at {', '.join(f'{m:g}' for m in train.milestones)} of the epochs")
    optimizer = f"SGD (momentum {train.momentum:g})" if train.optimizer == "sgd" else {"adam": "Adam",
                                                                                      "adamw": "AdamW"}[train.optimizer]
    mixing = (f"Mixup {train.mixup:g}, CutMix {train.cutmix:g}, smoothing {train.label_smoothing:g}"
              if train.mixup or train.cutmix or train.label_smoothing else "none")
    if not cfg.data.augment:
        mixing += "; no augmentation"
    skip = cfg.method.weight_decay_skip
    head = cfg.method.head_init + (" + BatchNorm" if cfg.method.head_norm else "")
    return (method, optimizer, f"{train.lr:g}", f"{train.weight_decay:g}", schedule, str(train.epochs),
            f"{train.warmup_fraction * train.epochs:g}", str(cfg.data.batch_size), mixing, head,
            ", ".join(skip) if skip is not None else "the method's rule", protocol.source)


def doc_rows() -> dict[str, tuple[str, ...]]:
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("| ")]
    header = tuple(cell.strip() for cell in lines[0].strip("|").split("|"))
    assert header == COLUMNS
    rows = [tuple(cell.strip().strip("`") for cell in line.strip().strip("|").split("|")) for line in lines[1:]]
    return {row[0]: row for row in rows if not set(row[0]) <= {"-"}}


@pytest.mark.parametrize("method", METHODS.names())
def test_docs_table_is_what_each_published_protocol_resolves_to(method):
    assert doc_rows()[method] == protocol_row(method)


def test_docs_table_lists_every_method_once():
    assert sorted(doc_rows()) == sorted(METHODS.names())


# ---- the numbers the comparison with the authors' code asked for ------------------------------------------------


def test_label_mapping_methods_train_as_their_code():
    ilmvp = published("ilmvp")
    assert (ilmvp.train.optimizer, ilmvp.train.lr, ilmvp.train.weight_decay) == ("adam", 0.01, 0)
    assert ilmvp.train.epochs == 200
    assert (ilmvp.train.schedule, ilmvp.train.milestones, ilmvp.train.gamma) == ("multistep", [0.5, 0.72], 0.1)
    assert not ilmvp.data.augment and ilmvp.train.mixup == ilmvp.train.cutmix == ilmvp.train.label_smoothing == 0
    autovp = published("autovp")
    assert (autovp.train.optimizer, autovp.train.lr, autovp.train.weight_decay, autovp.train.epochs,
            autovp.train.schedule) == ("adam", 0.001, 0, 200, "multistep")


def decayed(method: str, *sets: str) -> set[str]:
    """Names of the trainable tensors that the optimizer decays for ``method`` on a tiny ViT."""
    cfg = tiny_config([*tiny_overrides(method=method), *sets])
    model = build_model(cfg, 5)
    optimizer = build_optimizer(model, cfg.train)
    ids = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def trainable(method: str, *sets: str) -> set[str]:
    model = build_model(tiny_config([*tiny_overrides(method=method), *sets]), 5)
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_autovp_fullymap_head_is_not_decayed_unless_asked():
    assert not any(n.startswith("head.") for n in decayed("autovp"))
    assert "head.weight" in decayed("autovp", "method.mapping_weight_decay=true")


def test_transhp_prototypes_decay_as_timm_decays_them():
    assert {"transhp.prototypes", "transhp.vectors"} <= decayed("transhp")


def test_yoo_published_protocol_is_sgd_with_ten_warm_up_epochs():
    cfg = published("yoo")
    assert (cfg.train.optimizer, cfg.train.momentum, cfg.train.lr) == ("sgd", 0.9, 0.1)
    assert math.isclose(cfg.train.warmup_fraction * cfg.train.epochs, 10) and cfg.method.head_init == "vpt"
    assert cfg.train.weight_decay == 0  # no grid published: its own values
    assert cfg.method.default_grid(64) == {"train.lr": [0.1], "train.weight_decay": [0.0]}


@pytest.mark.parametrize("method", ["e2vpt", "sidetune", "vpt", "linear", "bias"])
def test_vpts_solver_decays_everything_but_the_head_bias(method):
    sets = ("method.protocol=published", *OFFLINE.get(method, ()))
    assert decayed(method, *sets) == trainable(method, *sets) - {"head.bias"}


def test_e2vpt_published_decays_its_prompts_and_key_value_prompts():
    names = decayed("e2vpt", "method.protocol=published")
    assert any("kv" in n or "key" in n for n in names) and any(n.startswith("e2vpt.") for n in names)
    assert not any(n.startswith("e2vpt.") for n in decayed("e2vpt"))  # the shared protocol exempts prompts


def test_damvp_published_decays_its_prompts_not_its_head():
    names = decayed("damvp", "method.protocol=published")
    assert names == trainable("damvp") - {"head.weight", "head.bias"} and names


# ---- layering -----------------------------------------------------------------------------------------------------


def test_protocol_replaces_the_recipes_training_keys_and_set_wins():
    # svhn's recipe holds InsVP's lr 0.004; VPT's published protocol replaces it, --set wins over both
    assert resolve_config("svhn", ["method.name=vpt"]).train.lr == 0.004
    assert resolve_config("svhn", ["method.name=vpt", "method.protocol=published"]).train.lr == 0.1
    cfg = resolve_config("svhn", ["method.name=vpt", "method.protocol=published", "train.lr=0.5",
                                  "data.batch_size=32", "method.head_init=torch"])
    assert (cfg.train.lr, cfg.data.batch_size, cfg.method.head_init, cfg.train.optimizer) == (0.5, 32, "torch", "sgd")


def test_recipe_method_keys_win_over_the_protocols(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: vpt, protocol: published, dropout: 0.3}\n")
    cfg = resolve_config(recipe)
    assert cfg.method.dropout == 0.3 and cfg.method.prompt_weight_decay and cfg.train.optimizer == "sgd"


def test_shared_protocol_is_the_default_and_unchanged():
    assert resolve_config(None, ["method.name=vpt"]).train == TrainConfig()


# ---- optimizers and schedules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                           ("sgd", torch.optim.SGD)])
def test_optimizer_follows_the_config(name, cls):
    model = build_model(tiny_config(tiny_overrides(method="linear")), 3)
    optimizer = build_optimizer(model, TrainConfig(optimizer=name, momentum=0.5))
    assert type(optimizer) is cls
    if name == "sgd":
        assert optimizer.defaults["momentum"] == 0.5


def test_multistep_schedule_multiplies_by_gamma_at_each_milestone():
    cfg = TrainConfig(epochs=10, lr=1.0, min_lr=0.0, schedule="multistep", milestones=[0.5, 0.72], gamma=0.1,
                      warmup_fraction=0.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = Schedule(cfg, steps_per_epoch=2)
    schedule.apply(opt)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.advance(opt)
    # ILM-VP's MultiStepLR(milestones=[int(0.5 * 10), int(0.72 * 10)]): epochs 0-4 at 1, 5-6 at 0.1, 7-9 at 0.01
    assert lrs == pytest.approx([1.0] * 10 + [0.1] * 4 + [0.01] * 6)


def test_milestones_out_of_order_are_a_config_error():
    result = subprocess.run([INSVP, "train", "--set", "train.milestones=[0.7, 0.5]", "--set", "train.epochs=1"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "train.milestones" in result.stderr and "Traceback" not in result.stderr


# ---- every method trains under its published protocol ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("h") / "hierarchy.yaml"
    path.write_text("'0': low\n'1': low\n'2': high\n")
    return path


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_under_its_published_protocol(method, hierarchy, tmp_path):
    extra = {"e2vpt": ["method.prune_epoch=1"], "transhp": [f"data.hierarchy={hierarchy}"],
             "damvp": ["method.cluster_samples=30", "method.num_clusters=2"]}.get(method, [])
    cfg = resolve_config(None, tiny_run(method, 2, "method.protocol=published", *OFFLINE.get(method, ()), *extra))
    assert cfg.method.protocol == "published"
    summary = fit(cfg, tmp_path / "run")
    assert summary["best_epoch"] in (1, 2) and 0 <= summary["test_acc"] <= 100
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["method"]["protocol"] == "published"
    assert stored["train"]["optimizer"] == cfg.method.published.train.get("optimizer", "adamw")
