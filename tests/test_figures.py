"""Figures: ``insvp gradcam`` (Figs. 3, 4), ``insvp tsne`` (Figs. 6, 8) and ``insvp params --plot`` (Fig. 5).

Two tiny runs (InsVP and a linear probe on three classes of scikit-learn's digits, one epoch) are
trained once for the module; every command is run on them through the CLI and checked for the files it
promises, and the arrays behind the pictures are checked for their size, finiteness and dependence on
the input. The token reshape of the CAM target layer is checked on models built directly.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from insvp_cli.common.errors import UsageError
from insvp_cli.data.splits import load_splits
from insvp_cli.figures.cam import CAM_METHODS, PatchTokens, cam_layer, compute_cam, explain
from insvp_cli.figures.gradcam import collect_images, resolve_target
from insvp_cli.figures.params_plot import collect_runs
from insvp_cli.figures.tsne import find_run, perplexity_for, plot_tsne, tsne_2d
from insvp_cli.methods.build import build_model
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.trained import TrainedModel
from insvp_cli.train.loop import fit
from tests.conftest import tiny_overrides, tiny_run, tiny_swin_overrides

CLASSES = ["0", "1", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """``runs/insvp`` then ``runs/linear`` (so the linear run is the more recent one)."""
    root = tmp_path_factory.mktemp("runs")
    for method in ("insvp", "linear"):
        fit(resolve_config(None, tiny_run(method, 1, batch_size=64, prompt_len=3)), root / method)
    return root


@pytest.fixture(scope="module")
def digit_files(runs, tmp_path_factory) -> Path:
    """Three test digits of the runs' data as PNG files (28 px originals, resized to 32 px by the transform)."""
    folder = tmp_path_factory.mktemp("digits")
    test = load_splits(resolve_config(None, tiny_run("insvp", 1, batch_size=64, prompt_len=3)).data).test
    for i in (0, len(test) // 2, len(test) - 1):
        image, label = test[i]
        image.resize((28, 28)).save(folder / f"digit-{i}-{CLASSES[label]}.png")
    return folder


def pngs(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.png")}


# --------------------------------------------------------------------------------------------------
# The CAM target layer's token reshape


def _last_norm1_tokens(model, x: torch.Tensor) -> torch.Tensor:
    layer, _ = cam_layer(model, (x.shape[-2], x.shape[-1]))
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(output.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[-1]


@pytest.mark.parametrize("prompt_len", [0, 1, 9, 16])
@pytest.mark.parametrize(("vit", "registers"), [("p8_d48_32px", 0), ("p16_d64_64px", 0), ("p8_d48_32px", 4)])
def test_reshape_keeps_exactly_the_patch_tokens(prompt_len, vit, registers):
    extra = [f"backbone.kwargs.reg_tokens={registers}"] if registers else []
    cfg = resolve_config(None, [*tiny_overrides(vit, "insvp"), f"method.prompt_len={prompt_len}", *extra])
    model = build_model(cfg, 5).eval()
    backbone = model.backbone
    size = cfg.backbone.img_size
    patch = backbone.patch_embed.patch_size[0]
    h = w = size // patch
    x = torch.randn(2, 3, size, size)
    tokens = _last_norm1_tokens(model, x)
    prefix = 1 + registers
    assert backbone.num_prefix_tokens == prefix
    # the last block carries the class token, the registers, L_p prompts and the patches
    assert tokens.shape == (2, prefix + prompt_len + h * w, backbone.embed_dim)
    _, reshape = cam_layer(model, (size, size))
    grid = reshape(tokens)
    assert grid.shape == (2, backbone.embed_dim, h, w)
    assert reshape.prompt_tokens == prompt_len
    # position (i, j) of the map is patch token i * w + j, counted after every prefix and prompt token
    patches = tokens[:, prefix + prompt_len:]
    for i, j in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)]:
        torch.testing.assert_close(grid[:, :, i, j], patches[:, i * w + j])


def test_reshape_counts_prompts_per_call_and_rejects_a_short_sequence():
    reshape = PatchTokens((2, 3), prefix=1)
    tokens = torch.arange(1 + 7 + 6, dtype=torch.float32).view(1, -1, 1)  # cls, 7 prompts, 2x3 patches
    assert reshape(tokens)[0, 0].tolist() == [[8, 9, 10], [11, 12, 13]]
    assert reshape.prompt_tokens == 7
    reshape(tokens[:, 7:])  # the same reshape on a block without prompts
    assert reshape.prompt_tokens == 0
    with pytest.raises(ValueError, match="cannot hold"):
        reshape(tokens[:, :6])


def test_vpt_and_swin_have_a_cam_layer():
    vpt = build_model(resolve_config(None, [*tiny_overrides("p8_d48_32px", "vpt"), "method.num_tokens=5"]), 3).eval()
    cam, probs = compute_cam(vpt, torch.randn(1, 3, 32, 32))
    assert cam.shape == (32, 32) and np.isfinite(cam).all() and probs.shape == (3,)
    swin = build_model(resolve_config(None, tiny_swin_overrides()), 3).eval()
    cam, _ = compute_cam(swin, torch.randn(1, 3, 32, 32))
    assert cam.shape == (32, 32) and np.isfinite(cam).all()


# --------------------------------------------------------------------------------------------------
# The arrays behind Figs. 3 and 4


@pytest.fixture(scope="module")
def insvp_model(runs):
    return TrainedModel.load(runs / "insvp" / "best.pt", device="cpu")


def test_cam_and_prompt_arrays_have_the_image_size_and_follow_the_image(insvp_model, digit_files):
    first, second = sorted(digit_files.glob("*.png"))[:2]
    a = explain(insvp_model, Image.open(first))
    b = explain(insvp_model, Image.open(second))
    size = (32, 32)  # the model's input: the transform resizes every image to it
    for result in (a, b):
        assert result.image.shape == result.prompts.prompted.shape == (*size, 3)
        assert result.cam.shape == result.prompts.magnitude.shape == size
        for name, array in result.prompts.components().items():
            assert array.shape == (*size, 3), name
        arrays = [result.cam, result.image, result.prompts.magnitude, *result.prompts.components().values()]
        assert all(np.isfinite(x).all() for x in arrays)
        assert result.cam.min() >= 0.0 and result.cam.max() <= 1.0
        assert 0.0 <= result.probability <= 1.0 and result.predicted_name in CLASSES
    # instance prompts: another image, another prompt (and another CAM)
    assert not np.allclose(a.prompts.prompt, b.prompts.prompt)
    assert set(a.prompts.parts) == {"p_g", "p_l"}
    assert not np.allclose(a.prompts.parts["p_g"], b.prompts.parts["p_g"])
    assert not np.allclose(a.prompts.parts["p_l"], b.prompts.parts["p_l"])
    assert not np.allclose(a.cam, b.cam)
    # p_I is the weighted sum of its parts (paper preset: 0.7 p_g + 0.3 p_l)
    cfg = insvp_model.config.method
    np.testing.assert_allclose(a.prompts.prompt, cfg.global_weight * a.prompts.parts["p_g"]
                               + cfg.patch_weight * a.prompts.parts["p_l"], atol=1e-5)


@pytest.mark.parametrize("method", CAM_METHODS)
def test_every_cam_method_gives_a_finite_map(insvp_model, method):
    x = torch.randn(1, 3, 32, 32)
    cam, probs = compute_cam(insvp_model.model, x, target=1, method=method)
    assert cam.shape == (32, 32) and np.isfinite(cam).all()
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)


