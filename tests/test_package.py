"""The package as pip installs it: a wheel carries its recipes, the quickstart backbone and the serve page, and runs
anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from insvp_cli.data.fgvc import FGVC_SETS
from insvp_cli.resolve.recipes import RECIPES, find_recipe, shipped_recipes

REPO = Path(__file__).resolve().parents[1]


def test_recipes_are_found_by_name_and_by_path(tmp_path, monkeypatch):
    assert "svhn" in shipped_recipes() and "vtab/dtd" in shipped_recipes()
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here: names and the checkout-style path find the shipped ones
    assert find_recipe("svhn") == find_recipe("svhn.yaml") == find_recipe("recipes/svhn.yaml") == RECIPES / "svhn.yaml"
    assert find_recipe(REPO / "recipes" / "cub.yaml").samefile(RECIPES / "cub.yaml")
    (tmp_path / "svhn.yaml").write_text("train: {epochs: 3}\n")  # a file of the user's wins over the shipped name
    assert find_recipe("svhn.yaml") == Path("svhn.yaml")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("insvp-*.whl"))


def test_the_wheel_holds_every_recipe_and_the_quickstart_backbone(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = {f"insvp_cli/recipes/{name}.yaml" for name in shipped_recipes()}
    assert len(recipes) > 40 and recipes <= names
    assert "insvp_cli/assets/quickstart-vit-mnist04.safetensors" in names
    splits = {f"insvp_cli/data/fgvc_splits/{name}/{split}.json.gz" for name in FGVC_SETS for split in ("train", "val",
                                                                                                   "test")}
    assert splits <= names and "insvp_cli/data/fgvc_splits/README.md" in names  # VPT's FGVC splits, with their source
    assert {f"insvp_cli/serve/page/{name}" for name in ("index.html", "app.js", "style.css")} <= names


def test_an_installed_wheel_runs_from_any_folder(wheel, tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                           str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    code = ("import insvp_cli; from insvp_cli.resolve.layers import resolve_config; from insvp_cli.backbone import "
            "resolve_weights_path; cfg = resolve_config('quickstart'); "
            "print(insvp_cli.__file__, resolve_weights_path('asset:quickstart-vit-mnist04.safetensors').is_file())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    location, asset = proc.stdout.split()
    assert Path(location).is_relative_to(site) and asset == "True"
    args = ["reproduce", "table1", "--data-root", "data", "--dry-run"]
    proc = subprocess.run([sys.executable, "-m", "insvp_cli", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("insvp train --recipe svhn --set method.name=insvp --set method.protocol=published "
            "--set data.root=data/svhn") in proc.stdout
