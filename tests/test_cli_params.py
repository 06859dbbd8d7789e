"""`insvp params` through the real command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from insvp_cli.cli import app
from tests.conftest import one_line_error

runner = CliRunner()


def test_release_counts_as_json():
    result = runner.invoke(app, ["params", "--method", "insvp", "--backbone", "vit_base_patch16_224",
                                 "--num-classes", "47", "--set", "method.preset=release", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["components"] == {"backbone": 85_798_656, "head": 36_143, "common_prompt": 147_456,
                                    "patch_prompter": 25_360, "global_prompter": 13_437,
                                    "specific_prompter": 85_408}
    assert report["trainable"] == 25_360 + 13_437 + 147_456 + 85_408 + 36_143
    assert report["trainable_without_head"] == report["trainable"] - 36_143


def test_table_from_a_recipe():
    result = runner.invoke(app, ["params", "--recipe", "recipes/svhn.yaml", "--num-classes", "10"])
    assert result.exit_code == 0, result.output
    assert "specific prompter" in result.output and "trainable params:" in result.output


def test_mocov3_recipe_counts_without_its_weights_file():
    # the recipe names a local MoCo v3 file that is absent here; `params` builds with random init
    result = runner.invoke(app, ["params", "--recipe", "recipes/mocov3/cub.yaml", "--num-classes", "200",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["components"]["backbone"] == 85_798_656
    assert report["components"]["common_prompt"] == 12 * 9 * 768


def test_usage_errors_exit_2_with_one_line(cli):
    code, output = cli("params", "--set", "method.nope=1")
    one_line_error(output, code, 2, "error: unknown key method.nope; valid keys:")