def test_target_is_a_class_name_first_then_an_index():
    classes = ["5", "6", "7"]
    assert resolve_target(None, classes) is None
    assert resolve_target("7", classes) == 2  # the name, not label 7
    assert resolve_target("1", classes) == 1
    with pytest.raises(UsageError, match="neither a class name nor a label 0..2"):
        resolve_target("cat", classes)


# --------------------------------------------------------------------------------------------------
# insvp gradcam


def test_gradcam_writes_a_figure_per_image_with_compare_and_prompts(cli, runs, digit_files, tmp_path):
    out = tmp_path / "out"
    code, output = cli("gradcam", runs / "insvp" / "best.pt", digit_files, "--compare", runs / "linear",
                       "--prompts", "--out", out, "--device", "cpu")
    assert code == 0, output
    stems = sorted(p.stem for p in digit_files.glob("*.png"))
    assert pngs(out) == {f"{s}-gradcam.png" for s in stems} | {f"{s}-prompts.png" for s in stems}
    assert "written:" in output and "insvp (insvp/best.pt)" in output and "linear (linear/best.pt)" in output
    with Image.open(out / f"{stems[0]}-gradcam.png") as img:
        assert img.width > img.height  # five panels side by side, two rows


def test_gradcam_on_a_method_without_image_prompts_and_a_glob(cli, runs, digit_files, tmp_path):
    out = tmp_path / "out"
    code, output = cli("gradcam", runs / "linear", digit_files / "digit-0-*.png", "--prompts", "--target", "2",
                       "--cam", "eigencam", "--out", out, "--device", "cpu")
    assert code == 0, output
    assert pngs(out) == {f"{p.stem}-gradcam.png" for p in digit_files.glob("digit-0-*.png")}
    assert "no image prompts" in output


