"""The package as pip installs it: a wheel carries its recipes and the quickstart backbone and runs anywhere; its
modules import each other without cycles and stay small."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from insvp_cli.resolve import RECIPES, find_recipe, shipped_recipes

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "insvp_cli"
MAX_MODULE_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere: at the top, under ``TYPE_CHECKING``, inside functions."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # ``from . import x`` imports the module ``x``; ``from .m import x`` the module ``m``
            found.update(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                         for alias in node.names)
    return (found & modules) - {name}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (a path that comes back to its start), or ``[]``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return []
        for nxt in sorted(graph[node]):
            cycle = visit(nxt, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return []


def test_no_module_imports_itself_back_type_only_and_lazy_imports_included():
    paths = list(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {_module_name(p): _imports(p, modules) for p in paths}
    assert graph["insvp_cli.sweep.outputs"] >= {"insvp_cli.figures.sweep_plot"}  # the walk sees lazy imports
    assert graph["insvp_cli.figures.sweep_plot"] >= {"insvp_cli.sweep.rows"}  # and type-only ones
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_type_only_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_module_is_over_450_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


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


def test_an_installed_wheel_runs_from_any_folder(wheel, tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                           str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    code = ("import insvp_cli; from insvp_cli.resolve import resolve_config; from insvp_cli.backbone import "
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
    assert "insvp train --recipe svhn --set method.name=insvp --set data.root=data/svhn" in proc.stdout
