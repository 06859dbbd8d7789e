"""The resolver: defaults < recipe < --set, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from insvp_cli.common.errors import ConfigError, UsageError
from insvp_cli.config.schema import Config
from insvp_cli.resolve.layers import resolve_config

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"
RECIPES = sorted(RECIPE_DIR.rglob("*.yaml"))


def test_precedence(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train: {lr: 0.5, epochs: 7}\nmethod: {name: insvp, prompt_len: 4}\n")
    cfg = resolve_config(recipe, ["train.lr=0.25"])
    assert cfg.train.lr == 0.25  # --set beats the recipe
    assert cfg.train.epochs == 7  # the recipe beats the default
    assert cfg.train.weight_decay == Config().train.weight_decay  # default
    assert cfg.method.prompt_len == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["train.lrr=1"], "unknown key train.lrr; valid keys: epochs, lr"),
        (["method.bogus=1"], "unknown key method.bogus; valid keys: name, head_init, head_norm, protocol"),
        (["nope.x=1"], "unknown key nope; valid keys: backbone, data, method, train"),
        (["train.epochs=ten"], "train.epochs: 'ten' is not an integer"),
        (["method.prompt_len=1.5"], "method.prompt_len: 1.5 is not of type int | null"),
        (["method.preset=paperr"], "method.preset: 'paperr' is not a valid choice; valid: paper, release"),
        (["method.name=nope"], "method.name: unknown method 'nope'; valid: "),
        (["data.download=maybe"], "data.download: 'maybe' is not a boolean"),
        (["train.lr"], "expected KEY.PATH=VALUE"),
        (["train=1"], "train: expected a mapping"),
        (["method=1"], "method: expected a mapping"),
        (["method.beta_image=2"], "method.beta_image: 2.0 is not in [0, 1]"),
    ],
)
def test_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=None) as info:
        resolve_config(None, override)
    assert message in str(info.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        resolve_config(tmp_path / "absent.yaml")


def test_dump_round_trip():
    cfg = resolve_config(None, ["method.preset=release", "train.lr=0.003"])
    again = resolve_config(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


def test_presets_fill_unset_values_only():
    release = resolve_config(None, ["method.preset=release"]).method
    assert (release.prompt_len, release.global_weight, release.patch_weight) == (16, 2.0, 1.0)
    assert (release.common_weight, release.specific_weight, release.specific_input) == (1.0, 1.0, "prompted")
    paper = resolve_config(None, ["method.preset=paper", "method.beta_image=0.6"]).method
    assert (paper.prompt_len, paper.global_weight, paper.patch_weight) == (9, 0.6, 0.4)
    assert (paper.common_weight, paper.specific_weight, paper.specific_input) == (0.5, 0.5, "image")
    with pytest.raises(ConfigError, match="contradicts"):
        resolve_config(None, ["method.beta_image=0.6", "method.global_weight=0.5"])


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.relative_to(RECIPE_DIR).with_suffix("").as_posix() for r in RECIPES])
def test_every_recipe_resolves(recipe):
    cfg = resolve_config(recipe)
    assert resolve_config(cfg.to_dict()) == cfg  # the config.yaml of its run rebuilds the same config


def test_switching_method_drops_the_recipes_method_keys(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: insvp, prompt_len: 4}\nmethods: {linear: {}}\n")
    assert resolve_config(recipe, ["method.name=linear"]).method.name == "linear"
    assert resolve_config(recipe).method.prompt_len == 4
    recipe.write_text("method: {name: linear}\nmethods: {insvp: {prompt_len: 3}}\n")
    assert resolve_config(recipe, ["method.name=insvp"]).method.prompt_len == 3
    assert resolve_config(recipe, ["method.name=insvp", "method.prompt_len=5"]).method.prompt_len == 5
    recipe.write_text("methods: {insvp: {prompt_lenn: 3}}\n")
    with pytest.raises(ConfigError, match="unknown key methods.insvp.prompt_lenn"):
        resolve_config(recipe)


def test_later_recipes_override_earlier_ones(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("train: {lr: 0.5, epochs: 7}\nmethod: {name: insvp, prompt_len: 4}\n"
                     "methods: {vpt: {num_tokens: 3}}\n")
    second.write_text("train: {lr: 0.25}\nmethod: {prompt_len: 6}\n")  # no name: insvp's keys
    cfg = resolve_config([first, second], ["train.epochs=2"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.method.prompt_len) == (0.25, 2, 6)
    second.write_text("method: {name: vpt, deep: false}\n")  # another method: insvp's keys do not apply
    cfg = resolve_config([first, second])
    assert (cfg.method.name, cfg.method.num_tokens, cfg.method.deep, cfg.train.lr) == ("vpt", 3, False, 0.5)
    assert resolve_config([first, second], ["method.name=insvp"]).method.prompt_len == 4


def test_resolve_binds_what_follows_from_the_data_unless_planning():
    from insvp_cli.resolve.needs import MissingNeed

    assert resolve_config(None, ["method.name=transhp", "data.name=cifar100"]).method.coarse_classes == 20
    assert resolve_config(None, ["method.name=transhp", "data.name=cifar100"], bind=False).method.coarse_classes is None
    with pytest.raises(MissingNeed, match="hierarchy"):
        resolve_config(None, ["method.name=transhp", "data.name=mnist5k"])