def test_bad_image_paths_are_usage_errors_naming_them(cli, runs, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("no image here")
    cases = {
        str(tmp_path / "missing.png"): "does not exist",
        str(not_image): "is not a readable image",
        str(tmp_path / "empty"): "no files found",
        str(tmp_path / "texts"): "holds no images",
        str(tmp_path / "nothing-*.jpg"): "matches no file",
    }
    for path, message in cases.items():
        code, output = cli("gradcam", runs / "insvp", path, "--out", tmp_path / "out")
        assert code == 2, (path, output)
        assert message in output and path in output
    with pytest.raises(UsageError, match="missing.png does not exist"):
        collect_images([tmp_path / "missing.png"])
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# insvp tsne


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tsne_of_features_and_specific_prompt_writes_png_and_csvs(cli, runs, tmp_path):
    out = tmp_path / "tsne"
    code, output = cli("tsne", runs / "insvp", "--max-samples", "0", "--out", out, "--device", "cpu")
    assert code == 0, output
    assert {p.name for p in out.iterdir()} == {"tsne.png", "tsne-features.csv", "tsne-specific-prompt.csv"}
    test_labels = load_splits(resolve_config(None, tiny_run("insvp", 1, batch_size=64, prompt_len=3)).data).test.labels
    for name in ("features", "specific-prompt"):
        rows = read_rows(out / f"tsne-{name}.csv")
        assert list(rows[0]) == ["x", "y", "label", "class_name"]
        # every test sample once, in the split's order, with its own label and class name
        assert [int(r["label"]) for r in rows] == test_labels.tolist()
        assert all(r["class_name"] == CLASSES[int(r["label"])] for r in rows)
        assert all(np.isfinite([float(r["x"]), float(r["y"])]).all() for r in rows)


def test_tsne_subset_and_dataset_lookup(cli, runs, tmp_path):
    out = tmp_path / "tsne"
    code, output = cli("tsne", "--dataset", "digits", "--runs", runs, "--max-samples", "30", "--out", out,
                       "--device", "cpu")
    assert code == 0, output
    # the linear run is more recent, but only the InsVP run has p_s, which --of both asks for
    assert f"using {runs / 'insvp'}: the most recent finished run on digits with a specific prompt p_s" in output
    for name in ("features", "specific-prompt"):
        rows = read_rows(out / f"tsne-{name}.csv")
        assert len(rows) == 30 and {r["label"] for r in rows} <= {"0", "1", "2"}
    assert find_run(runs, "digits") == runs / "linear"
    assert find_run(runs, "digits", prefer="specific-prompt") == runs / "insvp"
    assert find_run(runs, "digits", method="insvp") == runs / "insvp"


def test_tsne_without_specific_prompt(cli, runs, tmp_path):
    out = tmp_path / "tsne"
    code, output = cli("tsne", runs / "linear", "--max-samples", "20", "--out", out, "--device", "cpu")
    assert code == 0, output
    assert "no specific prompt p_s: features only" in output
    assert {p.name for p in out.iterdir()} == {"tsne.png", "tsne-features.csv"}
    code, output = cli("tsne", runs / "linear", "--of", "specific-prompt", "--out", tmp_path / "x")
    assert code == 2 and "has no specific prompt p_s" in output


def test_tsne_usage_errors(cli, runs):
    code, output = cli("tsne", "--dataset", "gtsrb", "--runs", runs)
    assert code == 2
    assert f"no finished run on dataset gtsrb under {runs}" in output
    assert "create one with: insvp train --recipe gtsrb" in output
    assert cli("tsne")[0] == 2
    assert cli("tsne", runs / "insvp", "--dataset", "digits")[0] == 2
    code, output = cli("tsne", runs / "insvp", "--split", "dev")
    assert code == 2 and "Invalid value for '--split'" in output


def test_tsne_caps_perplexity_for_few_samples():
    assert perplexity_for(2000) == 30.0 and perplexity_for(10) == 3.0
    coords = tsne_2d(np.random.default_rng(0).normal(size=(10, 200)))
    assert coords.shape == (10, 2) and np.isfinite(coords).all()
    with pytest.raises(UsageError, match="at least 4 samples"):
        tsne_2d(np.zeros((3, 5)))


def test_tsne_legend_for_few_classes_colour_bar_for_many():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(60, 2))
    few = plot_tsne({"features": coords, "specific-prompt": coords}, rng.integers(0, 5, 60), list("abcde"), "t")
    assert len(few.axes) == 2 and len(few.legends) == 1
    assert [t.get_text() for t in few.legends[0].get_texts()] == list("abcde")
    many = plot_tsne({"features": coords}, rng.integers(0, 43, 60), [f"c{k}" for k in range(43)], "t")
    assert len(many.axes) == 2 and not many.legends  # the panel and its colour bar
    assert many.axes[1].get_ylabel() == "class label (0..42)"


# --------------------------------------------------------------------------------------------------
# insvp params --plot


def test_params_plot_draws_every_finished_run(cli, runs, tmp_path):
    # a run elsewhere on another dataset, and a summary.json that is not a finished run of this tool
    other = tmp_path / "more" / "cifar"
    other.mkdir(parents=True)
    summary = {"method": "vpt", "dataset": "cifar10", "test_acc": 91.0, "trainable_params": 99_850,
               "trainable_params_without_head": 92_160}
    (other / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "more" / "summary.json").write_text(json.dumps({"note": "not a run"}))
    points = collect_runs(runs) + collect_runs(tmp_path / "more")
    assert sorted((p.dataset, p.method) for p in points) == [("cifar10", "vpt"), ("digits", "insvp"),
                                                             ("digits", "linear")]
    linear = next(p for p in points if p.method == "linear")
    assert linear.extra_params == 0 and linear.trainable_params > 0

    code, output = cli("params", "--plot", runs)
    assert code == 0, output
    assert (runs / "params-vs-accuracy.png").is_file() and "2 runs (insvp, linear on digits)" in output
    code, output = cli("params", "--plot", tmp_path / "more", "--out", tmp_path / "fig5.png")
    assert code == 0 and (tmp_path / "fig5.png").is_file()

    (tmp_path / "empty").mkdir()
    code, output = cli("params", "--plot", tmp_path / "empty")
    assert code == 2 and output.startswith(f"error: no finished run under {tmp_path / 'empty'} (a folder with "
                                           "summary.json); train one with: insvp train --recipe RECIPE")
    assert cli("params", "--plot", runs, "--out", tmp_path / "fig5.txt")[0] == 2
    assert cli("params", "--out", tmp_path / "fig5.png")[0] == 2
    assert cli("params", "--plot", runs, "--compare")[0] == 2


def test_gradcam_finds_images_as_predict_finds_its_inputs(tmp_path):
    from insvp_cli.use.predict import InputFiles

    for rel in ("b/2.png", "a/1.jpg", "a/notes.txt", "top.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = collect_images([tmp_path, tmp_path / "top.png"])  # a folder (recursively), then a file named again
    assert found == [Path(p) for p in InputFiles.find([tmp_path]) if not p.endswith(".txt")]
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/1.jpg", "b/2.png", "top.png"]
